"""Train the assistant's model: ``python -m bot.train`` (``make train``).

Rasa fingerprints the configuration, domain and data, so an unchanged project is not retrained.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.config import check_config
from bot.services import BIN, ROOT, base_env

__all__ = ["MODEL_NAME", "main", "train"]

MODEL_NAME = "council"


def train(out_dir: Path = ROOT / "models") -> Path:
    """Train (or reuse) the model and return its path.

    Raises:
        ConfigError: ``config.yml`` is broken.
        subprocess.CalledProcessError: Rasa failed to train.
    """
    check_config(ROOT / "config.yml", import_components=False)
    subprocess.run(  # noqa: S603 (our own fixed command)
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
        check=True,
    )
    return out_dir / f"{MODEL_NAME}.tar.gz"


def main() -> int:
    """Train and print where the model is."""
    print(f"model: {train()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
