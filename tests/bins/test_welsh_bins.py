"""Bin days and missed bins in a Welsh conversation: Welsh words, Welsh dates, Welsh bin names."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher

from actions.bins import ActionBinCollectionDay, spoken_date
from bot.bins.missed import MissedReports
from bot.bins.schedule import RoundScheduleSource
from bot.bins.store import BinStore
from bot.errors import ConfigError
from bot.profile import CouncilProfile, current
from bot.responses import load_responses, variation_language
from bot.testing.responses import rendered_messages

from .test_actions import DOMAIN, missed_report, tracker

ROOT = Path(__file__).resolve().parents[2]
WELSH = {"language": "cy"}
WEEKDAYS = ("Llun", "Mawrth", "Mercher", "Iau", "Gwener", "Sadwrn", "Sul")
MONTHS = (
    "Ionawr", "Chwefror", "Mawrth", "Ebrill", "Mai", "Mehefin",
    "Gorffennaf", "Awst", "Medi", "Hydref", "Tachwedd", "Rhagfyr",
)  # fmt: skip


def _welsh(dispatcher: CollectingDispatcher) -> list[str]:
    """What a resident in a Welsh conversation reads (the Rasa server picks the Welsh texts)."""
    messages = rendered_messages(dispatcher.messages, "whatsapp", slots=WELSH)
    return [str(m["text"]) for m in messages]


def _cy(code: str) -> str:
    return current().bins[code].label_in("cy")


def test_welsh_dates_have_welsh_weekdays_and_months() -> None:
    monday = date(2026, 11, 23)
    week = [spoken_date(monday + timedelta(days=n), monday, "cy") for n in range(7)]
    assert week[0] == "Dydd Llun 23 Tachwedd" and week[6] == "Dydd Sul 29 Tachwedd"
    assert [day.split()[1] for day in week] == list(WEEKDAYS)
    firsts = [spoken_date(date(2026, m, 1), monday, "cy").split()[-1] for m in range(1, 13)]
    assert firsts == list(MONTHS)
    assert spoken_date(date(2027, 1, 2), date(2026, 12, 28), "cy") == "Dydd Sadwrn 2 Ionawr 2027"
    # English stays as it was
    assert spoken_date(date(2026, 12, 2), monday) == "Wednesday 2 December"


@pytest.mark.parametrize(
    "name", sorted(yaml.safe_load((ROOT / "responses" / "bins.yml").read_text())["responses"])
)
def test_every_bin_reply_has_its_welsh_case(name: str) -> None:
    def cases(language: str) -> set[frozenset[tuple[str, str]]]:
        return {
            frozenset(
                (c["name"], c["value"]) for c in v.get("condition") or () if c["name"] != "language"
            )
            for v in load_responses()[name]
            if variation_language(v) == language
        }

    assert cases("cy") == cases("en")


async def test_the_bin_day_answer_in_welsh(
    store: BinStore, demo_source: RoundScheduleSource
) -> None:
    address = demo_source.addresses_at("AV1 2BX")[0]
    dispatcher = CollectingDispatcher()
    action = ActionBinCollectionDay(store=store, today=lambda: date(2026, 11, 23))
    await action.run(dispatcher, tracker({"bin_uprn": address.uprn, **WELSH}), DOMAIN)
    answer, link = _welsh(dispatcher)
    assert answer.splitlines() == [
        "Y casgliadau nesaf yn 2 Mill Lane, AV1 2BX:",
        f"Dydd Llun 23 Tachwedd: {_cy('recycling')}",
        f"Dydd Llun 23 Tachwedd: {_cy('food')}",
        f"Dydd Llun 30 Tachwedd: {_cy('general')}",
    ]
    assert link.startswith("Ychwanegwch nhw at eich calendr: ")
    # the same conversation in English is unchanged
    english = CollectingDispatcher()
    await action.run(english, tracker({"bin_uprn": address.uprn}), DOMAIN)
    assert (
        "Monday 23 November: " + current().bins["recycling"].label
        in english.messages[0]["collections"]
    )


async def test_a_missed_bin_in_welsh(
    store: BinStore, missed_reports: MissedReports, uprn: str
) -> None:

    async def report(bin_type: str, today: date) -> str:
        dispatcher, _ = await missed_report(
            store, missed_reports, uprn, bin_type, today, extra=WELSH
        )
        [said] = _welsh(dispatcher)
        return said

    reported = await report("general", date(2026, 11, 17))
    assert reported.startswith(f"Mae'n ddrwg gen i na chafodd eich {_cy('general')} ei wagio")
    assert "(casgliad Dydd Llun 16 Tachwedd)" in reported and "MB-2026-000001" in reported
    not_due = await report("general", date(2026, 11, 24))
    assert "Y casgliad nesaf: Dydd Llun 30 Tachwedd." in not_due


def _profile(tmp_path: Path, bins: dict[str, Any]) -> Path:
    data = yaml.safe_load((ROOT / "council.yml").read_text())
    data["closed_days"]["bank_holidays"] = str(ROOT / "data" / "demo" / "bank-holidays.json")
    data["reports"]["gazetteer"] = str(ROOT / data["reports"]["gazetteer"])
    data["bins"]["food"] = bins
    path = tmp_path / "council.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_welsh_bin_name_is_optional_but_never_empty(tmp_path: Path) -> None:
    english_only = CouncilProfile.load(
        _profile(tmp_path, {"label": "food waste", "words": ["food"]})
    )
    assert english_only.bins["food"].label_in("cy") == "food waste"  # no Welsh name: the English
    welsh = CouncilProfile.load(
        _profile(tmp_path, {"label": "food waste", "words": ["food"], "cy": "gwastraff bwyd"})
    )
    assert welsh.bins["food"].label_in("cy") == "gwastraff bwyd"
    assert welsh.bins["food"].label_in("en") == "food waste"
    for bad in ("", "  ", 3, ["gwastraff"]):
        path = _profile(tmp_path, {"label": "food waste", "words": ["food"], "cy": bad})
        with pytest.raises(ConfigError) as raised:
            CouncilProfile.load(path)
        assert (raised.value.key, raised.value.reason) == ("bins.food.cy", "must be non-empty text")
