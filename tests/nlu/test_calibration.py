import io
import json
import math
import tarfile
from pathlib import Path

import pytest

from bot.nlu.calibration import (
    Calibration,
    calibrate,
    outcome,
    read_calibrations,
    stratified_folds,
    trade_off,
    traffic_weights,
)

# Ten held-out messages, best score first: the two lowest-scored in-scope messages were
# misclassified and the two out-of-scope ones score in between.
SCORES = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
CORRECT = [True, True, True, True, False, True, False, True, False, False]
OOS = [False, False, False, False, True, False, True, False, False, False]


def test_the_lowest_threshold_meeting_the_target_is_chosen() -> None:
    # At 0.8 the answered four are all right; at 0.7 one of five is wrong (80%).
    exact = calibrate(
        SCORES, CORRECT, target_precision=1.0, fallback_threshold=0.9, min_examples=5,
        out_of_scope=OOS,
    )  # fmt: skip
    assert exact.threshold == 0.8 and not exact.fallback and exact.warning == ""
    assert exact.answered_share == pytest.approx(0.4)
    assert exact.precision == 1.0
    assert exact.oos_recall == 1.0
    assert exact.examples == 10
    # 6 right of 8 answered (75%) at 0.4 is the lowest reaching 70%; at 0.3 it is 6 of 9.
    loose = calibrate(
        SCORES, CORRECT, target_precision=0.7, fallback_threshold=0.9, min_examples=5,
        out_of_scope=OOS,
    )  # fmt: skip
    assert loose.threshold == 0.4
    assert loose.precision == pytest.approx(6 / 8)
    assert loose.oos_recall == 0.0
    assert loose.answered_share == pytest.approx(0.8)


def test_precision_counts_exactly_at_the_threshold() -> None:
    # 3 right of 4 answered at 0.7 is exactly 75%: reached, not lost to rounding.
    result = calibrate(
        [0.9, 0.8, 0.75, 0.7, 0.1], [True, True, True, False, False],
        target_precision=0.75, fallback_threshold=0.99, min_examples=1,
    )  # fmt: skip
    assert result.threshold == 0.7 and result.precision == pytest.approx(0.75)


def test_ties_are_answered_together() -> None:
    # Two messages share 0.8, one right and one wrong: no threshold separates them.
    result = calibrate(
        [0.9, 0.8, 0.8, 0.1], [True, True, False, True],
        target_precision=0.9, fallback_threshold=0.99, min_examples=1,
    )  # fmt: skip
    assert result.threshold == 0.9 and result.answered_share == 0.25


def test_an_unreachable_target_falls_back_and_says_why() -> None:
    result = calibrate(
        [0.9, 0.8, 0.7] * 20, [False, True, True] * 20,
        target_precision=0.98, fallback_threshold=0.85,
    )  # fmt: skip
    assert result.fallback and result.threshold == 0.85
    assert "no threshold reaches 98.0%" in result.warning
    # The expected figures are those of the fallback threshold on the same data.
    assert result.answered_share == pytest.approx(1 / 3)
    assert result.precision == 0.0


def test_too_few_examples_fall_back() -> None:
    result = calibrate(
        SCORES, CORRECT, target_precision=0.9, fallback_threshold=0.75, min_examples=30
    )
    assert result.fallback and result.threshold == 0.75
    assert "only 10 held-out examples" in result.warning and "30" in result.warning
    assert result.answered_share == pytest.approx(0.4)
    assert math.isnan(result.oos_recall)  # nothing marked out of scope


def test_no_examples_at_all_fall_back_with_nan_figures() -> None:
    result = calibrate([], [], target_precision=0.98, fallback_threshold=0.6)
    assert result.fallback and result.threshold == 0.6 and result.examples == 0
    assert math.isnan(result.answered_share) and math.isnan(result.precision)


def test_nan_scores_are_never_answered() -> None:
    scores = [0.9, math.nan, 0.8, math.nan, 0.7]
    correct = [True, False, True, True, False]
    result = calibrate(
        scores, correct, target_precision=1.0, fallback_threshold=0.99, min_examples=1
    )
    assert result.threshold == 0.8
    assert result.answered_share == pytest.approx(2 / 5)
    assert outcome(0.0, scores, correct).answered_share == pytest.approx(3 / 5)


def test_weights_stand_for_a_different_traffic_mix() -> None:
    # One out-of-scope message among four, weighted as if it were half the traffic.
    scores, correct, oos = (
        [0.9, 0.8, 0.7, 0.6],
        [True, True, False, True],
        [False, False, True, False],
    )
    plain = calibrate(
        scores, correct, target_precision=0.75, fallback_threshold=0.99, min_examples=1,
        out_of_scope=oos,
    )  # fmt: skip
    weighted = calibrate(
        scores, correct, target_precision=0.75, fallback_threshold=0.99, min_examples=1,
        out_of_scope=oos, weights=[1, 1, 3, 1],
    )  # fmt: skip
    assert plain.threshold == 0.6 and plain.precision == pytest.approx(3 / 4)
    assert weighted.threshold == 0.8 and weighted.answered_share == pytest.approx(2 / 6)


def test_trade_off_lists_every_threshold_lowest_first() -> None:
    curve = trade_off(SCORES, CORRECT, out_of_scope=OOS)
    assert [point.threshold for point in curve] == sorted(SCORES)
    lowest, highest = curve[0], curve[-1]
    assert lowest.answered_share == 1.0 and lowest.oos_recall == 0.0
    assert lowest.in_scope_accuracy == pytest.approx(6 / 8)
    assert highest.answered_share == pytest.approx(0.1) and highest.oos_recall == 1.0
    for point in curve:  # the vectorised sweep agrees with the direct count
        direct = outcome(point.threshold, SCORES, CORRECT, out_of_scope=OOS)
        assert point.precision == pytest.approx(direct.precision)
        assert point.oos_recall == pytest.approx(direct.oos_recall)
        assert point.in_scope_accuracy == pytest.approx(direct.in_scope_accuracy)


def test_round_trips_through_json_with_nan() -> None:
    result = calibrate(
        SCORES, CORRECT, target_precision=0.9, fallback_threshold=0.75, min_examples=30
    )
    text = json.dumps(result.to_dict(), allow_nan=False)  # strict JSON: NaN became null
    assert Calibration.from_dict(json.loads(text)).to_dict() == result.to_dict()
    assert math.isnan(Calibration.from_dict(json.loads(text)).oos_recall)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": "high"}, "threshold must be a number"),
        ({"examples": 1.5}, "examples must be a whole number"),
        ({"fallback": "no"}, "fallback must be true or false"),
    ],
)
def test_from_dict_rejects_bad_values(change: dict[str, object], message: str) -> None:
    data = {**calibrate(SCORES, CORRECT, target_precision=0.9, fallback_threshold=0.5).to_dict()}
    with pytest.raises(ValueError, match=message):
        Calibration.from_dict({**data, **change})
    del data["threshold"]
    with pytest.raises(ValueError, match="threshold is missing"):
        Calibration.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"correct": [True]}, "same length"),
        ({"target_precision": 0.0}, "target_precision"),
        ({"out_of_scope": [True, False]}, "cannot be a correct answer"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "scores": [0.5, 0.6], "correct": [True, False], "target_precision": 0.9,
        "fallback_threshold": 0.5, **kwargs,
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        calibrate(**arguments)  # type: ignore[arg-type]


def test_folds_keep_every_label_in_training_and_hold_out_single_examples_never() -> None:
    labels = ["a"] * 10 + ["b"] * 2 + ["c"]
    folds = stratified_folds(labels, 5, seed=1)
    assert folds[-1] == -1  # 'c' has one example: never held out
    for fold in range(5):
        kept = {label for label, f in zip(labels, folds, strict=True) if f != fold}
        assert kept == {"a", "b", "c"}
        assert sum(1 for label, f in zip(labels, folds, strict=True) if f == fold) >= 2
    assert sorted(folds[:10].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # stratified
    assert len(set(folds[10:12].tolist())) == 2  # 'b' held out once in each of two folds
    with pytest.raises(ValueError, match="at least 2"):
        stratified_folds(labels, 1)


def test_traffic_weights_make_out_of_scope_the_stated_share() -> None:
    flags = [True] + [False] * 9
    weights = traffic_weights(flags, 0.2)
    assert weights is not None
    oos = sum(w for w, flag in zip(weights, flags, strict=True) if flag)
    assert oos / sum(weights) == pytest.approx(0.2)
    assert traffic_weights(flags, None) is None
    assert traffic_weights([False, False], 0.2) is None  # no out-of-scope: no mix to change
    with pytest.raises(ValueError, match="between 0 and 1"):
        traffic_weights(flags, 1.0)


def test_calibrations_are_read_from_a_model_archive(tmp_path: Path) -> None:
    result = calibrate(SCORES, CORRECT, target_precision=0.9, fallback_threshold=0.75)
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, body in [
            ("components/train_CouncilIntentClassifier2/calibration.json", result.to_dict()),
            ("components/train_Other3/config.json", {"x": 1}),
        ]:
            data = json.dumps(body).encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    found = read_calibrations(archive)
    assert list(found) == ["train_CouncilIntentClassifier2"]
    assert found["train_CouncilIntentClassifier2"].to_dict() == result.to_dict()
    (tmp_path / "bad.tar.gz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model archive"):
        read_calibrations(tmp_path / "bad.tar.gz")
