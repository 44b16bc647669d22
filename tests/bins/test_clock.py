from __future__ import annotations

from datetime import date

import pytest

from bot.bins.clock import today
from bot.errors import ConfigError


def test_council_today_fixes_the_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_TODAY", "2026-12-29")
    assert today() == date(2026, 12, 29)


def test_without_council_today_it_is_a_real_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COUNCIL_TODAY", raising=False)
    assert abs((today() - date.today()).days) <= 1


def test_bad_council_today_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_TODAY", "29/12/2026")
    with pytest.raises(ConfigError) as caught:
        today()
    assert caught.value.key == "COUNCIL_TODAY"
