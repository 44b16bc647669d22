import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(redis_url: str, namespace: str) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k != "COUNCIL_SECRET_KEY"}
    values.update(REDIS_URL=redis_url, COUNCIL_NAMESPACE=namespace)
    return values


def _refusal(env: dict[str, str]) -> str:
    """Start the console expecting a refusal; return its one line on stderr."""
    port = [] if "COUNCIL_WEB_PORT" in env else ["--port", str(_free_port())]
    result = subprocess.run(
        [sys.executable, "-m", "bot.web", *port],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("python -m bot.web: ")
    return line


def test_refuses_to_start_without_secret(env: dict[str, str]) -> None:
    assert "environment variable COUNCIL_SECRET_KEY is not set" in _refusal(env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COUNCIL_AUDIT_RETENTION_DAYS", "a year"),
        ("COUNCIL_COOKIE_SECURE", "yes"),
        ("COUNCIL_WEB_PORT", "eighty"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    env: dict[str, str], variable: str, value: str
) -> None:
    env.update(COUNCIL_SECRET_KEY="k" * 40, **{variable: value})
    assert f"environment: {variable}: " in _refusal(env)


def test_a_bad_content_file_is_one_line_naming_file_and_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "broken.yml").write_text("conversations:\n  - name: x\n    turns: [{user: hi}]\n")
    env.update(COUNCIL_SECRET_KEY="k" * 40, COUNCIL_TEST_CONVERSATIONS=str(tmp_path))
    line = _refusal(env)
    assert "broken.yml: conversations[0].turns[0].expect_entry: " in line


def test_an_unreachable_redis_is_one_line(env: dict[str, str]) -> None:
    env.update(COUNCIL_SECRET_KEY="k" * 40, REDIS_URL="redis://127.0.0.1:1/0")
    assert "Redis at redis://127.0.0.1:1/0 is unreachable" in _refusal(env)


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


def test_sweeps_what_is_past_its_retention_period_while_serving(
    env: dict[str, str], redis_client: redis.Redis, namespace: str
) -> None:
    # a failed send from 60 days ago: the demo profile keeps failed messages 30 days
    old = f"{int((time.time() - 60 * 86_400) * 1000)}-0"
    redis_client.xadd(f"{namespace}:outbox:failed", {"conversation_id": "sms:x:y"}, id=old)
    env["COUNCIL_SECRET_KEY"] = "k" * 40
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.web", "--port", str(_free_port())],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in server.stderr], daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        line = ""
        while "retention sweep: removed" not in line:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))  # Empty: no sweep
        assert "1 failed messages" in line
        assert redis_client.xlen(f"{namespace}:outbox:failed") == 0
        assert redis_client.get(f"{namespace}:residents:sweep:last")
    finally:
        server.terminate()
        server.communicate(timeout=30)
