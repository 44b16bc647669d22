"""A report form abandoned half-way expires with nothing half-submitted (issue 15, bad input).

Rasa's own session handling is exercised on the trained domain (``responses/``): after
``session_expiration_time`` (60 minutes) without a message the processor finds the session
expired, ``action_session_start`` starts a new one, and the form's slots and the active form
are gone (``carry_over_slots_to_new_session: false``). The form's submit action run on the new
session (say a stray rule ran it) sends nothing to the outbox.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import redis.asyncio
from rasa.core.actions.action import ActionSessionStart
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.reports import REPORT_SLOTS, ActionSubmitReport, ReportWorld
from bot.profile import current as council_profile
from bot.reports.store import ReportStore

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = Domain.load(str(ROOT / "responses"))
SENDER = "telegram:councilbot:424242"


def half_filled(at: float) -> DialogueStateTracker:
    """A pothole report placed and described, waiting for the photo, its last message at ``at``."""
    pothole = {"name": "report_pothole", "confidence": 1.0}
    events = [
        ActionExecuted("action_listen", timestamp=at - 30),
        UserUttered("pothole on Mill Lane", pothole, timestamp=at - 20),
        ActiveLoop("report_form", timestamp=at - 19),
        SlotSet("report_service", "001", timestamp=at - 19),
        SlotSet("report_location", "Mill Lane, AV1 2BX", timestamp=at - 10),
        SlotSet("report_description", "deep and wide", timestamp=at),
        SlotSet("report_confirm", "yes", timestamp=at),  # even a slot the form fills last
        SlotSet("requested_slot", "report_photo", timestamp=at),
        ActionExecuted("action_listen", timestamp=at),
        UserUttered("deep and wide", {"name": "inform", "confidence": 1.0}, timestamp=at),
    ]
    return DialogueStateTracker.from_events(SENDER, events, slots=DOMAIN.slots)


def expired(tracker: DialogueStateTracker) -> bool:
    """Rasa's processor's own check (it reads only the domain's session settings)."""
    return MessageProcessor._has_session_expired(  # type: ignore[arg-type]
        SimpleNamespace(domain=DOMAIN), tracker
    )


async def test_an_abandoned_form_is_dropped_when_the_session_expires_and_nothing_is_sent(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    assert DOMAIN.session_config.session_expiration_time == 60
    assert DOMAIN.session_config.carry_over_slots is False
    assert not expired(half_filled(time.time() - 59 * 60))  # still the same conversation
    tracker = half_filled(time.time() - 61 * 60)
    before = tracker.current_state(EventVerbosity.AFTER_RESTART)
    assert tracker.active_loop_name == "report_form" and tracker.get_slot("report_service")
    assert expired(tracker)

    # what the processor does then: action_session_start, applied to the tracker
    for event in await ActionSessionStart().run(None, None, tracker, DOMAIN):  # type: ignore[arg-type]
        tracker.update(event)
    assert tracker.active_loop_name is None
    assert {s: tracker.get_slot(s) for s in REPORT_SLOTS if tracker.get_slot(s) is not None} == {}

    world = ReportWorld(council_profile().reports, client=async_redis, key_namespace=namespace)
    state = tracker.current_state(EventVerbosity.AFTER_RESTART)
    dispatcher = CollectingDispatcher()
    await ActionSubmitReport(world).run(dispatcher, Tracker.from_dict(state), {})
    assert await ReportStore(async_redis, namespace).conversation_reports(SENDER) == []
    assert await async_redis.xlen(ReportStore(async_redis, namespace).key("outbox")) == 0

    # the test can fail: the same action on the slots before the restart would have sent it
    await ActionSubmitReport(world).run(dispatcher, Tracker.from_dict(before), {})
    assert len(await ReportStore(async_redis, namespace).conversation_reports(SENDER)) == 1
