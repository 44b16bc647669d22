"""Redis key names.

Every key this project writes starts with a namespace: ``"cr"`` in production, a unique one per
test, so that test runs and deployments can share a Redis server without colliding.

The namespace is written as a Redis Cluster hash tag, ``{cr}:inbox``: a cluster hashes only the
part between the braces, so every key of one deployment lives in one hash slot and the
multi-key Lua scripts and transactions work on a cluster as on a single server. The trade-off:
one deployment's keys live on one shard (a cluster spreads several deployments, not one).
A namespace that already holds a hash tag (``{test-1}``) is used as it is.

Keys written before the hash tag (``cr:inbox``) are renamed once, on a single server, by
``python -m bot.keys migrate`` (:func:`migrate`).
"""

from __future__ import annotations

import argparse
import re

import redis

from bot import settings
from bot.redis_conn import connect

__all__ = ["DEFAULT_NAMESPACE", "key", "literal", "migrate", "namespace", "prefix", "tagged"]

DEFAULT_NAMESPACE = "cr"

# Redis Cluster hashes the text between the first "{" and the next "}" when it is not empty
_HASH_TAG = re.compile(r"\{[^}]+\}")


def namespace() -> str:
    """Return the namespace of this process: ``COUNCIL_NAMESPACE`` or ``"cr"``."""
    return settings.current().namespace


def tagged(ns: str) -> str:
    """Return ``ns`` as a hash tag: ``"cr"`` becomes ``"{cr}"``; ``"{test-1}"`` is kept."""
    first = ns.find("{")
    if first >= 0 and _HASH_TAG.match(ns, first):
        return ns
    return "{" + ns + "}"


def prefix(ns: str) -> str:
    """The start of every key of namespace ``ns`` (``"{cr}:"``): for SCAN patterns."""
    return tagged(ns) + ":"


def key(ns: str, *parts: str) -> str:
    """Join the hash-tagged namespace and key parts with ``:`` (``{cr}:inbox:dead``)."""
    return ":".join((tagged(ns), *parts))


_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def literal(text: str) -> str:
    """``text`` as a literal inside a SCAN ``MATCH`` pattern (glob characters escaped)."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def migrate(client: redis.Redis, ns: str = DEFAULT_NAMESPACE) -> int:
    """Rename the keys of ``ns`` written before the hash tag (``cr:x`` to ``{cr}:x``).

    Run once, on a single server (a cluster cannot rename across slots), with the
    deployment stopped. A key whose new name exists already is left as it is.

    Returns:
        How many keys were renamed.
    """
    old = ns + ":"
    renamed = 0
    for name in client.scan_iter(match=literal(old) + "*", count=1000):
        text = name.decode() if isinstance(name, bytes) else str(name)
        renamed += bool(client.renamenx(text, prefix(ns) + text[len(old) :]))
    return renamed


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.keys", description=__doc__)
    parser.add_argument("command", choices=["migrate"])
    parser.add_argument("--namespace", help="default: COUNCIL_NAMESPACE or cr")
    args = parser.parse_args(argv)
    client = connect()
    try:
        print(f"renamed {migrate(client, args.namespace or namespace())} keys")
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
