"""The public edge, served in the test's own event loop on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis.asyncio
import uvicorn

from bot.channels.base import ChannelAdapter
from bot.channels.inbox import Inbox
from bot.channels.registry import CHANNELS, ConfiguredChannel
from bot.channels.webhook import DEFAULT_MAX_BODY
from bot.edge.app import EdgePart, create_app
from bot.edge.server import EdgeSettings, uvicorn_config

__all__ = ["channel", "serving"]


def channel(
    name: str, adapter: ChannelAdapter, max_body_bytes: int = DEFAULT_MAX_BODY
) -> ConfiguredChannel:
    """A configured channel of the registry's row ``name`` around ``adapter``."""
    spec = next(spec for spec in CHANNELS if spec.name == name)
    return ConfiguredChannel(spec, adapter, max_body_bytes)


@asynccontextmanager
async def serving(
    channels: Sequence[ConfiguredChannel],
    client: redis.asyncio.Redis,
    namespace: str,
    *,
    parts: Sequence[EdgePart] = (),
    **settings: Any,
) -> AsyncIterator[str]:
    """Serve the edge with the hardened uvicorn configuration; yield its base URL.

    Args:
        channels: The channels it serves.
        client: Its Redis client (the caller closes it).
        namespace: Key namespace of its inbox.
        parts: More routes it serves (:class:`bot.webchat.app.WebChat`).
        **settings: :class:`~bot.edge.server.EdgeSettings` fields to change (timeouts...).
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = replace(
        EdgeSettings("127.0.0.1", port, Path("credentials.yml"), "", namespace), **settings
    )
    app = create_app(
        channels,
        Inbox(client, namespace),
        body_timeout=config.body_timeout,
        refusal_delay=config.refusal_delay,
        max_delayed_refusals=config.max_delayed_refusals,
        parts=parts,
    )
    server = uvicorn.Server(uvicorn_config(app, config))
    task = asyncio.create_task(server.serve([sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
