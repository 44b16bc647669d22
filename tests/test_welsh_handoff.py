"""A conversation in Welsh that needs a person goes to a Welsh-speaking team, and says so in Welsh.

Teams are flagged ``welsh_speaking`` in the council profile (Glanfor: the contact centre, council
tax and safeguarding); agents see the language on each case.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import bot.profile
from actions.handoff import ActionHandoff
from bot.errors import ConfigError
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord, build_record, team_for
from bot.profile import CouncilProfile
from bot.testing.responses import rendered

ROOT = Path(__file__).resolve().parent.parent
GLANFOR = ROOT / "tests" / "data" / "profiles" / "glanfor.yml"
WEDNESDAY_NOON = datetime(2027, 3, 3, 12, tzinfo=UTC)  # Glanfor's contact centre is open
WEDNESDAY_NIGHT = datetime(2027, 3, 3, 22, tzinfo=UTC)


@pytest.fixture
def glanfor() -> Iterator[CouncilProfile]:
    profile = CouncilProfile.load(GLANFOR)
    previous = bot.profile.use(profile)
    yield profile
    bot.profile.use(previous)


@pytest.fixture
def queue(async_redis: redis.asyncio.Redis, namespace: str) -> HandoffQueue:
    return HandoffQueue(async_redis, namespace)


def _profile_with(tmp_path: Path, teams: Any) -> Path:
    data = yaml.safe_load(GLANFOR.read_text(encoding="utf-8"))
    data["teams"] = teams
    data["closed_days"]["bank_holidays"] = str(ROOT / "data" / "demo" / "bank-holidays.json")
    data["reports"]["gazetteer"] = str(GLANFOR.parent / data["reports"]["gazetteer"])
    path = tmp_path / "council.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_profile_says_which_teams_speak_welsh(glanfor: CouncilProfile) -> None:
    assert glanfor.routing.welsh_speaking == {"contact_centre", "council_tax", "safeguarding"}
    # a flagged team keeps its display name like the others
    assert glanfor.teams["council_tax"] == "Council tax"
    assert glanfor.teams["waste"] == "Waste and recycling"


@pytest.mark.parametrize(
    ("teams", "key", "reason"),
    [
        ({"contact_centre": {"name": "C", "welsh_speaking": "yes"}}, "welsh_speaking", "true or"),
        ({"contact_centre": {"welsh_speaking": True}}, "contact_centre.name", "is missing"),
        ({"contact_centre": {"name": "C", "welsh": True}}, "contact_centre.welsh", "unknown key"),
        ({"contact_centre": 3}, "teams.contact_centre", "welsh_speaking: true"),
    ],
)  # fmt: skip
def test_a_wrong_flag_names_the_key(tmp_path: Path, teams: Any, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        CouncilProfile.load(_profile_with(tmp_path, teams))
    assert key in raised.value.key
    assert reason in raised.value.reason
    assert raised.value.path == str(tmp_path / "council.yml")


@pytest.mark.parametrize(
    ("topic", "reason", "english", "welsh"),
    [
        ("council_tax_pay", "low_confidence", "council_tax", "council_tax"),  # speaks Welsh
        ("missed_bin", "asked_for_person", "waste", "contact_centre"),  # the default does
        ("housing_repair", "complaint", "housing", "contact_centre"),
        ("anything", "out_of_scope", "contact_centre", "contact_centre"),
        ("safeguarding", "safeguarding", "safeguarding", "safeguarding"),
    ],
)
def test_welsh_conversations_go_to_welsh_speaking_teams(
    glanfor: CouncilProfile, topic: str, reason: str, english: str, welsh: str
) -> None:
    assert team_for(topic, reason) == team_for(topic, reason, language="en") == english
    assert team_for(topic, reason, language="cy") == welsh


def test_without_a_welsh_speaking_default_the_first_welsh_team_by_id(
    tmp_path: Path,
) -> None:
    teams = {
        "contact_centre": "Contact centre",
        "safeguarding": "Safeguarding",
        "council_tax": {"name": "Council tax", "welsh_speaking": True},
        "waste": {"name": "Waste", "welsh_speaking": True},
        "housing": "Housing",
    }
    profile = CouncilProfile.load(_profile_with(tmp_path, teams))
    assert profile.routing.team_for("housing_repair", "complaint", welsh=True) == "council_tax"
    assert profile.routing.team_for("missed_bin", "complaint", welsh=True) == "waste"
    # safety first: safeguarding stays with the safeguarding team whatever the language
    assert profile.routing.team_for("safeguarding", "safeguarding", welsh=True) == "safeguarding"


def test_a_council_without_welsh_teams_routes_as_before() -> None:
    profile = CouncilProfile.load(ROOT / "council.yml")
    assert profile.routing.welsh_speaking == {"customer_services"}
    unflagged = bot.profile.Routing("a", "b", {"x": "c"})
    assert unflagged.team_for("x", "complaint", welsh=True) == "c"


def test_the_record_carries_the_language_and_reads_old_records(glanfor: CouncilProfile) -> None:
    events = [{"event": "user", "text": "Ga i siarad â pherson?", "timestamp": 1.0}]
    record = build_record(
        "rest:resident",
        events,
        reason="asked_for_person",
        topic="missed_bin",
        channel="rest",
        account="",
        sender="resident",
        language="cy",
    )
    assert (record.language, record.team) == ("cy", "contact_centre")
    again = HandoffRecord.from_json(record.to_json())
    assert again == record
    old = record.to_json().replace(', "language": "cy"', "")
    assert "language" not in old
    assert HandoffRecord.from_json(old).language == "en"


def _tracker(text: str, intent: str, language: str | None) -> Tracker:
    ranked = {"name": intent, "confidence": 0.9}
    message = {"text": text, "intent": ranked, "intent_ranking": [ranked], "entities": []}
    events = [{"event": "user", "text": text, "parse_data": message, "input_channel": "sms"}]
    slots = {"language": language}
    sender = "sms:+441632960555:+447700900123"
    return Tracker(sender, slots, message, events, False, None, {}, "action_listen")


async def _handoff(
    queue: HandoffQueue, profile: CouncilProfile, tracker: Tracker, now: datetime
) -> tuple[HandoffRecord, str]:
    dispatcher = CollectingDispatcher()
    await ActionHandoff(queue, profile.hours, clock=lambda: now).run(dispatcher, tracker, {})
    [record] = await queue.list_open_for(list(profile.teams))
    [text] = rendered(dispatcher.messages, "sms", profile=profile)
    return record, text


async def test_a_welsh_request_for_a_person_gets_a_welsh_speaker(
    glanfor: CouncilProfile, queue: HandoffQueue
) -> None:
    tracker = _tracker("Dw i isio siarad hefo rhywun am fy min", "missed_bin", "cy")
    record, text = await _handoff(queue, glanfor, tracker, WEDNESDAY_NOON)
    assert (record.language, record.team) == ("cy", "contact_centre")
    assert text == (
        "Diolch, rwyf wedi anfon hyn, gyda'n sgwrs hyd yma, at aelod o'n tîm sy'n siarad "
        "Cymraeg. Bydd rhywun yn eich ateb chi yma yn Gymraeg o fewn yr oriau gwaith nesaf."
    )


async def test_the_same_in_english_is_unchanged(
    glanfor: CouncilProfile, queue: HandoffQueue
) -> None:
    tracker = _tracker("can I talk to someone about my bin", "missed_bin", None)
    record, text = await _handoff(queue, glanfor, tracker, WEDNESDAY_NOON)
    assert (record.language, record.team) == ("en", "waste")
    assert text.startswith("Thanks, I've passed this to a person in our team")


async def test_welsh_safeguarding_out_of_hours(
    glanfor: CouncilProfile, queue: HandoffQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COUNCIL_SAFEGUARDING_WEBHOOK", raising=False)
    tracker = _tracker("Mae fy mhartner yn fy nharo i", "safeguarding", "cy")
    record, text = await _handoff(queue, glanfor, tracker, WEDNESDAY_NIGHT)
    assert (record.language, record.team, record.priority) == ("cy", "safeguarding", "P1")
    assert text.startswith("Diolch am ddweud wrthym. Os oes unrhyw un mewn perygl")
    assert "0808 157 0555" in text
    # no alert hook: the reply must not say anyone was alerted
    assert "rydym wedi rhoi gwybod" not in text
    assert text.endswith("ar ôl i ni agor am 8.30am yfory.")


async def test_no_welsh_speaking_team_no_promise_of_one(
    tmp_path: Path, queue: HandoffQueue
) -> None:
    teams = {name: "A team" for name in ("contact_centre", "safeguarding", "council_tax")}
    profile = CouncilProfile.load(_profile_with(tmp_path, {**teams, "waste": "W", "housing": "H"}))
    previous = bot.profile.use(profile)
    try:
        tracker = _tracker("Ga i siarad â pherson?", "human_agent", "cy")
        record, text = await _handoff(queue, profile, tracker, WEDNESDAY_NOON)
    finally:
        bot.profile.use(previous)
    assert record.language == "cy"  # agents still see it
    assert text.startswith("Thanks, I've passed this to a person in our team")
