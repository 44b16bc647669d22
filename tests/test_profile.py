"""The council profile: the demo's, a second council's, bad profiles, and no council in Python.

The bank-holiday file format is GOV.UK's (https://www.gov.uk/bank-holidays.json: divisions
``england-and-wales``, ``scotland``, ``northern-ireland``, each ``{"division", "events": [{"title",
"date", "notes", "bunting"}]}``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import bot.profile
from actions.handoff import ActionHandoff
from bot.bins.holidays import HolidayTable
from bot.bins.ics import export_calendar
from bot.bins.model import Address, BinType
from bot.bins.schedule import RoundScheduleSource
from bot.errors import ConfigError
from bot.handoff.questions import RETENTION_SECONDS as QUESTION_SECONDS
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import team_for, teams
from bot.handoff.sla import SlaPolicy
from bot.profile import (
    MAX_REPORT_QUESTION_DAYS,
    CouncilProfile,
    Retention,
    current,
    uk_phone_number,
)
from bot.responses import CouncilResponses, load_responses
from bot.settings import Settings
from bot.testing.responses import rendered

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "council.yml"
GLANFOR = ROOT / "tests" / "data" / "profiles" / "glanfor.yml"
# Ofcom's numbers for drama: 01632 960000-960999 and 0808 157 0000-0999.
DRAMA = re.compile(r"01632 ?960 ?\d{3}|0808 ?157 ?0\d{3}")
NIGHT = datetime(2027, 3, 3, 23, 0, tzinfo=UTC)  # a Wednesday, both councils closed


@pytest.fixture
def glanfor() -> Iterator[CouncilProfile]:
    """The second council's profile, made this process' profile for the test."""
    profile = CouncilProfile.load(GLANFOR)
    previous = bot.profile.use(profile)
    yield profile
    bot.profile.use(previous)


def test_the_demo_profile_is_fictional_with_drama_numbers() -> None:
    profile = CouncilProfile.load(DEMO)
    assert profile.fictional and profile.short_name == "Ashvale"
    assert "FICTIONAL" in DEMO.read_text()
    local = [*profile.contact_centre, *profile.safeguarding.out_of_hours]
    assert local and all(DRAMA.fullmatch(c.phone) for c in local)
    assert profile.closed_days.division == "england-and-wales"
    assert date(2028, 12, 26) in profile.hours.holidays
    assert profile.closed_days.covered_until == date(2028, 12, 31)
    assert profile.routing.team_for("report_pothole", "low_confidence") == "highways"
    assert profile.routing.team_for("report_pothole", "safeguarding") == "safeguarding"


def test_no_council_is_written_into_python() -> None:
    profile = CouncilProfile.load(DEMO)
    host = profile.website.removeprefix("https://").removeprefix("www.")
    words = [profile.short_name.lower(), profile.name.lower(), host.lower()]
    numbers = set()
    for phone in profile.phone_numbers():
        digits = re.sub(r"\D", "", phone)
        numbers |= {phone, digits, digits.removeprefix("0")}
    found = []
    for folder in ("bot", "actions"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            lowered = text.lower()
            found += [f"{path.relative_to(ROOT)}: {w}" for w in words if w in lowered]
            found += [f"{path.relative_to(ROOT)}: {n}" for n in numbers if n in text]
    assert found == []


def test_the_demo_bank_holidays_are_in_gov_uk_format() -> None:
    data = json.loads((ROOT / "data" / "demo" / "bank-holidays.json").read_text())
    division = data["england-and-wales"]
    assert division["division"] == "england-and-wales"
    years = {int(event["date"][:4]) for event in division["events"]}
    assert years == {2024, 2025, 2026, 2027, 2028}
    for event in division["events"]:
        assert set(event) == {"title", "date", "notes", "bunting"}
        assert isinstance(event["bunting"], bool) and isinstance(event["notes"], str)
        date.fromisoformat(event["date"])
    titles = {e["date"]: (e["title"], e["notes"]) for e in division["events"]}
    assert titles["2026-12-28"] == ("Boxing Day", "Substitute day")  # as GOV.UK lists it


def test_a_second_council_is_its_own(glanfor: CouncilProfile) -> None:
    assert current() is glanfor
    assert glanfor.name == "Glanfor County Borough Council"
    assert teams() == ("contact_centre", "council_tax", "housing", "safeguarding", "waste")
    assert team_for("missed_bin", "asked_for_person") == "waste"
    assert team_for("report_pothole", "low_confidence") == "contact_centre"
    policy = SlaPolicy.from_env()
    assert policy.target("P1", "waste").first_response == timedelta(minutes=15)
    assert policy.target("P2", "housing").first_response == timedelta(minutes=30)
    london = ZoneInfo("Europe/London")
    assert not policy.hours.is_open(datetime(2026, 12, 24, 10, tzinfo=london))  # its own day
    assert policy.hours.is_open(datetime(2026, 12, 23, 8, 45, tzinfo=london))  # opens 8.30
    assert glanfor.channel_name("sms") == "Neges destun / Text message"


def test_responses_use_the_profile(glanfor: CouncilProfile) -> None:
    responses = CouncilResponses(responses=load_responses())
    greeting = responses.render("utter_greet", "telegram")
    assert greeting is not None
    assert greeting["text"].startswith("Hello, this is Glanfor County Borough Council's assistant")
    outside = responses.render("utter_bin_postcode_outside", "sms", postcode="SW1A 1AA")
    assert outside is not None
    assert outside["text"].startswith("SW1A 1AA isn't in Glanfor County Borough, so another")
    ask = responses.render("utter_ask_bin_postcode", "whatsapp")
    assert ask is not None and ask["text"] == "What's your postcode? For example GF1 4AB."


def _tracker() -> Tracker:
    text = "my neighbour's child has bruises and I'm scared for her"
    ranked = {"name": "safeguarding", "confidence": 0.97}
    message: dict[str, Any] = {"text": text, "intent": ranked, "intent_ranking": [ranked]}
    events = [{"event": "user", "text": text, "parse_data": message, "input_channel": "sms"}]
    return Tracker("sms:+441632960000:+447700900123", {}, message, events, False, None, {}, "")


async def test_the_handoff_action_follows_the_profile(
    glanfor: CouncilProfile,
    async_redis: redis.asyncio.Redis,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COUNCIL_SAFEGUARDING_WEBHOOK", raising=False)
    monkeypatch.delenv("COUNCIL_SLA_FILE", raising=False)
    queue = HandoffQueue(async_redis, namespace)
    dispatcher = CollectingDispatcher()
    await ActionHandoff(queue, clock=lambda: NIGHT).run(dispatcher, _tracker(), {})
    [text] = rendered(dispatcher.messages, "sms")
    assert "If you or anyone else is in danger right now, phone 999." in text
    assert "Glanfor emergency duty team (social services out of hours): 0808 157 0555" in text
    assert "01632 960 999" not in text and "Ashvale" not in text
    assert "alerted" not in text  # no hook configured: nobody was alerted
    assert text.endswith("after we open at 8.30am tomorrow.")
    case_id = await queue.case_for("sms:+441632960000:+447700900123")
    assert case_id is not None
    record = await queue.get(case_id)
    assert record is not None and record.team == "safeguarding"


def test_bins_are_named_as_the_council_names_them(glanfor: CouncilProfile) -> None:
    assert BinType.parse("the green one") is BinType.RECYCLING  # Glanfor's green box
    assert BinType.RECYCLING.label == "recycling (green box)"
    demo = CouncilProfile.load(DEMO)
    bot.profile.use(demo)
    assert BinType.parse("the green one") is BinType.GARDEN  # Ashvale's green bin
    assert BinType.parse("general food waste") is BinType.FOOD


def test_bin_calendars_carry_the_council(glanfor: CouncilProfile) -> None:
    address = Address("1", "1 Heol y Bont", "GF1 1AA", ())
    source = RoundScheduleSource([address], {}, HolidayTable())
    text = export_calendar("1", source, date(2026, 11, 23), days=7)
    assert "PRODID:-//Glanfor County Borough Council//Council Responder bins//EN" in text


def _broken(tmp_path: Path, change: Any) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    data["closed_days"]["bank_holidays"] = str(ROOT / "data" / "demo" / "bank-holidays.json")
    data["reports"]["gazetteer"] = str(ROOT / data["reports"]["gazetteer"])
    change(data)
    path = tmp_path / "council.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _retention(name: str, value: object) -> Any:
    return lambda d: d["retention"].__setitem__(name, value)


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda d: d.pop("safeguarding"), "safeguarding", "is missing"),
        (lambda d: d["council"].pop("name"), "council.name", "is missing"),
        (lambda d: d.__setitem__("teams", ["housing"]), "teams", "mapping"),
        (lambda d: d["council"].__setitem__("fictional", "yes"), "council.fictional", "true or"),
        (lambda d: d["council"].__setitem__("website", "www.x.gov.uk"), "council.website", "https"),
        (
            lambda d: d["council"].__setitem__("example_postcode", "AV1"),
            "council.example_postcode",
            "not a UK postcode: 'AV1'",
        ),
        (
            lambda d: d["routing"]["topics"].__setitem__("report_pothole", "roads"),
            "routing.topics.report_pothole",
            "unknown team 'roads'",
        ),
        (lambda d: d["routing"].__setitem__("default", "x"), "routing.default", "unknown team"),
        (
            lambda d: d["safeguarding"]["out_of_hours"][0].__setitem__("phone", "01632 960"),
            "safeguarding.out_of_hours[0].phone",
            "not a UK phone number: '01632 960'",
        ),
        (
            lambda d: d["contact_centre"][0].__setitem__("phone", 1632960000),
            "contact_centre[0].phone",
            "must be text",
        ),
        (
            lambda d: d["safeguarding"]["helplines"][0].__setitem__("phone", "+1 555 0100"),
            "safeguarding.helplines[0].phone",
            "not a UK phone number",
        ),
        (lambda d: d["opening_hours"].__setitem__("open", "9am"), "opening_hours", "09:00"),
        (lambda d: d["opening_hours"].__setitem__("lunch", 1), "opening_hours.lunch", "unknown"),
        (lambda d: d.__setitem__("colour", "blue"), "colour", "unknown key"),
        (
            lambda d: d["service_levels"].__setitem__("P1", {"first_response": 30}),
            "service_levels.P1",
            "first_response and resolution",
        ),
        (
            lambda d: d["service_levels"].__setitem__("teams", {"roads": {}}),
            "service_levels.teams.roads",
            "unknown team",
        ),
        (lambda d: d["closed_days"].__setitem__("also", ["31/12"]), "closed_days.also", "dates"),
        (lambda d: d["bins"].pop("food"), "bins.food", "is missing"),
        (lambda d: d["bins"]["garden"].__setitem__("words", []), "bins.garden.words", "list"),
        (lambda d: d.pop("retention"), "retention", "is missing"),
        (lambda d: d["retention"].pop("audit_log"), "retention.audit_log", "is missing"),
        (_retention("conversations", 0), "retention.conversations", "whole number of days"),
        (_retention("handoff_cases", "1y"), "retention.handoff_cases", "whole number"),
        (_retention("failed_messages", True), "retention.failed_messages", "whole number"),
        (_retention("report_questions", 500), "retention.report_questions", "at most 400"),
        (_retention("chat_logs", 30), "retention.chat_logs", "unknown key"),
    ],
)  # fmt: skip
def test_a_bad_profile_names_the_file_key_and_reason(
    tmp_path: Path, change: Any, key: str, reason: str
) -> None:
    path = _broken(tmp_path, change)
    with pytest.raises(ConfigError) as raised:
        CouncilProfile.load(path)
    assert (raised.value.path, raised.value.key) == (str(path), key)
    assert reason in raised.value.reason


def test_a_bad_bank_holiday_file_is_named(tmp_path: Path) -> None:
    holidays = tmp_path / "bank-holidays.json"
    holidays.write_text(json.dumps({"scotland": {"division": "scotland", "events": []}}))
    path = _broken(tmp_path, lambda d: d["closed_days"].__setitem__("bank_holidays", str(holidays)))
    with pytest.raises(ConfigError, match="no such division") as raised:
        CouncilProfile.load(path)
    assert (raised.value.path, raised.value.key) == (str(holidays), "england-and-wales")
    missing = _broken(
        tmp_path, lambda d: d["closed_days"].__setitem__("bank_holidays", "nope.json")
    )
    with pytest.raises(ConfigError, match="cannot be read"):
        CouncilProfile.load(missing)


def test_uk_phone_numbers() -> None:
    good = ["01632 960 000", "0808 2000 247", "+44 1632 960000", "116 123", "999", "0300 123 4567"]
    bad = ["01632 960", "1632 960 000", "+1 555 0100", "00 1632 960000", "phone us", "123"]
    assert all(uk_phone_number(n) for n in good)
    assert not any(uk_phone_number(n) for n in bad)


def test_the_bank_holiday_table_warns_before_it_runs_out() -> None:
    closed = CouncilProfile.load(DEMO).closed_days
    assert closed.notice(date(2028, 10, 1)) is None
    soon = closed.notice(date(2028, 11, 15))
    assert soon is not None and "runs out on 2028-12-31" in soon and "gov.uk" in soon
    late = closed.notice(date(2029, 1, 5))
    assert late is not None and "ran out on 2028-12-31" in late


def test_start_up_warns_when_the_table_has_run_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    last_year = date.today().year - 1
    holidays = tmp_path / "old.json"
    event = {"title": "Christmas Day", "date": f"{last_year}-12-25", "notes": "", "bunting": True}
    holidays.write_text(json.dumps({"england-and-wales": {"division": "x", "events": [event]}}))
    path = _broken(tmp_path, lambda d: d["closed_days"].__setitem__("bank_holidays", str(holidays)))
    monkeypatch.setenv("COUNCIL_PROFILE", str(path))
    previous = bot.profile.use(None)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.profile"):
            loaded = current()
        assert loaded.path == str(path) and current() is loaded  # loaded once
        assert f"ran out on {last_year}-12-31" in caplog.text
        notice = bot.profile.bank_holiday_notice()  # what the console shows
        assert notice is not None and notice in caplog.text
    finally:
        bot.profile.use(previous)


def test_every_response_an_action_names_is_in_the_domain() -> None:
    names = set()
    for path in (ROOT / "actions").glob("*.py"):
        names |= set(re.findall(r"\"(utter_[a-z_]+)\"", path.read_text(encoding="utf-8")))
    assert {"utter_handoff_safeguarding", "utter_bin_postcode_outside"} <= names
    assert names - set(load_responses()) == set()


def test_retention_periods_come_from_the_profile_and_the_environment_overrides_some(
    glanfor: CouncilProfile,
) -> None:
    assert glanfor.retention == Retention(
        handoff_days=730,
        failed_days=14,
        conversation_days=60,
        missed_bin_days=120,
        audit_days=2190,
        report_question_days=366,
    )
    assert glanfor.retention_in_force(Settings.from_env({})) == glanfor.retention
    overridden = glanfor.retention_in_force(
        Settings.from_env(
            {"COUNCIL_HANDOFF_RETENTION_DAYS": "400", "COUNCIL_AUDIT_RETENTION_DAYS": "365"}
        )
    )
    assert (overridden.handoff_days, overridden.audit_days) == (400, 365)
    assert overridden.conversation_days == 60  # no variable: the profile's
    assert overridden.failed_days == 14  # its variable unset: the profile's, not the default
    # the reports' copies of questions cannot outlive the expiry they are written with
    assert MAX_REPORT_QUESTION_DAYS * 86_400 == QUESTION_SECONDS
