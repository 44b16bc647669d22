"""``python -m bot.run --rasa-workers N``: how many Rasa workers share the inbox."""

from __future__ import annotations

import pytest

from bot.run import _parse_args


def test_one_rasa_worker_unless_asked_for_more() -> None:
    assert _parse_args([]).rasa_workers == 1
    assert _parse_args(["--rasa-workers", "2"]).rasa_workers == 2


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_a_number_of_workers_that_is_not_one_or_more_is_refused(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        _parse_args(["--rasa-workers", workers])
    assert refused.value.code == 2
    assert "--rasa-workers" in capsys.readouterr().err
