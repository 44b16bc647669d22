"""Serve the web console: ``python -m bot.web [--host 127.0.0.1] [--port 8080]``.

The console is a Starlette application served by uvicorn on the edge's hardened
configuration (:mod:`bot.http_server`: HTTP/1.1 through llhttp, a request's head within 10 s and
16 KiB, its body within 10 s, idle connections closed after 5 s, 503 beyond 1,000
connections, no server header, no access log: request lines would carry case ids and search
words). Needs
``COUNCIL_SECRET_KEY``; Redis comes from ``REDIS_URL`` and the key namespace from
``COUNCIL_NAMESPACE`` (default ``cr``). A configuration error (a setting, ``REDIS_URL``, a
content file) stops start-up with one line naming the file or variable and key, and exit code 2.
While it serves, the console runs the retention sweep once a day (:mod:`bot.residents.schedule`,
one replica at a time), with the council profile's periods; the audit log is trimmed to the
profile's period too.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from bot import logs
from bot.errors import CouncilError
from bot.http_server import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_LIMIT_CONCURRENCY,
    hardened_config,
)
from bot.keys import namespace
from bot.profile import current as council_profile
from bot.redis_conn import connect_async, redis_url
from bot.residents import Layout
from bot.residents.schedule import SweepSchedule
from bot.services import ROOT
from bot.settings import current as process_settings
from bot.web.app import Settings, create_app

__all__ = ["console_config", "main", "serve"]


def console_config(
    app: object,
    host: str,
    port: int,
    *,
    head_timeout: float = DEFAULT_HEAD_TIMEOUT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
    **options: Any,
) -> uvicorn.Config:
    """The console's server configuration: the edge's hardened one, no ``Server`` header.

    Args:
        app: The console application.
        host: Address to listen on.
        port: Port to listen on.
        head_timeout: Seconds for a request's line and headers.
        body_timeout: Seconds for its body (a slow one gets 408).
        limit_concurrency: Connections served at once; more get 503.
        **options: Other ``uvicorn.Config`` arguments (tests turn the lifespan off).
    """
    return hardened_config(
        app,
        host,
        port,
        head_timeout=head_timeout,
        body_timeout=body_timeout,
        limit_concurrency=limit_concurrency,
        **{"log_level": "info", "server_header": False, **options},
    )


def _log_our_info() -> None:
    """Show the project's own INFO lines (the daily sweep's) on standard error, as uvicorn's."""
    ours = logging.getLogger("bot")
    if not ours.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        ours.addHandler(handler)
    ours.setLevel(logging.INFO)


async def serve(settings: Settings, host: str, port: int) -> None:
    """Connect to Redis, build the console and serve it (and the daily sweep) until interrupted."""
    retention = council_profile().retention_in_force(process_settings())
    layout = Layout.from_endpoints(ROOT / "endpoints.yml", namespace())
    client = await connect_async(redis_url())
    try:
        settings = dataclasses.replace(settings, audit_retention_days=retention.audit_days)
        app = create_app(client, namespace=layout.namespace, settings=settings)
        _log_our_info()
        sweeps = SweepSchedule(client, layout, retention)
        app.add_lifespan(lambda _app: sweeps.running())
        await uvicorn.Server(console_config(app, host, port)).serve()
    finally:
        await client.close()


def _start(argv: Sequence[str] | None) -> None:
    # Settings first: a missing secret or a bad value must stop start-up before anything listens.
    configured = process_settings()
    parser = argparse.ArgumentParser(prog="python -m bot.web", description=__doc__)
    parser.add_argument(
        "--host",
        default=configured.web_host,
        help="address to listen on (default 127.0.0.1, env COUNCIL_WEB_HOST)",
    )
    parser.add_argument(
        "--port",
        type=int,
        help="port to listen on (default 8080, env COUNCIL_WEB_PORT)",
    )
    args = parser.parse_args(argv)
    port = args.port if args.port is not None else configured.web_port
    asyncio.run(serve(Settings.from_settings(configured), args.host, port))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve until interrupted; return the exit code.

    A :class:`~bot.errors.CouncilError` (a missing secret, a bad setting or content file, an
    unreachable Redis) is printed on one line, without a traceback, and returns 2.
    """
    logs.install()  # no secret, token or phone number in any log line (finding 13)
    try:
        _start(argv)
    except CouncilError as error:
        print(f"python -m bot.web: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
