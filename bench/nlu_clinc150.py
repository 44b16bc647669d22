"""CLINC150 out-of-scope benchmark: our NLU pipeline against Rasa's stock pipeline.

Protocol: both pipelines train on ``train`` plus ``oos_train`` (as the intent ``out_of_scope``,
as in our training data); figures are reported on ``test`` + ``oos_test``, at one threshold chosen
without looking at them:

- the **calibrated** threshold, for the answer-precision target shipped in ``config.yml``
  (``answer_precision``, ``out_of_scope_share``): ours calibrates itself while training
  (cross-validation on the training data, stored in the model); Rasa's stock pipeline cannot, so
  it is calibrated the same way (:func:`bot.nlu.calibration.calibrate`) on ``val`` + ``oos_val``;
- for reference, the older rule: the threshold maximising accuracy over ``val`` + ``oos_val``
  (out-of-scope counted as its own class), saved under ``at_val_best_accuracy``.

The whole trade-off (in-scope accuracy against out-of-scope recall, every threshold) on the test
split is saved (thinned) in the JSON and drawn in ``bench/results/nlu_clinc150_tradeoff.png``.
Each pipeline is trained and parsed through Rasa's own APIs (``rasa.model_training.train_nlu``,
``Agent.parse_message``) in a subprocess of its own, so peak RSS is measured separately.

Usage: ``python bench/nlu_clinc150.py [--quick] [--only ours|rasa_stock]``. Results are printed
side by side and saved to ``bench/results/nlu_clinc150.json`` (``--only`` updates one entry;
``--quick`` saves under the temporary directory instead).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".." / "shared" / "datasets" / "clinc150" / "data_full.json"
RESULTS = ROOT / "bench" / "results" / "nlu_clinc150.json"
CURVE_POINTS = 400  # the saved curve is thinned to about this many thresholds
OOS = "out_of_scope"
FALLBACK = "nlu_fallback"
WARM_UP = 20

# Ours: config.yml's own tokenizer, featurizer and classifier (what ships), with the threshold at
# 0 so every parse returns its score; the calibrated threshold is read from the trained model.
_SHIPPED = {
    "WhitespaceTokenizer",
    "bot.nlu.featurizer.SentenceEmbeddingFeaturizer",
    "bot.nlu.classifier.CouncilIntentClassifier",
}


def _shipped_pipeline() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    steps = [dict(step) for step in config["pipeline"] if step["name"] in _SHIPPED]
    for step in steps:
        if step["name"].endswith("CouncilIntentClassifier"):
            step["threshold"] = 0.0
    return steps


def shipped_target() -> dict[str, Any]:
    """The calibration options that ship in config.yml (defaults where not set)."""
    from bot.nlu.classifier import CouncilIntentClassifier

    config = yaml.safe_load((ROOT / "config.yml").read_text())
    step = next(s for s in config["pipeline"] if s["name"].endswith("CouncilIntentClassifier"))
    options = {**CouncilIntentClassifier.get_default_config(), **step}
    keys = ("answer_precision", "out_of_scope_share", "fallback_threshold")
    return {key: options[key] for key in keys}


PIPELINES: dict[str, dict[str, Any]] = {
    "ours": {
        "recipe": "default.v1",
        "language": "en",
        "pipeline": _shipped_pipeline(),
        "policies": [],
    },
    # `rasa init`'s config.yml; ResponseSelector dropped: CLINC150 has no retrieval intents.
    "rasa_stock": {
        "recipe": "default.v1",
        "language": "en",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 1,
                "max_ngram": 4,
            },
            {"name": "DIETClassifier", "epochs": 100, "constrain_similarities": True},
            {"name": "EntitySynonymMapper"},
            {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1},
        ],
        "policies": [],
    },
}


def load_splits(quick: bool) -> dict[str, list[tuple[str, str]]]:
    raw = json.loads(DATA.read_text())
    splits = {name: [(text, label) for text, label in rows] for name, rows in raw.items()}
    if not quick:
        return splits
    rng = random.Random(0)
    intents = set(rng.sample(sorted({label for _, label in splits["train"]}), 10))
    small: dict[str, list[tuple[str, str]]] = {}
    for name, rows in splits.items():
        keep = [row for row in rows if row[1] in intents or name.startswith("oos")]
        small[name] = keep[: {"train": 300, "oos_train": 30}.get(name, 100)]
    return small


def write_nlu(rows: list[tuple[str, str]], path: Path) -> None:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    examples = [Message(data={"text": text, "intent": label}) for text, label in rows]
    RasaYAMLWriter().dump(path, TrainingData(training_examples=examples))


def prediction(parsed: dict[str, Any]) -> tuple[str, float]:
    """The classifier's own label and score, looking past the FallbackClassifier's verdict."""
    intent = parsed["intent"]
    if intent["name"] != FALLBACK:
        return str(intent["name"]), float(intent["confidence"])
    for entry in parsed.get("intent_ranking", []):
        if entry["name"] != FALLBACK:
            return str(entry["name"]), float(entry["confidence"])
    return OOS, 0.0


def oos_score(label: str, score: float) -> float:
    """Higher means more in scope; an ``out_of_scope`` prediction ranks below every other."""
    return -score if label == OOS else score


async def parse_all(agent: Any, texts: list[str]) -> tuple[list[tuple[str, float]], list[float]]:
    for text in texts[:WARM_UP]:
        await agent.parse_message(text)
    results, millis = [], []
    for text in texts:
        start = time.perf_counter()
        parsed = await agent.parse_message(text)
        millis.append((time.perf_counter() - start) * 1000)
        results.append(prediction(parsed))
    return results, millis


def choose_threshold(scored: list[tuple[str, float, str]]) -> float:
    """Threshold maximising accuracy over val + oos_val (out-of-scope as its own class)."""
    # Start with nothing rejected on score, then raise the threshold past one example at a time.
    correct = sum(1 for label, _, gold in scored if label == gold)
    best, best_threshold = correct, 0.0
    candidates = sorted((row for row in scored if row[0] != OOS), key=lambda row: row[1])
    for position, (label, score, gold) in enumerate(candidates):
        correct += (gold == OOS) - (label == gold)
        # Ties move together: a threshold cannot fall between two equal scores.
        if position + 1 < len(candidates) and candidates[position + 1][1] == score:
            continue
        if correct > best:
            best, best_threshold = correct, score + 1e-6
    return best_threshold


def metrics(scored: list[tuple[str, float, str]], threshold: float) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    def rejected(label: str, score: float) -> bool:
        return label == OOS or score < threshold

    in_scope = [row for row in scored if row[2] != OOS]
    out = [row for row in scored if row[2] == OOS]
    hits = sum(1 for label, score, gold in in_scope if label == gold and not rejected(label, score))
    caught = sum(1 for label, score, _ in out if rejected(label, score))
    flagged = sum(1 for label, score, _ in scored if rejected(label, score))
    answered = [row for row in scored if not rejected(row[0], row[1])]
    wrong = sum(1 for label, _, gold in answered if label != gold)
    auroc = roc_auc_score(
        [gold == OOS for _, _, gold in scored],
        [-oos_score(label, score) for label, score, _ in scored],
    )
    return {
        "in_scope_accuracy": hits / len(in_scope),
        "oos_recall": caught / len(out),
        "oos_precision": caught / flagged if flagged else 0.0,
        "answered_share": len(answered) / len(scored),
        "wrong_answer_rate": wrong / len(answered) if answered else 0.0,
        "auroc": float(auroc),
    }


def _columns(scored: list[tuple[str, float, str]]) -> tuple[list[float], list[bool], list[bool]]:
    # (score, correct, out_of_scope) as bot.nlu.calibration takes them: an out_of_scope
    # prediction is never answered, whatever the threshold.
    scores = [-math.inf if label == OOS else score for label, score, _ in scored]
    correct = [label == gold != OOS for label, _, gold in scored]
    return scores, correct, [gold == OOS for _, _, gold in scored]


def calibrate_on(scored: list[tuple[str, float, str]], target: dict[str, Any]) -> dict[str, Any]:
    """Calibrate on held-out rows for the shipped target, as the classifier does in training."""
    from bot.nlu.calibration import calibrate, traffic_weights

    scores, correct, out_of_scope = _columns(scored)
    return calibrate(
        scores,
        correct,
        target_precision=float(target["answer_precision"]),
        fallback_threshold=float(target["fallback_threshold"]),
        out_of_scope=out_of_scope,
        weights=traffic_weights(out_of_scope, target["out_of_scope_share"]),
    ).to_dict()


def curve(scored: list[tuple[str, float, str]]) -> list[list[float]]:
    """The trade-off at every threshold, thinned: [threshold, accuracy, recall, answered, wrong]."""
    from bot.nlu.calibration import trade_off

    scores, correct, out_of_scope = _columns(scored)
    points = trade_off(scores, correct, out_of_scope=out_of_scope)
    step = max(1, len(points) // CURVE_POINTS)
    kept = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
    return [
        [
            round(p.threshold, 5),
            round(p.in_scope_accuracy, 5),
            round(p.oos_recall, 5),
            round(p.answered_share, 5),
            round(1 - p.precision, 5),
        ]
        for p in kept
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def worker(name: str, quick: bool, out: Path) -> None:
    """Train and evaluate one pipeline; write its figures to ``out``."""
    import logging

    import yaml
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    from bot.nlu.calibration import read_calibrations

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)

    splits = load_splits(quick)
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix=f"clinc-{name}-") as tmp:
        folder = Path(tmp)
        config = folder / "config.yml"
        config.write_text(yaml.safe_dump(PIPELINES[name], sort_keys=False))
        nlu = folder / "nlu.yml"
        write_nlu(splits["train"] + [(text, OOS) for text, _ in splits["oos_train"]], nlu)
        start = time.perf_counter()
        model = train_nlu(str(config), str(nlu), str(folder / "models"), fixed_model_name=name)
        train_seconds = time.perf_counter() - start
        assert model is not None, "training failed"
        stored = read_calibrations(Path(model))  # ours calibrates itself while training
        agent = Agent.load(model)

        async def evaluate(*names: str) -> tuple[list[tuple[str, float, str]], list[float]]:
            rows = [
                (text, OOS if split.startswith("oos") else label)
                for split in names
                for text, label in splits[split]
            ]
            results, millis = await parse_all(agent, [text for text, _ in rows])
            return [
                (label, score, gold)
                for (label, score), (_, gold) in zip(results, rows, strict=True)
            ], millis

        validation, _ = asyncio.run(evaluate("val", "oos_val"))
        test, millis = asyncio.run(evaluate("test", "oos_test"))
    raw = {
        "validation": validation,
        "test": test,
        "calibration": next(iter(stored.values())).to_dict() if stored else None,
        "train_seconds": round(train_seconds, 1),
        "parse_p50_ms": round(percentile(millis, 0.50), 2),
        "parse_p99_ms": round(percentile(millis, 0.99), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "train_examples": len(splits["train"]) + len(splits["oos_train"]),
        "machine": machine(load_at_start),
    }
    # Kept so the figures can be recomputed without training again (--rescore).
    scored_path(name, quick).write_text(json.dumps(raw))
    out.write_text(json.dumps(summarise(name, raw), indent=2))


def machine(load_at_start: float) -> dict[str, Any]:
    """The conditions of a run: times depend on them, the accuracy figures do not."""
    return {
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "shared": True,  # the 2-core machine is shared by several engineers' jobs
    }


def scored_path(name: str, quick: bool) -> Path:
    """Where a pipeline's raw parse results are kept (temporary directory)."""
    return Path(tempfile.gettempdir()) / f"nlu_clinc150_{name}{'_quick' if quick else ''}_raw.json"


def summarise(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The figures of one pipeline from its raw parse results."""
    validation = [(str(a), float(b), str(c)) for a, b, c in raw["validation"]]
    test = [(str(a), float(b), str(c)) for a, b, c in raw["test"]]
    target = shipped_target()
    on_val = calibrate_on(validation, target)
    # Rasa's stock pipeline has no calibration of its own: calibrated on val the same way.
    calibration = raw["calibration"] or on_val
    threshold = float(calibration["threshold"])
    best = choose_threshold(validation)
    figures: dict[str, Any] = metrics(test, threshold)
    # What other targets would trade, each calibrated on val only.
    other_targets = []
    for precision in (0.95, 0.96, 0.97, 0.98, 0.99):
        for share in (None, 0.1, 0.2):
            option = {**target, "answer_precision": precision, "out_of_scope_share": share}
            chosen = float(calibrate_on(validation, option)["threshold"])
            other_targets.append(
                {
                    "answer_precision": precision,
                    "out_of_scope_share": share,
                    "threshold": chosen,
                    **metrics(test, chosen),
                }
            )
    figures.update(
        threshold=threshold,
        calibrated_threshold=threshold,
        target=target,
        calibration=calibration,
        calibrated_on_val={
            "threshold": on_val["threshold"],
            **metrics(test, float(on_val["threshold"])),
        },
        other_targets_calibrated_on_val=other_targets,
        at_val_best_accuracy={"threshold": best, **metrics(test, best)},
        curve_columns=["threshold", "in_scope_accuracy", "oos_recall", "answered_share", "wrong"],
        curve=curve(test),
        test_examples=len(test),
        **{key: raw[key] for key in ("train_seconds", "parse_p50_ms", "parse_p99_ms")},
        **{key: raw[key] for key in ("peak_rss_mb", "train_examples")},
    )
    for key in ("note", "machine"):
        if raw.get(key):
            figures[key] = raw[key]
    if name == "rasa_stock":  # also at the stock FallbackClassifier threshold, for reference
        figures["at_stock_threshold_0.3"] = metrics(test, 0.3)
    return figures


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Draw each pipeline's trade-off on the test split, its calibrated point and the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5), dpi=120)
    for name, figures in results.items():
        if "curve" not in figures:
            continue
        points = figures["curve"]
        line = axes.plot(
            [100 * p[2] for p in points], [100 * p[1] for p in points], label=name, linewidth=1.5
        )[0]
        axes.plot(
            100 * figures["oos_recall"],
            100 * figures["in_scope_accuracy"],
            "o",
            color=line.get_color(),
            label=f"{name}: calibrated threshold {figures['calibrated_threshold']:.3f}",
        )
        best = figures["at_val_best_accuracy"]
        axes.plot(
            100 * best["oos_recall"],
            100 * best["in_scope_accuracy"],
            "x",
            color=line.get_color(),
            label=f"{name}: best accuracy on val ({best['threshold']:.3f})",
        )
    axes.plot(80, 96.5, "*", color="black", markersize=10, label="target (80%, 96.5%)")
    axes.plot(52.3, 96.2, "s", color="grey", label="fine-tuned BERT, CLINC paper")
    axes.set_xlabel("out-of-scope recall on test (%)")
    axes.set_ylabel("in-scope accuracy on test (%)")
    axes.set_xlim(0, 100)
    axes.set_ylim(75, 100)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="lower left")
    axes.set_title("CLINC150: in-scope accuracy against out-of-scope recall, every threshold")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def run(name: str, quick: bool) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--worker", name, "--out", out.name] + (
            ["--quick"] if quick else []
        )
        env = dict(
            os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2"
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        subprocess.run(command, check=True, cwd=ROOT, env=env)
        figures: dict[str, Any] = json.loads(Path(out.name).read_text())
        return figures


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def table(results: dict[str, dict[str, Any]]) -> str:
    keys = [
        "in_scope_accuracy", "oos_recall", "oos_precision", "answered_share",
        "wrong_answer_rate", "auroc", "calibrated_threshold", "train_seconds",
        "parse_p50_ms", "parse_p99_ms", "peak_rss_mb",
    ]  # fmt: skip
    names = list(results)
    lines = [f"{'metric':<20}" + "".join(f"{name:>14}" for name in names)]
    for key in keys:
        cells = "".join(f"{_number(results[name].get(key)):>14.4f}" for name in names)
        lines.append(f"{key:<20}{cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="10 intents, small subset: a smoke run"
    )
    parser.add_argument(
        "--only", choices=sorted(PIPELINES), help="run one pipeline, keep the other's saved figures"
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="recompute the figures and plot from the last run's kept parse results",
    )
    parser.add_argument("--worker", choices=sorted(PIPELINES), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.quick, args.out)
        return
    # A smoke run's figures mean nothing: keep them out of the repository.
    target = Path(tempfile.gettempdir()) / "nlu_clinc150_quick.json" if args.quick else RESULTS
    results: dict[str, dict[str, Any]] = {}
    for name in [args.only] if args.only else ["ours", "rasa_stock"]:
        if args.rescore:
            raw = scored_path(name, args.quick)
            if not raw.exists():
                print(f"{name}: no kept parse results ({raw}), figures left as they are")
                continue
            figures = summarise(name, json.loads(raw.read_text()))
        else:
            figures = run(name, args.quick)
        # Re-read just before writing: a run of the other pipeline may have finished meanwhile.
        if args.only and target.exists():
            results = json.loads(target.read_text())
        results[name] = figures
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results, indent=2, sort_keys=True))
    if target.exists():
        results = json.loads(target.read_text())
    picture = target.with_name(target.stem + "_tradeoff.png")
    plot(results, picture)
    print(table(results))
    print(f"saved {target} and {picture}")


if __name__ == "__main__":
    main()
