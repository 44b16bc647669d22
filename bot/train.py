"""Train the assistant's model: ``python -m bot.train`` (``make train``).

Rasa fingerprints the configuration, domain and data, so an unchanged project is not retrained.
Rasa's own output (its log, progress bars and its libraries' warnings, which Rasa and Sanic
turn back on whatever ``PYTHONWARNINGS`` says) goes to ``.data/logs/train.log``; the terminal
shows our lines, and the end of that log when training fails.
"""

from __future__ import annotations

import asyncio
import fcntl
import subprocess
import sys
from pathlib import Path

from bot import settings
from bot.config import check_config
from bot.errors import CouncilError
from bot.knowledge.review import ReviewQueue, training_yaml
from bot.redis_conn import connect_async
from bot.services import BIN, ROOT, ServiceFailedError, base_env

__all__ = [
    "LOG_PATH",
    "MODEL_NAME",
    "REVIEWED_PATH",
    "export_reviewed",
    "intents_without_examples",
    "main",
    "model_report",
    "train",
]

MODEL_NAME = "council"
LOG_PATH = ROOT / ".data" / "logs" / "train.log"
REVIEWED_PATH = ROOT / "data" / "nlu" / "reviewed.yml"
"""The examples editors approved in the review queue, exported before each training."""


async def _approved(url: str, namespace: str) -> dict[str, list[str]]:
    client = await connect_async(url)
    try:
        return await ReviewQueue(client, namespace).training_examples()
    finally:
        await client.close()


def export_reviewed(path: Path = REVIEWED_PATH) -> str:
    """Write the review queue's approved examples to ``path`` when Redis is reachable.

    The file is rewritten only when its content changes (Rasa retrains on a change).

    Returns:
        A line for the terminal: how many examples, or why the file was left as it was.
    """
    current = settings.current()
    if not current.redis_url:
        return f"review queue: REDIS_URL not set, {path.name} left as it is"
    try:
        examples = asyncio.run(_approved(current.redis_url, current.namespace))
    except CouncilError as error:
        return f"review queue: Redis not reachable ({error}), {path.name} left as it is"
    text = training_yaml(examples)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    count = sum(len(texts) for texts in examples.values())
    return f"review queue: {count} approved examples in {path.name}"


def train(out_dir: Path = ROOT / "models", *, log_path: Path = LOG_PATH) -> Path:
    """Train (or reuse) the model and return its path; Rasa's output goes to ``log_path``.

    Raises:
        ConfigError: ``config.yml`` is broken.
        ServiceFailedError: Rasa failed to train (with the end of its output).
    """
    check_config(ROOT / "config.yml", import_components=False)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # one training at a time per output folder: two writing the same archive corrupt it, and
    # the second, waiting, finds the first's model up to date
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / ".train.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
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


def intents_without_examples(data_dir: Path = ROOT / "data") -> list[str]:
    """Intents listed in the NLU data with no examples (Rasa drops them with a note in its log)."""
    import yaml

    empty = set()
    for path in sorted(data_dir.rglob("*.yml")):
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue  # Rasa reports unreadable data itself
        items = content.get("nlu") if isinstance(content, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "intent" in item and not item.get("examples"):
                empty.add(str(item["intent"]))
    return sorted(empty)


def model_report(model: Path, data_dir: Path = ROOT / "data") -> list[str]:
    """Lines for the terminal: each calibration stored in the model, and data warnings."""
    from bot.nlu.calibration import read_calibrations

    lines = []
    empty = intents_without_examples(data_dir)
    if empty:
        names = ", ".join(f"'{name}'" for name in empty)
        lines.append(
            f"WARNING: intent {names} {'has' if len(empty) == 1 else 'have'} no examples in "
            f"{data_dir.name}/ and can never be recognised"
        )
    try:
        calibrations = read_calibrations(model)
    except (OSError, ValueError) as error:
        return [*lines, f"WARNING: no calibration read from {model}: {error}"]
    lines += [f"out-of-scope decision: {c.summary()}" for c in calibrations.values()]
    return lines


def main() -> int:
    """Train and print where the model is; on failure print why and return 1."""
    print(export_reviewed(), flush=True)
    print(f"Training the model if the project changed (Rasa's output: {LOG_PATH})", flush=True)
    try:
        model = train()
    except CouncilError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"model: {model}")
    for line in model_report(model):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
