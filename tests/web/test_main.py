import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(redis_url: str, namespace: str) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k != "COUNCIL_SECRET_KEY"}
    values.update(REDIS_URL=redis_url, COUNCIL_NAMESPACE=namespace)
    return values


def test_refuses_to_start_without_secret(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.web", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "MissingSecretError" in result.stderr and "COUNCIL_SECRET_KEY" in result.stderr


def test_serves_on_the_given_port(env: dict[str, str]) -> None:
    port = _free_port()
    env["COUNCIL_SECRET_KEY"] = "k" * 40
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as page:
                    assert page.status == 200
                    assert "Sign in" in page.read().decode()
                    assert page.headers["X-Frame-Options"] == "DENY"
                    assert "Secure" in page.headers["Set-Cookie"]  # secure by default
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "console did not start"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.communicate(timeout=30)
