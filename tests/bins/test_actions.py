"""The form validation and submit actions of actions/bins.py, called as the action server would."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

import bot.profile
from actions.bins import (
    ActionAskBinAddressChoice,
    ActionBinCollectionDay,
    ActionMissedBinReport,
    ValidateBinDayForm,
    ValidateMissedBinForm,
    choose_address,
    spoken_date,
)
from bot.bins.ics import calendar_url
from bot.bins.missed import MissedReports
from bot.bins.model import Address
from bot.bins.schedule import RoundScheduleSource
from bot.bins.store import BinStore
from bot.channels.base import Button, OutboundMessage, numbered_text
from bot.profile import CouncilProfile
from bot.testing.responses import rendered, rendered_messages

DOMAIN = yaml.safe_load((Path(__file__).parents[2] / "responses" / "bins.yml").read_text())
MILL_LANE = [Address(str(n), f"{2 * n} Mill Lane", "AV1 2BX", ("R",)) for n in range(1, 5)]


def tracker(
    slots: dict[str, Any],
    text: str = "",
    form: str = "bin_day_form",
    entities: list[dict[str, Any]] | None = None,
    new_slots: dict[str, Any] | None = None,
) -> Tracker:
    """A tracker as the form sends it: the user's message, then the extracted slot candidates."""
    new_slots = new_slots or {}
    events: list[dict[str, Any]] = [
        {"event": "user", "text": text, "input_channel": "whatsapp", "parse_data": {}},
        *({"event": "slot", "name": k, "value": v} for k, v in new_slots.items()),
    ]
    return Tracker(
        sender_id="whatsapp:+441632960000:+447700900123",
        slots={**slots, **new_slots},
        latest_message={"text": text, "intent": {"name": "inform"}, "entities": entities or []},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": form},
        latest_action_name="action_listen",
    )


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    """What the resident reads (the named responses filled in as the Rasa server would)."""
    return rendered(dispatcher.messages)


async def _validate(
    action: ValidateBinDayForm, slots: dict[str, Any], **kwargs: Any
) -> tuple[dict[str, Any], list[str]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker(slots, **kwargs), DOMAIN)
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}, texts(dispatcher)


async def test_postcode_with_several_addresses_asks_which(store: BinStore) -> None:
    action = ValidateBinDayForm(store=store, today=lambda: date(2026, 11, 23))
    slots, said = await _validate(
        action, {}, text="it's av1 2bx", new_slots={"bin_postcode": "it's av1 2bx"}
    )
    assert slots["bin_postcode"] == "AV1 2BX"
    assert slots["bin_address_choice"] is None and slots["bin_uprn"] is None
    assert said == []


async def test_single_address_postcode_needs_no_choice(store: BinStore) -> None:
    action = ValidateBinDayForm(store=store)
    slots, said = await _validate(action, {}, new_slots={"bin_postcode": "AV5 1QA"})
    assert slots["bin_address_choice"] == "The Old Rectory, Church Lane"
    assert slots["bin_uprn"] and said == []


async def test_address_given_with_the_postcode_is_used(store: BinStore) -> None:
    action = ValidateBinDayForm(store=store)
    address = {"entity": "address", "value": "6 Mill Lane"}
    slots, _ = await _validate(
        action,
        {},
        text="6 Mill Lane AV1 2BX",
        entities=[address],
        new_slots={"bin_postcode": "AV1 2BX"},
    )
    assert slots["bin_address_choice"] == "6 Mill Lane"


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("SW1A 1AA", "isn't in Ashvale"),
        ("AV3 9ZZ", "can't find AV3 9ZZ"),
        ("AV6 9ZZ", "doesn't collect household bins at AV6 9ZZ"),
        ("ZZ99 9ZZZ", "isn't a valid UK postcode"),
        ("no idea", "I need your postcode"),
    ],
)
async def test_bad_postcodes_are_explained_and_asked_again(
    store: BinStore, value: str, phrase: str
) -> None:
    action = ValidateBinDayForm(store=store)
    slots, said = await _validate(action, {}, text=value, new_slots={"bin_postcode": value})
    assert slots["bin_postcode"] is None
    assert len(said) == 1 and phrase in said[0]


async def test_address_choices_are_numbered_with_buttons(store: BinStore) -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskBinAddressChoice(store=store).run(
        dispatcher, tracker({"bin_postcode": "AV1 2BX"}), DOMAIN
    )
    [message] = rendered_messages(dispatcher.messages, "whatsapp")
    assert message["text"].startswith("There are 4 addresses at AV1 2BX. Which is yours?")
    assert [(b["title"], b["payload"]) for b in message["buttons"]] == [
        ("2 Mill Lane", "1"),
        ("4 Mill Lane", "2"),
        ("6 Mill Lane", "3"),
        ("8 Mill Lane", "4"),
    ]
    # Each address once: as buttons, or as the numbered list a channel without buttons adds.
    assert "Mill Lane" not in message["text"]
    buttons = tuple(Button(b["title"], b["payload"]) for b in message["buttons"])
    sms = numbered_text(OutboundMessage(message["text"], buttons))
    assert all(sms.count(f"{2 * n} Mill Lane") == 1 for n in range(1, 5))


async def test_long_address_lists_are_text_only(store: BinStore) -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskBinAddressChoice(store=store).run(
        dispatcher, tracker({"bin_postcode": "AV3 4DT"}), DOMAIN
    )
    [message] = rendered_messages(dispatcher.messages, "whatsapp")
    assert message["buttons"] == [] and "\n12. " in message["text"]


@pytest.mark.parametrize(
    ("reply", "line"),
    [
        ("2", "4 Mill Lane"),
        ("number 3 please", "6 Mill Lane"),
        ("the first one", "2 Mill Lane"),
        ("the last one", "8 Mill Lane"),
        ("8 Mill Lane", "8 Mill Lane"),
        ("it's 2, Mill Lane", "2 Mill Lane"),
        ("Mill Lane", None),
        ("9", None),
        ("banana", None),
    ],
)
def test_choose_address(reply: str, line: str | None) -> None:
    chosen = choose_address(reply, MILL_LANE)
    assert (chosen.line if chosen else None) == line


async def test_address_choice_validation(store: BinStore) -> None:
    action = ValidateBinDayForm(store=store)
    base = {"bin_postcode": "AV1 2BX"}
    slots, said = await _validate(action, base, new_slots={"bin_address_choice": "2"})
    assert slots["bin_address_choice"] == "4 Mill Lane" and slots["bin_uprn"] and said == []
    slots, said = await _validate(action, base, new_slots={"bin_address_choice": "Mill Lane"})
    assert slots["bin_address_choice"] is None and "number from the list" in said[0]


async def test_a_new_postcode_while_choosing_an_address_starts_over(store: BinStore) -> None:
    action = ValidateBinDayForm(store=store)
    reply = "sorry, it's AV3 4DT"
    slots, said = await _validate(
        action,
        {"bin_postcode": "AV1 2BX"},
        text=reply,
        new_slots={"bin_postcode": "AV3 4DT", "bin_address_choice": reply},
    )
    assert slots == {"bin_postcode": "AV3 4DT", "bin_address_choice": None, "bin_uprn": None}
    assert said == []


async def test_bin_day_answer_in_words_with_calendar_link(
    store: BinStore, demo_source: RoundScheduleSource
) -> None:
    address = demo_source.addresses_at("AV1 2BX")[0]
    today = date(2026, 11, 23)
    dispatcher = CollectingDispatcher()
    action = ActionBinCollectionDay(store=store, today=lambda: today)
    await action.run(dispatcher, tracker({"bin_uprn": address.uprn}), DOMAIN)
    answer, link = texts(dispatcher)
    assert answer.splitlines() == [
        "Next collections at 2 Mill Lane, AV1 2BX:",
        "Monday 23 November: recycling (blue bin)",
        "Monday 23 November: food waste (caddy)",
        "Monday 30 November: general waste (grey bin)",
    ]
    assert link.endswith(calendar_url(address.uprn))


async def test_bin_day_answer_across_the_year_end(
    store: BinStore, demo_source: RoundScheduleSource
) -> None:
    thursday = next(
        a for a in demo_source.all_addresses() if a.rounds and a.rounds[0] == "THU-FOOD"
    )
    dispatcher = CollectingDispatcher()
    action = ActionBinCollectionDay(store=store, today=lambda: date(2026, 12, 28))
    await action.run(dispatcher, tracker({"bin_uprn": thursday.uprn}), DOMAIN)
    assert "Saturday 2 January 2027: food waste (caddy)" in texts(dispatcher)[0]


def test_spoken_date() -> None:
    assert spoken_date(date(2026, 12, 2), date(2026, 11, 23)) == "Wednesday 2 December"
    assert spoken_date(date(2027, 1, 2), date(2026, 12, 28)) == "Saturday 2 January 2027"


async def test_bin_type_validation(store: BinStore, demo_source: RoundScheduleSource) -> None:
    no_garden, with_garden = demo_source.addresses_at("AV1 2BX")[:2]
    assert "MON-GDN-A" in with_garden.rounds and not any("GDN" in r for r in no_garden.rounds)
    action = ValidateMissedBinForm(store=store, today=lambda: date(2026, 11, 23))
    base = {"bin_postcode": "AV1 2BX", "bin_address_choice": "x", "bin_uprn": no_garden.uprn}
    slots, said = await _validate(
        action, base, form="missed_bin_form", new_slots={"bin_type": "the blue one"}
    )
    assert slots["bin_type"] == "recycling" and said == []
    slots, said = await _validate(
        action, base, form="missed_bin_form", new_slots={"bin_type": "garden waste"}
    )
    assert slots["bin_type"] is None and "doesn't collect garden waste" in said[0]
    slots, said = await _validate(
        action, base, form="missed_bin_form", new_slots={"bin_type": "banana"}
    )
    assert slots["bin_type"] is None and said
    base["bin_uprn"] = with_garden.uprn
    slots, _ = await _validate(
        action, base, form="missed_bin_form", new_slots={"bin_type": "garden waste"}
    )
    assert slots["bin_type"] == "garden"


async def missed_report(
    store: BinStore,
    reports: MissedReports,
    uprn: str,
    bin_type: str,
    today: date,
    *,
    extra: dict[str, Any] | None = None,
) -> tuple[CollectingDispatcher, list[dict[str, Any]]]:
    """Run the missed-bin report on ``today`` (``extra`` slots too, e.g. the language)."""
    dispatcher = CollectingDispatcher()
    action = ActionMissedBinReport(store=store, reports=reports, today=lambda: today)
    slots = {"bin_uprn": uprn, "bin_type": bin_type, **(extra or {})}
    events = await action.run(dispatcher, tracker(slots, form="missed_bin_form"), DOMAIN)
    return dispatcher, events


async def _report(
    store: BinStore, reports: MissedReports, uprn: str, bin_type: str, today: date
) -> tuple[list[str], list[dict[str, Any]]]:
    dispatcher, events = await missed_report(store, reports, uprn, bin_type, today)
    return texts(dispatcher), events


async def test_missed_bin_is_recorded_with_a_reference(
    store: BinStore, missed_reports: MissedReports, uprn: str
) -> None:
    said, events = await _report(store, missed_reports, uprn, "general", date(2026, 11, 17))
    assert "wasn't emptied on Monday 16 November" in said[0]
    assert "reference is MB-2026-000001" in said[0]
    assert events == [SlotSet("bin_type", None)]
    stored = await missed_reports.get("MB-2026-000001")
    assert stored is not None
    assert (stored["uprn"], stored["bin_type"], stored["due"], stored["channel"]) == (
        uprn,
        "general",
        "2026-11-16",
        "whatsapp",
    )


async def test_missed_bin_not_due_says_when_it_is(
    store: BinStore,
    missed_reports: MissedReports,
    uprn: str,
    async_redis: redis.asyncio.Redis,
    demo_loaded: str,
) -> None:
    said, _ = await _report(store, missed_reports, uprn, "general", date(2026, 11, 24))
    assert "wasn't due in the last 2 working days" in said[0]
    assert "The next collection is Monday 30 November" in said[0]
    said, _ = await _report(store, missed_reports, uprn, "recycling", date(2026, 11, 23))
    assert "is due today" in said[0]
    assert await async_redis.exists(f"{demo_loaded}:bins:missed:seq:2026") == 0


async def test_the_action_server_registers_and_runs_the_bin_actions(
    demo_loaded: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa_sdk.executor import ActionExecutor

    import actions.resources

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("COUNCIL_NAMESPACE", demo_loaded)
    monkeypatch.setenv("COUNCIL_TODAY", "2026-11-23")
    monkeypatch.setattr(actions.resources, "_client", None)
    executor = ActionExecutor()
    executor.register_package("actions.bins")
    names = {
        "validate_bin_day_form",
        "validate_missed_bin_form",
        "action_ask_bin_address_choice",
        "action_bin_collection_day",
        "action_missed_bin_report",
    }
    assert names <= set(executor.actions)
    state = tracker({}, text="AV5 1QA", new_slots={"bin_postcode": "AV5 1QA"})
    response = await executor.run(
        {
            "next_action": "validate_bin_day_form",
            "sender_id": state.sender_id,
            "tracker": {
                "sender_id": state.sender_id,
                "slots": state.slots,
                "latest_message": state.latest_message,
                "events": state.events,
                "paused": False,
                "followup_action": None,
                "active_loop": state.active_loop,
                "latest_action_name": "action_listen",
            },
            "domain": DOMAIN,
            "version": "3.6.2",
        }
    )
    assert response is not None
    slots = {e["name"]: e["value"] for e in response["events"] if e["event"] == "slot"}
    assert slots["bin_address_choice"] == "The Old Rectory, Church Lane"
    client = actions.resources._client
    assert client is not None
    await client.close()
    await client.connection_pool.disconnect()


async def test_the_replies_are_the_loaded_councils(store: BinStore) -> None:
    glanfor = CouncilProfile.load(Path(__file__).parents[1] / "data" / "profiles" / "glanfor.yml")
    previous = bot.profile.use(glanfor)
    try:
        action = ValidateBinDayForm(store=store)
        new = {"bin_postcode": "SW1A 1AA"}
        _, said = await _validate(action, {}, text="SW1A 1AA", new_slots=new)
        assert said == [
            "SW1A 1AA isn't in Glanfor County Borough, so another council collects bins there. "
            "You can find your council at https://www.gov.uk/find-local-council"
        ]
        missed = ValidateMissedBinForm(store=store, today=lambda: date(2026, 11, 23))
        slots, _ = await _validate(
            missed, {}, form="missed_bin_form", new_slots={"bin_type": "the green one"}
        )
        assert slots["bin_type"] == "recycling"  # Glanfor's green box
    finally:
        bot.profile.use(previous)
