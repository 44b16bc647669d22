"""A real local Redis Sentinel for tests: a primary and one sentinel of the bundled Valkey.

Fixture (pytest plugin, registered by ``tests/sentinel/conftest.py``):
    sentinel_url: ``redis+sentinel://:password@127.0.0.1:port/council/0``, the sentinel
        watching a primary with a password, started once per test session.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from bot.errors import RedisUnavailableError
from bot.redis_conn import EmbeddedRedis, _stop_with_parent, server_binary, start_embedded
from bot.services import free_port

__all__ = ["SERVICE", "local_sentinel", "sentinel_url"]

SERVICE = "council"
"""The name the sentinel gives the primary."""


def _wait_for_primary(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        try:
            if probe.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE):
                return
        except redis.RedisError:
            pass  # refused until it listens
        finally:
            probe.close()
        if time.monotonic() > deadline:
            raise RedisUnavailableError("local sentinel", f"no primary in {timeout:.0f} s")
        time.sleep(0.05)


@contextmanager
def local_sentinel(data_dir: Path, password: str, timeout: float = 30.0) -> Iterator[str]:
    """Start a primary (with ``password``) and a sentinel; yield the sentinel URL; stop both."""
    primary: EmbeddedRedis = start_embedded(
        data_dir / "primary", port=free_port(), password=password
    )
    primary_port = int(primary.url.rsplit(":", 1)[1].split("/")[0])
    port = free_port()
    config = data_dir / "sentinel.conf"  # the sentinel rewrites it: a file of its own
    config.write_text(
        "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                f'dir "{data_dir}"',
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 1",
                f'sentinel auth-pass {SERVICE} "{password}"',
                f"sentinel down-after-milliseconds {SERVICE} 1000",
            ]
        )
        + "\n"
    )
    config.chmod(0o600)
    process = subprocess.Popen(  # noqa: S603 (the bundled binary, our configuration)
        [str(server_binary()), str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_stop_with_parent,
    )
    sentinel = EmbeddedRedis(f"redis://127.0.0.1:{port}", process, data_dir / "sentinel.log")
    try:
        _wait_for_primary(port, timeout)
        yield f"redis+sentinel://:{password}@127.0.0.1:{port}/{SERVICE}/0"
    finally:
        sentinel.stop()
        primary.stop()


@pytest.fixture(scope="session")
def sentinel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sentinel watching a primary that needs a password, for the whole session."""
    with local_sentinel(tmp_path_factory.mktemp("sentinel"), "sentinel-test-password") as url:
        yield url
