"""Finding 12 (webhook half): the residents' webhooks were parsed by Sanic 21.12 inside Rasa.

Sanic 21.12 is frozen by Rasa 3.6's pins (Rasa is in maintenance mode). Now the port that
providers post to is the edge's: Starlette and uvicorn (httptools), at the versions pinned in
``requirements/deps.lock`` that the project keeps current, in a process that does not even
import Sanic or Rasa. The Rasa server no longer serves the webhooks
(``tests/channels/test_sanic.py``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from importlib.metadata import version
from pathlib import Path

import pytest

from bot.services import ROOT, base_env, edge_argv, free_port, start_service

LOCK = ROOT / "requirements" / "deps.lock"


def pinned(package: str) -> str:
    found = re.search(rf"^{re.escape(package)}==([^\s\\]+)", LOCK.read_text(), re.MULTILINE | re.I)
    assert found, f"{package} is not pinned in {LOCK.name}"
    return found.group(1)


@pytest.mark.parametrize("package", ["starlette", "uvicorn", "httptools"])
def test_the_edge_stack_is_installed_at_the_locked_versions(package: str) -> None:
    assert version(package) == pinned(package)


def test_the_edge_process_loads_neither_sanic_nor_rasa() -> None:
    probe = (
        "import sys, bot.edge.server, bot.edge.app; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sanic', 'rasa', 'rasa_sdk'}))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert answer.stdout.strip() == "[]"


def test_the_webhook_port_is_served_by_uvicorn(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(
        "bot.channels.rasa.TelegramInput:\n"
        "  accounts:\n"
        '    - {name: councilbot, token: "1234:f12-token", secret_token: "f12_secret"}\n'
    )
    port = free_port()
    edge = start_service(
        "edge",
        edge_argv(host="127.0.0.1", port=port, credentials=credentials),
        ready_url=f"http://127.0.0.1:{port}/health",
        env=base_env(REDIS_URL=redis_url, COUNCIL_NAMESPACE=namespace),
        log_dir=tmp_path,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/telegram/webhook",
            json.dumps({"update_id": 1}).encode(),
            {"X-Telegram-Bot-Api-Secret-Token": "f12_secret", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.headers["server"] == "uvicorn"
            assert answer.status == 200
    finally:
        edge.stop()
    log = (tmp_path / "edge.log").read_text()
    assert "Uvicorn running" in log or "Application startup complete" in log
    assert "Sanic" not in log
