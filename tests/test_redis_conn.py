from pathlib import Path

import pytest

from bot.errors import ConfigError, RedisUnavailableError
from bot.redis_conn import connect, masked, redis_url, start_embedded
from bot.services import free_port


def test_connect_pings(redis_url: str, namespace: str) -> None:
    client = connect(redis_url)
    client.set(f"{namespace}:k", "v")
    assert client.get(f"{namespace}:k") == "v"


def test_unreachable_redis_is_a_clear_error() -> None:
    with pytest.raises(RedisUnavailableError, match=r"127\.0\.0\.1:1") as info:
        connect("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(info.value)


def test_masked_hides_password() -> None:
    assert masked("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert masked("redis://host:6379/0") == "redis://host:6379/0"


def test_redis_url_must_be_set_and_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match="REDIS_URL"):
        redis_url()
    monkeypatch.setenv("REDIS_URL", "http://nope")
    with pytest.raises(ConfigError, match="not a redis"):
        redis_url()


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
