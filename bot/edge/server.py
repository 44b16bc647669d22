"""Run the public edge: ``python -m bot.edge --host --port --credentials credentials.yml``.

Reads the channel sections of the credentials file (the same file the Rasa server reads: the
table is :data:`bot.channels.registry.CHANNELS`), connects to ``REDIS_URL`` in the namespace
``COUNCIL_NAMESPACE`` and serves the webhooks on uvicorn's httptools (llhttp) protocol,
hardened (:mod:`bot.http_server`, shared with the web console):

* a request's line and headers must arrive within ``--head-timeout`` s and fit in 16 KiB
  (431), its body within ``--body-timeout`` s; two framings are refused (400);
* idle keep-alive connections close after ``--keep-alive`` s;
* beyond ``--limit-concurrency`` connections, requests get 503 at once instead of queueing;
* a refused webhook POST (forged, malformed, too large) is answered after ``--refusal-delay``
  s, for up to a tenth of that many at once, so each of an attacker's connections can make
  the edge refuse a couple of requests a second rather than thousands;
* proxy headers are not trusted by the server (the Twilio adapter's ``trust_proxy`` decides
  which URL its signature covers); no access log unless ``--access-log`` (query strings can
  carry verification tokens; they are redacted anyway).

Every log record is redacted (:mod:`bot.logs`). Several edges may run side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uvicorn
import uvloop

from bot import logs
from bot.channels.accounts import load_credentials
from bot.channels.inbox import Inbox
from bot.channels.registry import configured, secret_values
from bot.edge.app import DEFAULT_BODY_TIMEOUT, DEFAULT_REFUSAL_DELAY, create_app
from bot.errors import CouncilError
from bot.http_server import (
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_LIMIT_CONCURRENCY,
    hardened_config,
)
from bot.keys import namespace
from bot.redis_conn import connect_async, masked, redis_url
from bot.reports.media_edge import for_edge as media_for_edge
from bot.reports.updates_edge import for_edge as updates_for_edge
from bot.services import ROOT
from bot.settings import current as current_settings
from bot.webchat.app import for_edge

__all__ = ["EdgeSettings", "main", "serve", "uvicorn_config"]

_log = logging.getLogger(__name__)
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class EdgeSettings:
    """Everything the edge reads at start-up (command line and environment), read once.

    Attributes:
        host: Address to listen on (the public interface, or a load balancer's network).
        port: Port to listen on.
        credentials: The credentials file with the channel sections.
        redis_url: ``REDIS_URL``.
        namespace: ``COUNCIL_NAMESPACE``.
        head_timeout: Seconds for a request's line and headers.
        body_timeout: Seconds for a request's body.
        keep_alive: Seconds an idle keep-alive connection stays open.
        limit_concurrency: Connections served at once; more get 503.
        refusal_delay: Seconds a refused webhook POST waits for its answer (at most a tenth
            of ``limit_concurrency`` wait at once; the others are answered at once).
        access_log: Log one line per request (paths and statuses, never bodies).
    """

    host: str
    port: int
    credentials: Path
    redis_url: str
    namespace: str
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    keep_alive: int = DEFAULT_KEEP_ALIVE
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY
    refusal_delay: float = DEFAULT_REFUSAL_DELAY
    access_log: bool = False

    @property
    def max_delayed_refusals(self) -> int:
        """Refused webhook POSTs held at once: a tenth of the connection limit."""
        return max(1, self.limit_concurrency // 10)

    @property
    def max_webchat_streams(self) -> int:
        """Web chat event streams held open at once: eight tenths of the connection limit.

        With the held refusals, a tenth of the connections stays free for webhooks whatever
        open chats and attackers hold.
        """
        return max(1, self.limit_concurrency * 8 // 10)


def uvicorn_config(app: object, settings: EdgeSettings) -> uvicorn.Config:
    """The hardened server configuration (:func:`bot.http_server.hardened_config`)."""
    return hardened_config(
        app,
        settings.host,
        settings.port,
        head_timeout=settings.head_timeout,
        keep_alive=settings.keep_alive,
        limit_concurrency=settings.limit_concurrency,
        access_log=settings.access_log,
        log_config=None,
    )


async def serve(settings: EdgeSettings, sockets: Sequence[socket.socket] | None = None) -> None:
    """Build the channels, connect to Redis and serve until stopped.

    Raises:
        ConfigError: The credentials file is wrong (names the file and key).
        MissingSecretError: A secret's environment variable is unset.
        RedisUnavailableError: Redis does not answer at start-up.
    """
    channels = configured(settings.credentials)
    environ = current_settings().environ  # the ${VAR}s of the credentials file
    logs.protect(secret_values(load_credentials(settings.credentials), environ))
    client = await connect_async(settings.redis_url)
    try:
        inbox = Inbox(client, settings.namespace)
        webchat = for_edge(inbox, settings.max_webchat_streams)
        media = media_for_edge()
        updates = updates_for_edge(client, settings.namespace)
        app = create_app(
            channels,
            inbox,
            body_timeout=settings.body_timeout,
            refusal_delay=settings.refusal_delay,
            max_delayed_refusals=settings.max_delayed_refusals,
            parts=[part for part in (webchat, media, updates) if part is not None],
        )
        server = uvicorn.Server(uvicorn_config(app, settings))
        names = ", ".join(channel.spec.name for channel in channels) or "none"
        _log.info(
            "edge: channels %s, Redis %s, namespace %s",
            names,
            masked(settings.redis_url),
            settings.namespace,
        )
        await server.serve(list(sockets) if sockets else None)
    finally:
        await client.close()


def _parse_args(argv: Sequence[str] | None) -> EdgeSettings:
    parser = argparse.ArgumentParser(prog="python -m bot.edge", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--credentials",
        type=Path,
        default=ROOT / "credentials.yml",  # the project's, wherever the edge is started from
        help="the credentials file (default: the project's credentials.yml)",
    )
    parser.add_argument("--head-timeout", type=float, default=DEFAULT_HEAD_TIMEOUT)
    parser.add_argument("--body-timeout", type=float, default=DEFAULT_BODY_TIMEOUT)
    parser.add_argument("--keep-alive", type=int, default=DEFAULT_KEEP_ALIVE)
    parser.add_argument("--limit-concurrency", type=int, default=DEFAULT_LIMIT_CONCURRENCY)
    parser.add_argument(
        "--refusal-delay",
        type=float,
        default=DEFAULT_REFUSAL_DELAY,
        help="seconds a refused webhook POST waits for its answer (0: none)",
    )
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    return EdgeSettings(
        host=args.host,
        port=args.port,
        credentials=args.credentials,
        redis_url=redis_url(),
        namespace=namespace(),
        head_timeout=args.head_timeout,
        body_timeout=args.body_timeout,
        keep_alive=args.keep_alive,
        limit_concurrency=args.limit_concurrency,
        refusal_delay=args.refusal_delay,
        access_log=args.access_log,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the edge; return the exit code (1 with a one-line error for configuration errors)."""
    logs.install()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = _parse_args(argv)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(settings))
    except CouncilError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
