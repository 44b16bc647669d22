"""Train the assistant's model: ``python -m bot.train`` (``make train``).

Rasa fingerprints the configuration, domain and data, so an unchanged project is not retrained.
Rasa's own output (its log, progress bars and its libraries' warnings, which Rasa and Sanic
turn back on whatever ``PYTHONWARNINGS`` says) goes to ``.data/logs/train.log``; the terminal
shows our lines, and the end of that log when training fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.config import check_config
from bot.errors import CouncilError
from bot.services import BIN, ROOT, ServiceFailedError, base_env

__all__ = ["LOG_PATH", "MODEL_NAME", "main", "train"]

MODEL_NAME = "council"
LOG_PATH = ROOT / ".data" / "logs" / "train.log"


def train(out_dir: Path = ROOT / "models", *, log_path: Path = LOG_PATH) -> Path:
    """Train (or reuse) the model and return its path; Rasa's output goes to ``log_path``.

    Raises:
        ConfigError: ``config.yml`` is broken.
        ServiceFailedError: Rasa failed to train (with the end of its output).
    """
    check_config(ROOT / "config.yml", import_components=False)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        finished = subprocess.run(  # noqa: S603 (our own fixed command)
            [
                str(BIN / "rasa"),
                "train",
                "--config",
                "config.yml",
                "--domain",
                "responses",
                "--data",
                "data",
                "--out",
                str(out_dir),
                "--fixed-model-name",
                MODEL_NAME,
            ],
            cwd=ROOT,
            env=base_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if finished.returncode != 0:
        output = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        raise ServiceFailedError(
            "rasa train",
            f"exited with code {finished.returncode} (log: {log_path})",
            "\n".join(output[-40:]),
        )
    return out_dir / f"{MODEL_NAME}.tar.gz"


def main() -> int:
    """Train and print where the model is; on failure print why and return 1."""
    print(f"Training the model if the project changed (Rasa's output: {LOG_PATH})", flush=True)
    try:
        print(f"model: {train()}")
    except CouncilError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
