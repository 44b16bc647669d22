"""``make train`` shows our own lines; Rasa's (library warnings, progress bars) go to a log.

Rasa and Sanic reset Python's warning filters on import, so no environment variable keeps their
warnings off the terminal: the training's output is written to a log file instead. A stand-in
``rasa`` (a script in a folder used as ``BIN``) prints what the real one prints.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

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
if os.environ.get("FAKE_RASA_TIMES"):  # a slow training that notes when it ran
    import time
    with open(os.environ["FAKE_RASA_TIMES"], "a") as times:
        times.write(f"start {{time.monotonic()}}\\n")
    time.sleep(0.5)
    with open(os.environ["FAKE_RASA_TIMES"], "a") as times:
        times.write(f"end {{time.monotonic()}}\\n")
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


def test_trainings_into_one_folder_run_one_at_a_time(
    fake_rasa: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # several people (or test sessions) training at once must not write one archive together
    times = tmp_path / "times.txt"
    monkeypatch.setenv("FAKE_RASA_TIMES", str(times))
    with ThreadPoolExecutor(3) as pool:
        done = [
            pool.submit(bot.train.train, tmp_path / "models", log_path=tmp_path / f"{n}.log")
            for n in range(3)
        ]
        models = {future.result() for future in done}
    assert models == {tmp_path / "models" / "council.tar.gz"}
    marks = [line.split()[0] for line in times.read_text().splitlines()]
    assert marks == ["start", "end"] * 3


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


# The review queue's approved examples reach the training data (issue 13 item 3).


async def _approve(url: str, namespace: str) -> None:
    from bot.knowledge.review import ReviewQueue
    from bot.redis_conn import connect_async

    client = await connect_async(url)
    try:
        queue = ReviewQueue(client, namespace)
        for text, label, intent in [
            ("my name is Jo Bloggs, can I rent an allotment", "out_of_scope", ""),
            ("council tax help pls", "intent", "council_tax_discount"),
            ("not useful at all", "rejected", ""),
        ]:
            chosen = await queue.record_choice("rest:x:y", text, "council_tax_pay", "")
            assert chosen is not None
            await queue.decide(chosen.id, label, "editor", intent=intent)
        await queue.record_choice("rest:x:y", "still pending", "council_tax_pay", "")
    finally:
        await client.close()


def test_approved_examples_are_exported_before_training(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    import asyncio

    from bot import settings
    from bot.settings import Settings

    asyncio.run(_approve(redis_url, namespace))
    settings.use(Settings.from_env({"REDIS_URL": redis_url, "COUNCIL_NAMESPACE": namespace}))
    path = tmp_path / "reviewed.yml"
    assert bot.train.export_reviewed(path) == "review queue: 2 approved examples in reviewed.yml"
    data = yaml.safe_load(path.read_text())
    assert data["nlu"] == [
        {"intent": "council_tax_discount", "examples": "- council tax help pls\n"},
        {"intent": "out_of_scope", "examples": "- my name is [name], can I rent an allotment\n"},
    ]
    written = path.stat().st_mtime_ns
    bot.train.export_reviewed(path)
    assert path.stat().st_mtime_ns == written  # unchanged: Rasa's fingerprint stays


def test_without_redis_the_file_is_left_as_it_is(tmp_path: Path) -> None:
    from bot import settings
    from bot.services import free_port
    from bot.settings import Settings

    path = tmp_path / "reviewed.yml"
    path.write_text("kept")
    settings.use(Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}))
    line = bot.train.export_reviewed(path)
    assert "not reachable" in line and path.read_text() == "kept"
    settings.use(Settings.from_env({}))
    assert "not set" in bot.train.export_reviewed(path)


def test_shipped_reviewed_file_is_valid_training_data() -> None:
    data = yaml.safe_load(bot.train.REVIEWED_PATH.read_text())
    assert data["version"] == "3.1" and isinstance(data["nlu"], list)


# The training output reports the out-of-scope calibration (issue 13 item 1).


def test_the_report_shows_the_stored_calibration_and_empty_intents(tmp_path: Path) -> None:
    import io
    import json
    import tarfile

    from bot.nlu.calibration import calibrate

    calibration = calibrate(
        [0.9, 0.8, 0.2] * 20, [True, True, False] * 20, target_precision=0.98,
        fallback_threshold=0.6, out_of_scope=[False, False, True] * 20,
    )  # fmt: skip
    model = tmp_path / "council.tar.gz"
    with tarfile.open(model, "w:gz") as tar:
        body = json.dumps(calibration.to_dict()).encode()
        member = tarfile.TarInfo("components/train_CouncilIntentClassifier2/calibration.json")
        member.size = len(body)
        tar.addfile(member, io.BytesIO(body))
    data = tmp_path / "data"
    (data / "nlu").mkdir(parents=True)
    (data / "nlu" / "new.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: allotments\n    examples: |\n'
        "  - intent: greet\n    examples: |\n      - hello\n"
    )
    lines = bot.train.model_report(model, data)
    assert (
        lines[0]
        == "WARNING: intent 'allotments' has no examples in data/ and can never be recognised"
    )
    assert lines[1].startswith("out-of-scope decision: calibrated threshold 0.800")
    assert "out-of-scope recall 100.0%" in lines[1]
    (tmp_path / "broken.tar.gz").write_bytes(b"model")
    assert "no calibration read" in bot.train.model_report(tmp_path / "broken.tar.gz", data)[-1]
