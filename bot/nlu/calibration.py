"""The answer-or-hand-off threshold, calibrated on held-out scores (pure: no Rasa import).

A trained classifier gives each message a score (higher: more sure it is in scope and right).
:func:`calibrate` takes the scores of messages the classifier was **not** trained on, each marked
right or wrong (an out-of-scope message, or a misclassified one, is wrong if answered), and picks
the lowest threshold whose answered set (``score >= threshold``) is right at least
``target_precision`` of the time: the most answers the stated risk allows. With too few held-out
messages, or when no threshold reaches the target, it falls back to a stated conservative threshold
and says so (``fallback``, ``warning``).

``weights`` let the held-out mix stand for a different traffic mix: a data set with 1% out-of-scope
messages can be weighted so they count as the share real traffic is expected to have (see
docs/nlu.md). A score that is NaN is never answered (no threshold admits it).
"""

from __future__ import annotations

import json
import math
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "CALIBRATION_FILE",
    "Calibration",
    "Outcome",
    "calibrate",
    "outcome",
    "read_calibrations",
    "stratified_folds",
    "trade_off",
    "traffic_weights",
]

CALIBRATION_FILE = "calibration.json"

_FloatArray = npt.NDArray[np.float64]
_BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Outcome:
    """What answering at one threshold does on a held-out set (weighted shares)."""

    threshold: float
    answered_share: float  # share of messages answered (nan with no messages)
    precision: float  # share of answered ones that were right (nan when none answered)
    oos_recall: float  # share of out-of-scope messages not answered (nan when none)
    in_scope_accuracy: float  # share of in-scope messages answered right (nan when none)


@dataclass(frozen=True)
class Calibration:
    """A calibrated threshold and what it is expected to do (see the module docstring)."""

    threshold: float  # answer when score >= threshold
    target_precision: float  # e.g. 0.98 = wrong answers below 2% of answered
    answered_share: float  # share of held-out messages (in-scope + out-of-scope) answered
    precision: float  # share of answered ones that were right
    oos_recall: float  # share of out-of-scope messages NOT answered (nan if none)
    examples: int
    fallback: bool  # True when too little data: conservative threshold used
    warning: str = ""  # plain words, names the intent(s) when that's the reason

    @property
    def wrong_answer_rate(self) -> float:
        """Expected share of answers that are wrong (``1 - precision``)."""
        return 1.0 - self.precision

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-safe dict (NaN becomes ``None``)."""
        return {
            name: None if isinstance(value, float) and math.isnan(value) else value
            for name, value in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Calibration:
        """Rebuild from :meth:`to_dict`'s output (``None`` becomes NaN).

        Raises:
            ValueError: A field is missing or has the wrong type.
        """
        values: dict[str, object] = {}
        for field in fields(cls):
            if field.name not in data:
                if field.name == "warning":
                    continue
                raise ValueError(f"calibration: {field.name} is missing")
            value = data[field.name]
            if field.name == "examples":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"calibration: examples must be a whole number, not {value!r}")
            elif field.name == "fallback":
                if not isinstance(value, bool):
                    raise ValueError(f"calibration: fallback must be true or false, not {value!r}")
            elif field.name == "warning":
                if not isinstance(value, str):
                    raise ValueError(f"calibration: warning must be text, not {value!r}")
            elif value is None:
                value = math.nan
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"calibration: {field.name} must be a number, not {value!r}")
            else:
                value = float(value)
            values[field.name] = value
        return cls(**values)  # type: ignore[arg-type]

    def summary(self) -> str:
        """One line for people: the threshold and what it is expected to do."""
        how = "fallback threshold" if self.fallback else "calibrated threshold"
        line = (
            f"{how} {self.threshold:.3f} for {self.target_precision:.1%} answer precision: "
            f"expected answered {_percent(self.answered_share)}, precision "
            f"{_percent(self.precision)}, out-of-scope recall {_percent(self.oos_recall)} "
            f"({self.examples} held-out examples)"
        )
        return f"{line}; WARNING: {self.warning}" if self.warning else line


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def _arrays(
    scores: Sequence[float],
    correct: Sequence[bool],
    out_of_scope: Sequence[bool] | None,
    weights: Sequence[float] | None,
) -> tuple[_FloatArray, _BoolArray, _BoolArray, _FloatArray]:
    score = np.asarray(scores, dtype=np.float64).reshape(-1)
    right = np.asarray(correct, dtype=np.bool_).reshape(-1)
    oos = (
        np.zeros(len(score), dtype=np.bool_)
        if out_of_scope is None
        else np.asarray(out_of_scope, dtype=np.bool_).reshape(-1)
    )
    weight = (
        np.ones(len(score), dtype=np.float64)
        if weights is None
        else np.asarray(weights, dtype=np.float64).reshape(-1)
    )
    if not len(score) == len(right) == len(oos) == len(weight):
        raise ValueError("scores, correct, out_of_scope and weights must have the same length")
    if np.any(right & oos):
        raise ValueError("an out-of-scope message cannot be a correct answer")
    if np.any(~np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError("weights must be finite and not negative")
    return score, right, oos, weight


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else math.nan


def _outcome(
    threshold: float, score: _FloatArray, right: _BoolArray, oos: _BoolArray, weight: _FloatArray
) -> Outcome:
    answered = score >= threshold  # NaN scores compare False: never answered
    in_scope = ~oos
    return Outcome(
        threshold=threshold,
        answered_share=_share(float(weight[answered].sum()), float(weight.sum())),
        precision=_share(float(weight[answered & right].sum()), float(weight[answered].sum())),
        oos_recall=_share(float(weight[oos & ~answered].sum()), float(weight[oos].sum())),
        in_scope_accuracy=_share(
            float(weight[in_scope & answered & right].sum()), float(weight[in_scope].sum())
        ),
    )


def outcome(
    threshold: float,
    scores: Sequence[float],
    correct: Sequence[bool],
    *,
    out_of_scope: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
) -> Outcome:
    """What answering when ``score >= threshold`` does on these messages."""
    return _outcome(threshold, *_arrays(scores, correct, out_of_scope, weights))


def trade_off(
    scores: Sequence[float],
    correct: Sequence[bool],
    *,
    out_of_scope: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
) -> list[Outcome]:
    """The outcome at every distinct finite score, lowest threshold first (the whole curve)."""
    score, right, oos, weight = _arrays(scores, correct, out_of_scope, weights)
    points = _sweep(score, right, oos, weight)
    return [
        Outcome(float(t), float(a), float(p), float(r), float(i))
        for t, a, p, r, i in zip(*points, strict=True)
    ]


def _sweep(
    score: _FloatArray, right: _BoolArray, oos: _BoolArray, weight: _FloatArray
) -> tuple[_FloatArray, _FloatArray, _FloatArray, _FloatArray, _FloatArray]:
    # Vectorised: sort by score descending, cumulative sums give every threshold at once.
    finite = np.isfinite(score)
    order = np.argsort(-score[finite], kind="stable")
    s, r, o, w = (
        score[finite][order],
        right[finite][order],
        oos[finite][order],
        weight[finite][order],
    )
    answered = np.cumsum(w)
    answered_right = np.cumsum(w * r)
    answered_oos = np.cumsum(w * o)
    answered_in_right = np.cumsum(w * (r & ~o))
    # Only the last position of each run of equal scores is a threshold (ties move together).
    last = np.ones(len(s), dtype=np.bool_)
    last[:-1] = s[:-1] != s[1:]
    total, total_oos = float(weight.sum()), float(weight[oos].sum())
    total_in = total - total_oos
    with np.errstate(invalid="ignore", divide="ignore"):
        thresholds = s[last]
        share = answered[last] / total if total > 0 else np.full(last.sum(), np.nan)
        precision = np.where(answered[last] > 0, answered_right[last] / answered[last], np.nan)
        recall = (
            1.0 - answered_oos[last] / total_oos if total_oos > 0 else np.full(last.sum(), np.nan)
        )
        accuracy = (
            answered_in_right[last] / total_in if total_in > 0 else np.full(last.sum(), np.nan)
        )
    # Lowest threshold first.
    return thresholds[::-1], share[::-1], precision[::-1], recall[::-1], accuracy[::-1]


def calibrate(
    scores: Sequence[float],
    correct: Sequence[bool],
    *,
    target_precision: float,
    fallback_threshold: float,
    min_examples: int = 30,
    out_of_scope: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
) -> Calibration:
    """Lowest threshold whose answered set has precision >= target.

    ``correct`` is False for out-of-scope and misclassified messages; ``out_of_scope`` marks the
    out-of-scope ones (for the reported recall; NaN when not given or none); ``weights`` weigh each
    message in every share. With fewer than ``min_examples`` messages, or no threshold reaching
    the target, ``fallback_threshold`` is used, ``fallback`` is True and ``warning`` says why.

    Raises:
        ValueError: The sequences differ in length, a target outside (0, 1], or bad weights.
    """
    if not 0 < target_precision <= 1:
        raise ValueError(f"target_precision must be in (0, 1], not {target_precision}")
    score, right, oos, weight = _arrays(scores, correct, out_of_scope, weights)
    examples = len(score)

    def fallback(warning: str) -> Calibration:
        at = _outcome(fallback_threshold, score, right, oos, weight)
        return Calibration(
            threshold=float(fallback_threshold),
            target_precision=target_precision,
            answered_share=at.answered_share,
            precision=at.precision,
            oos_recall=at.oos_recall,
            examples=examples,
            fallback=True,
            warning=warning,
        )

    if examples < min_examples:
        return fallback(
            f"only {examples} held-out examples (at least {min_examples} are needed to "
            f"calibrate): the conservative threshold {fallback_threshold} is used"
        )
    thresholds, share, precision, recall, _ = _sweep(score, right, oos, weight)
    # A tiny tolerance: a precision of exactly the target must not be lost to rounding.
    reaching = np.flatnonzero(precision >= target_precision - 1e-12)
    if reaching.size == 0:
        return fallback(
            f"no threshold reaches {target_precision:.1%} answer precision on the "
            f"{examples} held-out examples: the conservative threshold {fallback_threshold} "
            "is used"
        )
    best = int(reaching[0])
    return Calibration(
        threshold=float(thresholds[best]),
        target_precision=target_precision,
        answered_share=float(share[best]),
        precision=float(precision[best]),
        oos_recall=float(recall[best]),
        examples=examples,
        fallback=False,
    )


def stratified_folds(labels: Sequence[str], folds: int, *, seed: int = 0) -> npt.NDArray[np.int64]:
    """Assign each example the fold it is held out in, keeping every label in every training set.

    Each label's examples are shuffled and dealt round-robin over the folds (from a random
    starting fold), so every fold holds about the same share of each label. A label with a single
    example is never held out (``-1``): held out, its fold's model would not know it at all. A
    label with fewer examples than folds is held out in as many folds as it has examples, one at a
    time, so the rest always stay in training.

    Raises:
        ValueError: ``folds`` is below 2.
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, not {folds}")
    rng = np.random.default_rng(seed)
    assignment = np.full(len(labels), -1, dtype=np.int64)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    for label in sorted(by_label):
        members = np.array(by_label[label], dtype=np.int64)
        if len(members) < 2:
            continue
        rng.shuffle(members)
        start = int(rng.integers(folds))
        assignment[members] = (start + np.arange(len(members))) % folds
    return assignment


def read_calibrations(archive: Path) -> dict[str, Calibration]:
    """The calibrations stored in a trained Rasa model archive, by graph component name.

    Rasa keeps each component's files under ``components/<name>/``; every ``calibration.json``
    there is read (without unpacking anything else).

    Raises:
        OSError: The archive cannot be read.
        ValueError: Not a model archive, or a stored calibration is malformed.
    """
    found: dict[str, Calibration] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if member.isfile() and parts[-1] == CALIBRATION_FILE and "components" in parts:
                    stream = tar.extractfile(member)
                    assert stream is not None  # a regular file
                    found[parts[-2]] = Calibration.from_dict(json.loads(stream.read()))
    except tarfile.TarError as error:
        raise ValueError(f"{archive} is not a model archive ({error})") from None
    return found


def traffic_weights(out_of_scope: Sequence[bool], share: object) -> list[float] | None:
    """Weights making the out-of-scope messages ``share`` of the total (None: as they come).

    ``None`` when ``share`` is None or the messages are all in scope or all out of scope (no mix
    to change).

    Raises:
        ValueError: ``share`` is not a number strictly between 0 and 1.
    """
    if share is None:
        return None
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise ValueError(f"the out-of-scope share must be between 0 and 1, not {share!r}")
    flags = [bool(flag) for flag in out_of_scope]
    count = sum(flags)
    if count in (0, len(flags)):
        return None
    weight = share / (1 - share) * (len(flags) - count) / count
    return [weight if flag else 1.0 for flag in flags]
