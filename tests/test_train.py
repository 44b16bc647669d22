"""``make train`` shows our own lines; Rasa's (library warnings, progress bars) go to a log.

Rasa and Sanic reset Python's warning filters on import, so no environment variable keeps their
warnings off the terminal: the training's output is written to a log file instead. A stand-in
``rasa`` (a script in a folder used as ``BIN``) prints what the real one prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import bot.train
from bot.errors import CouncilError
from bot.services import ServiceFailedError

NOISE = "rasa/cli/arguments/test.py:129: DeprecationWarning: Nesting argument groups"
FAKE_RASA = f"""#!{sys.executable}
import os
import sys
from pathlib import Path
args = sys.argv[1:]
print("{NOISE}", file=sys.stderr)
print("Processed rules: 100%|##########| 26/26")
if os.environ.get("FAKE_RASA_FAILS"):
    print("InvalidConfigException: the pipeline is broken", file=sys.stderr)
    sys.exit(1)
out = Path(args[args.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / (args[args.index("--fixed-model-name") + 1] + ".tar.gz")).write_bytes(b"model")
"""


@pytest.fixture
def fake_rasa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rasa").write_text(FAKE_RASA)
    (bin_dir / "rasa").chmod(0o755)
    monkeypatch.setattr(bot.train, "BIN", bin_dir)
    return bin_dir


def test_rasas_output_goes_to_the_log(
    fake_rasa: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "train.log"
    model = bot.train.train(tmp_path / "models", log_path=log)
    assert model.read_bytes() == b"model"
    printed = capfd.readouterr()
    assert printed.out == printed.err == ""
    assert NOISE in log.read_text() and "Processed rules" in log.read_text()


def test_a_failed_training_names_the_log_and_shows_its_end(
    fake_rasa: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_RASA_FAILS", "1")
    log = tmp_path / "train.log"
    with pytest.raises(ServiceFailedError) as caught:
        bot.train.train(tmp_path / "models", log_path=log)
    assert "InvalidConfigException: the pipeline is broken" in caught.value.log_tail
    assert str(log) in str(caught.value)


def test_main_prints_an_error_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing() -> Path:
        raise ServiceFailedError("rasa train", "exited with code 1 (log: x.log)", "Broken")

    monkeypatch.setattr(bot.train, "train", failing)
    assert bot.train.main() == 1
    printed = capsys.readouterr()
    assert "rasa train exited with code 1 (log: x.log)" in printed.err
    assert "Traceback" not in printed.err
    assert issubclass(ServiceFailedError, CouncilError)
