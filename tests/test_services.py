"""What a newcomer sees from ``make chat``: our own start-up lines, not library warnings.

The servers write to log files, but ``make train`` runs Rasa in the terminal with the same
environment (:func:`bot.services.base_env`); Rasa's imports warn about SQLAlchemy 2.0,
pkg_resources and argparse on every start.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.services import ROOT, base_env

# Each of these printed a DeprecationWarning (or SQLAlchemy's MovedIn20Warning) on import.
NOISY_IMPORTS = (
    "import rasa.core.tracker_store, rasa.cli.arguments.test, rasa.shared.utils.validation"
)


def test_children_print_no_library_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    result = subprocess.run(
        [sys.executable, "-c", NOISY_IMPORTS],
        env=base_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_developer_can_still_ask_for_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONWARNINGS", "default")
    assert base_env()["PYTHONWARNINGS"] == "default"
