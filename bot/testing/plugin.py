"""Pytest plugin shipped with the package (errbot-style: tests read as conversations).

Fixtures:
    redis_url: the test Redis: ``TEST_REDIS_URL`` when set, else the server the product embeds
        (Valkey 8.1, :func:`bot.redis_conn.start_embedded`) started once per test session on a
        free loopback port and stopped at its end. Tests that start other processes (the
        end-to-end tests) hand them this URL.
    namespace: a key namespace unique to the test; its keys are deleted afterwards, so test
        runs share one Redis without colliding.
    fresh_settings (automatic): every test starts and ends with no settings read
        (:mod:`bot.settings`).
    redis_client / async_redis: clients connected to the test Redis.
    assistant: the real Rasa server and action server, started once per test session.
    chat: a new resident's conversation with ``assistant``:
        ``chat.say("when is my bin day?")`` returns the bot's replies.
    provider: the providers' stand-in (:class:`bot.testing.providers.FakeProvider`: Twilio,
        Meta, Telegram, X) started on a loopback port, stopped after the test.

Option:
    ``--profile PATH``: run the tests (the end-to-end suite included: the servers inherit the
        environment) under another council profile, as ``COUNCIL_PROFILE=PATH`` would:
        ``pytest tests/e2e --profile tests/data/profiles/glanfor.yml``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from bot import profile, settings
from bot.errors import RedisUnavailableError
from bot.keys import prefix
from bot.redis_conn import EmbeddedRedis, connect, connect_async, start_embedded
from bot.services import free_port
from bot.testing.assistant import Assistant, Conversation, running_assistant
from bot.testing.cleanup import delete_keys
from bot.testing.providers import FakeProvider

__all__ = [
    "assistant",
    "async_redis",
    "chat",
    "fresh_settings",
    "namespace",
    "provider",
    "pytest_addoption",
    "pytest_configure",
    "redis_client",
    "redis_url",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--profile``."""
    parser.addoption(
        "--profile",
        metavar="PATH",
        help="council profile for this run (sets COUNCIL_PROFILE; default: council.yml)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Apply ``--profile`` before any test (or server it starts) reads the settings."""
    chosen = config.getoption("--profile")
    if chosen:
        path = Path(chosen).resolve()
        if not path.is_file():
            raise pytest.UsageError(f"--profile: no such file: {chosen}")
        # for the whole run, in the environment every process (the servers too) reads it from
        pytest.MonkeyPatch().setenv("COUNCIL_PROFILE", str(path))
        settings.use(None)
        profile.use(None)


def _delete_keys(redis_url: str, *prefixes: str) -> None:
    client = connect(redis_url)
    try:
        delete_keys(client, *prefixes)
    finally:
        client.close()


def _start_session_server(data_dir: Path, attempts: int = 3) -> EmbeddedRedis:
    """The embedded server on a free port (tried again if another process took the port)."""
    for _ in range(attempts - 1):
        try:
            return start_embedded(data_dir, port=free_port())
        except RedisUnavailableError:
            continue
    return start_embedded(data_dir, port=free_port())


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis server tests run against (see the module docstring)."""
    configured = settings.current().environ.get("TEST_REDIS_URL", "").strip()
    settings.use(None)  # set up inside a test: it reads them after its own monkeypatch.setenv
    if configured:
        yield configured
        return
    server = _start_session_server(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Each test reads the settings anew (:func:`bot.settings.current`) and forgets them after.

    So a test may inject its own with :func:`bot.settings.use`, or set variables with
    ``monkeypatch.setenv`` before the code under test first asks for them.
    """
    settings.use(None)
    yield
    settings.use(None)


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A key namespace unique to this test, removed afterwards.

    It is its own hash tag (``{test:…}``, :func:`bot.keys.tagged`), so ``f"{namespace}:inbox"``
    is the key the stores write.
    """
    name = f"{{test:{uuid.uuid4().hex[:12]}}}"
    yield name
    _delete_keys(redis_url, prefix(name))


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
    name = f"{{e2e{uuid.uuid4().hex[:10]}}}"  # its own hash tag, as the namespace fixture
    with running_assistant(redis_url, name, tmp_path_factory.mktemp("assistant")) as running:
        yield running
    _delete_keys(redis_url, prefix(name), running.tracker_prefix)


@pytest.fixture
def chat(assistant: Assistant) -> Conversation:
    """A new resident's conversation with the running assistant."""
    return assistant.conversation()


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    """The providers' stand-in, started for the test and stopped after it."""
    fake = await FakeProvider().start()
    yield fake
    await fake.stop()
