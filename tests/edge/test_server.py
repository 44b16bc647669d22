"""``python -m bot.edge``'s command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.edge.server import EdgeSettings, _parse_args
from bot.services import ROOT


def test_the_default_credentials_are_the_projects_wherever_it_is_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # read, not connected to
    assert _parse_args([]).credentials == ROOT / "credentials.yml"
    # a path the operator gives is theirs: relative to where they are
    given = _parse_args(["--credentials", "mine.yml"]).credentials
    assert given.resolve() == tmp_path / "mine.yml"


def test_started_from_another_directory_it_reads_the_projects_credentials(
    tmp_path: Path,
) -> None:
    # the project's credentials.yml names its secrets; unset, the edge stops on the first one,
    # which shows it read that file (not "credentials.yml: cannot read" in the wrong directory)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env.update(REDIS_URL="redis://127.0.0.1:1/0", PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "bot.edge", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot read" not in result.stderr
    assert "TWILIO_ACCOUNT_SID" in result.stderr, result.stderr


def test_open_chats_and_held_refusals_leave_a_tenth_of_the_connections_to_webhooks() -> None:
    for limit in (10, 1_000, 4_000):
        edge = EdgeSettings(
            "127.0.0.1", 0, Path("credentials.yml"), "", "ns", limit_concurrency=limit
        )
        room = limit - edge.max_webchat_streams - edge.max_delayed_refusals
        assert room >= limit // 10, (limit, room)
