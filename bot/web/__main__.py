"""Serve the web console: ``python -m bot.web [--host 127.0.0.1] [--port 8080]``.

Needs ``COUNCIL_SECRET_KEY``; Redis comes from ``REDIS_URL`` and the key namespace from
``COUNCIL_NAMESPACE`` (default ``cr``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from bot.keys import namespace
from bot.redis_conn import connect_async, redis_url
from bot.web.app import REDIS, Settings, create_app

__all__ = ["main", "make_app"]


async def make_app(settings: Settings) -> web.Application:
    """Connect to Redis and build the console (the Redis client closes with the app)."""
    client = await connect_async(redis_url())
    app = create_app(client, namespace=namespace(), settings=settings)

    async def redis_lifetime(app: web.Application) -> AsyncIterator[None]:
        yield
        await app[REDIS].close()

    app.cleanup_ctx.append(redis_lifetime)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until interrupted.

    Raises:
        MissingSecretError: ``COUNCIL_SECRET_KEY`` is not set.
        ConfigError: A setting or ``REDIS_URL`` is bad.
    """
    parser = argparse.ArgumentParser(prog="python -m bot.web", description=__doc__)
    parser.add_argument(
        "--host",
        default=os.environ.get("COUNCIL_WEB_HOST", "127.0.0.1"),
        help="address to listen on (default 127.0.0.1, env COUNCIL_WEB_HOST)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("COUNCIL_WEB_PORT", "8080")),
        help="port to listen on (default 8080, env COUNCIL_WEB_PORT)",
    )
    args = parser.parse_args(argv)
    # Settings first: a missing secret must stop start-up before anything listens.
    settings = Settings.from_env()
    web.run_app(make_app(settings), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
