"""How much closer a message must be to one topic than to any other before it is answered.

When the classifier is not confident, the knowledge base may still answer by similarity, but a
wrong answer (an entry of another topic) is worse than a clarifying question or a person. The
score of such an answer is its **margin**: the similarity of the message to the closest
example question of the best topic, minus its similarity to the closest one of the next topic.

The threshold is calibrated on the live entries themselves, at the same answer precision as the
classifier (``answer_precision`` of ``bot.nlu.classifier.CouncilIntentClassifier`` in
``config.yml``, :func:`answer_precision`), with :func:`bot.nlu.calibration.calibrate`. Each
example question is asked twice, leaving itself out:

- as a question of its own topic: the right answer, scored by its own topic's margin over the
  next topic (``correct``);
- as if its topic had no entries (a question near the council's topics that the knowledge base
  does not cover, like "can I rent an allotment"): any answer is wrong, scored by the margin of
  the best other topic over the one after it (``out_of_scope``).

Only answers that would pass the absolute similarity floor count; a base of more than 1,000
example questions is scored on an even sample of 1,000 of them. The threshold is recomputed
whenever the live entries change (so on every publish), in every process, from the embeddings
it already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml

from bot.nlu.calibration import Calibration, calibrate

__all__ = ["DEFAULT_PRECISION", "answer_precision", "calibrate_margin", "example_margins"]

DEFAULT_PRECISION = 0.98
"""The answer precision when ``config.yml`` names none."""

_CLASSIFIER = "CouncilIntentClassifier"
_CHUNK = 512
_MAX_ASKED = 1000

FloatArray = npt.NDArray[np.float32]


def answer_precision(config_path: str | Path = "config.yml") -> float:
    """The classifier's ``answer_precision`` in ``config.yml`` (else :data:`DEFAULT_PRECISION`)."""
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
    for step in config.get("pipeline") or []:
        if str(step.get("name", "")).endswith(_CLASSIFIER) and "answer_precision" in step:
            return float(step["answer_precision"])
    return DEFAULT_PRECISION


def example_margins(
    vectors: FloatArray, topics: Sequence[str], floor: float
) -> tuple[list[float], list[bool]]:
    """Score every example question as an answer and as an out-of-topic question.

    Args:
        vectors: One normalised embedding row per example question.
        topics: The topic of each example question.
        floor: An answer below this similarity is never given, so it is not scored.

    Returns:
        Margins and whether each would be a right answer (see the module docstring).
    """
    names = sorted(set(topics))
    if len(names) < 2 or len(vectors) < 2:
        return [], []
    topic_ids = np.array([names.index(t) for t in topics])
    order = np.argsort(topic_ids, kind="stable")
    ordered = vectors[order]
    ids = topic_ids[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    scores: list[float] = []
    correct: list[bool] = []
    # a large base is scored on an even sample of its questions (against all of them)
    asked = np.linspace(0, len(ordered) - 1, min(len(ordered), _MAX_ASKED)).astype(np.intp)
    for start in range(0, len(asked), _CHUNK):
        positions = asked[start : start + _CHUNK]
        count = len(positions)
        sims = ordered[positions] @ ordered.T
        sims[np.arange(count), positions] = -np.inf  # leave itself out
        per_topic = np.maximum.reduceat(sims, starts, axis=1)
        own_ids = ids[positions]
        own = per_topic[np.arange(count), own_ids].copy()
        per_topic[np.arange(count), own_ids] = -np.inf
        if per_topic.shape[1] > 2:  # the two best other topics, in order
            top = -np.partition(-per_topic, 1, axis=1)[:, :2]
        else:
            top = np.sort(per_topic, axis=1)[:, ::-1][:, :2]
        best, runner_up = top[:, 0], np.where(np.isfinite(top[:, 1]), top[:, 1], 0.0)
        for mine, other, second in zip(own, best, runner_up, strict=True):
            if mine >= floor and np.isfinite(mine):
                scores.append(float(mine - other))
                correct.append(True)
            if other >= floor:
                scores.append(float(other - second))
                correct.append(False)
    return scores, correct


def calibrate_margin(
    vectors: FloatArray,
    topics: Sequence[str],
    *,
    floor: float,
    target_precision: float,
    fallback: float,
) -> Calibration:
    """The calibrated margin for these example questions (see the module docstring).

    With too few scored examples, or none reaching the target, the ``fallback`` margin is used
    and the calibration says so (``fallback``, ``warning``).
    """
    scores, correct = example_margins(vectors, topics, floor)
    return calibrate(
        scores,
        correct,
        target_precision=target_precision,
        fallback_threshold=fallback,
        out_of_scope=[not c for c in correct],
    )
