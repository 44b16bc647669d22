"""Pytest plugin shipped with the package (errbot-style: tests read as conversations).

Fixtures:
    redis_url: the test Redis (``TEST_REDIS_URL``, default ``redis://127.0.0.1:6379/0``).
    namespace: a key namespace unique to the test; its keys are deleted afterwards, so test
        runs share one Redis without colliding.
    redis_client / async_redis: clients connected to the test Redis.
    assistant: the real Rasa server and action server, started once per test session.
    chat: a new resident's conversation with ``assistant``:
        ``chat.say("when is my bin day?")`` returns the bot's replies.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from bot.redis_conn import connect, connect_async
from bot.testing.assistant import Assistant, Conversation, running_assistant

__all__ = ["assistant", "async_redis", "chat", "namespace", "redis_client", "redis_url"]


def _delete_namespace(redis_url: str, name: str) -> None:
    client = connect(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{name}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server tests run against."""
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A key namespace unique to this test, removed afterwards."""
    name = f"test:{uuid.uuid4().hex[:12]}"
    yield name
    _delete_namespace(redis_url, f"{name}:")


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous client of the test Redis (decoded strings)."""
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
async def async_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client of the test Redis (decoded strings)."""
    client = await connect_async(redis_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def assistant(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    """The real assistant (trained model, action server, Rasa server) for this session."""
    name = f"e2e{uuid.uuid4().hex[:10]}"
    with running_assistant(redis_url, name, tmp_path_factory.mktemp("assistant")) as running:
        yield running
    _delete_namespace(redis_url, f"{name}:")
    _delete_namespace(redis_url, running.tracker_prefix)


@pytest.fixture
def chat(assistant: Assistant) -> Conversation:
    """A new resident's conversation with the running assistant."""
    return assistant.conversation()
