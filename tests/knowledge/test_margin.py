"""The calibrated margin: scored on the entries' own example questions."""

from pathlib import Path

import numpy as np
import pytest

from bot.knowledge.margin import (
    DEFAULT_PRECISION,
    FloatArray,
    answer_precision,
    calibrate_margin,
    example_margins,
)


def _unit(*rows: list[float]) -> FloatArray:
    matrix = np.array(rows, dtype=np.float32)
    unit: FloatArray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return unit


def test_each_question_is_scored_as_answer_and_as_uncovered_question() -> None:
    # two tight topics far apart: right answers have large margins, uncovered ones small
    vectors = _unit([1, 0.05, 0], [1, -0.05, 0], [0, 1, 0.05], [0, 1, -0.05])
    scores, correct = example_margins(vectors, ["a", "a", "b", "b"], floor=-1.0)
    right = [s for s, c in zip(scores, correct, strict=True) if c]
    wrong = [s for s, c in zip(scores, correct, strict=True) if not c]
    assert len(right) == len(wrong) == 4
    assert min(right) > 0.9
    assert max(wrong) < 0.2  # with two topics the runner-up of "the other" is 0


def test_the_floor_drops_answers_that_would_never_be_given() -> None:
    vectors = _unit([1, 0.05, 0], [1, -0.05, 0], [0, 1, 0.05], [0, 1, -0.05])
    _, correct = example_margins(vectors, ["a", "a", "b", "b"], floor=0.5)
    assert correct == [True] * 4  # the other topic is never 0.5 similar


def test_one_topic_or_one_question_gives_nothing_to_score() -> None:
    assert example_margins(_unit([1, 0, 0], [1, 0.1, 0]), ["a", "a"], floor=0.0) == ([], [])
    assert example_margins(_unit([1, 0, 0]), ["a"], floor=0.0) == ([], [])


def test_too_few_examples_fall_back_with_a_warning() -> None:
    calibration = calibrate_margin(
        _unit([1, 0, 0], [0, 1, 0]), ["a", "b"], floor=0.0, target_precision=0.98, fallback=0.35
    )
    assert calibration.fallback
    assert calibration.threshold == 0.35
    assert "held-out" in calibration.warning


def test_answer_precision_is_the_classifiers(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "pipeline:\n  - name: WhitespaceTokenizer\n"
        "  - name: bot.nlu.classifier.CouncilIntentClassifier\n    answer_precision: 0.95\n"
    )
    assert answer_precision(config) == pytest.approx(0.95)
    config.write_text("pipeline:\n  - name: WhitespaceTokenizer\n")
    assert answer_precision(config) == DEFAULT_PRECISION


def test_a_large_base_is_scored_on_a_sample_of_its_questions() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores, correct = example_margins(vectors, [f"t{i % 7}" for i in range(3000)], floor=-1.0)
    assert len(scores) == len(correct) == 2 * 1000  # each asked question: as answer and as not
