"""``python -m bot.residents export|erase <who>`` and ``sweep``: residents' data under UK GDPR.

``<who>`` is a conversation id (``whatsapp:+441234567890:+447700900123``), a phone number, an
email address or a handoff case id. ``export`` writes everything held as JSON (to ``--out``,
readable by its owner only, or standard output); ``erase`` removes it, records the erasure in
the audit log and then checks every key for anything left. ``sweep`` removes what is older
than its retention period in the council profile's ``retention`` section (some environment
variables override it: docs/configuration.md); the console runs it daily by itself
(:mod:`bot.residents.schedule`). Redis comes from ``REDIS_URL``, the
namespace from ``COUNCIL_NAMESPACE``, the Rasa stores' key prefixes from ``endpoints.yml``.
Exit codes: 0 done (also when nothing is held), 1 something was left after an erasure,
2 configuration or Redis error.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.errors import ConfigError, RedisUnavailableError
from bot.keys import namespace as default_namespace
from bot.profile import current as council_profile
from bot.redis_conn import connect_async, redis_url
from bot.residents.rights import Layout, erase, export, find, leftovers, sweep
from bot.services import ROOT
from bot.settings import current as process_settings
from bot.web.audit import AuditLog

__all__ = ["main"]


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's numeric user): say who ran it
        return "cli"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.residents", description=__doc__)
    parser.add_argument("--redis-url", help="default: REDIS_URL")
    parser.add_argument("--namespace", help="default: COUNCIL_NAMESPACE or cr")
    parser.add_argument("--endpoints", type=Path, default=ROOT / "endpoints.yml")
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="write everything held about a resident")
    exporting.add_argument("who")
    exporting.add_argument("--out", type=Path, help="JSON file (default: standard output)")
    erasing = commands.add_parser("erase", help="remove everything held about a resident")
    erasing.add_argument("who")
    erasing.add_argument("--actor", default=_login_name())
    erasing.add_argument("--request", default="", help="the council's reference of the request")
    commands.add_parser("sweep", help="remove what is older than its retention period")
    return parser.parse_args(argv)


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


async def _run(args: argparse.Namespace) -> int:
    layout = Layout.from_endpoints(args.endpoints, args.namespace or default_namespace())
    retention = council_profile().retention_in_force(process_settings())
    client = await connect_async(args.redis_url or redis_url())
    try:
        if args.command == "sweep":
            removed = await sweep(client, layout, retention, datetime.now(UTC))
            print(
                ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in removed.items()),
                "removed.",
            )
            return 0
        resident = await find(client, layout, args.who)
        if not resident.found:
            print(f"Nothing held about {args.who!r} in namespace {layout.namespace!r}.")
            return 0
        if args.command == "export":
            text = json.dumps(await export(client, layout, resident), indent=2, ensure_ascii=False)
            if args.out:
                _write_private(args.out, text + "\n")
                print(f"Exported to {args.out}.", file=sys.stderr)
            else:
                print(text)
            return 0
        if args.request and resident.named_in(args.request):
            print(
                "error: --request names the resident; give the council's own reference "
                "(the audit log keeps it)",
                file=sys.stderr,
            )
            return 2
        audit = AuditLog(client, layout.namespace)
        done = await erase(client, layout, resident, audit, actor=args.actor, request=args.request)
        counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in done.summary().items())
        print(f"Erased ({counts}); audit reference {done.reference}.")
        left = await leftovers(client, layout, resident, skip=[layout.key("audit")])
        if left:
            print("Still mentioning the resident:", *left, sep="\n  ", file=sys.stderr)
            return 1
        print("Checked every key: nothing about the resident is left.")
        return 0
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit code."""
    args = _parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except (ConfigError, RedisUnavailableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
