"""Out-of-hours safeguarding handoffs alert the hook at once, once, and failures are retried.

The hook is a real aiohttp server on 127.0.0.1 standing in for the council's webhook: one
route records what it is sent, one answers 500, one answers too late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from rasa_sdk import Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher

import actions.handoff
from actions.handoff import ActionHandoff
from bot.handoff.alerts import SafeguardingAlert, SafeguardingAlerts
from bot.handoff.hours import OpeningHours
from bot.handoff.notify import Breach, WebhookNotifier
from bot.handoff.queue import HandoffQueue
from bot.handoff.sla import SlaMonitor, SlaPolicy
from bot.profile import current
from bot.testing.responses import rendered

from .conftest import Clock, make_record

NIGHT = datetime(2027, 3, 3, 23, 0, tzinfo=UTC)  # a Wednesday, contact centre closed
DAY = datetime(2027, 3, 3, 11, 0, tzinfo=UTC)
CONVERSATION = "whatsapp:441632960000:447700900123"
WORRY = "my neighbour's child has bruises and I'm scared for her"
EMERGENCY_NUMBERS = current().safeguarding.contacts_text()
ALERTED = "we have alerted our out-of-hours safeguarding contact"


@dataclass
class Hook:
    """The stand-in webhook and what it was sent."""

    server: TestServer
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    found: Hook

    async def accept(request: web.Request) -> web.Response:
        found.received.append(await request.json())
        return web.Response(status=204)

    async def refuse(request: web.Request) -> web.Response:
        found.refused.append(await request.json())
        return web.Response(status=500, text="on-call system down")

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", accept)
    app.router.add_post("/broken", refuse)
    app.router.add_post("/slow", hang)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    found = Hook(server)
    yield found
    await server.close()


def tracker(intent: str = "safeguarding", text: str = WORRY) -> Tracker:
    message: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.97},
        "intent_ranking": [{"name": intent, "confidence": 0.97}],
        "entities": [],
    }
    events = [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": text,
            "parse_data": message,
            "input_channel": "whatsapp",
            "timestamp": NIGHT.timestamp(),
        },
    ]
    return Tracker(CONVERSATION, {}, message, events, False, None, {}, "action_listen")


async def hand_off(
    queue: HandoffQueue, now: datetime, intent: str = "safeguarding"
) -> tuple[list[str], list[Any]]:
    dispatcher = CollectingDispatcher()
    action = ActionHandoff(queue, clock=lambda: now)
    events = await action.run(dispatcher, tracker(intent), {})
    return rendered(dispatcher.messages), events


def monitor(queue: HandoffQueue, clock: Clock, url: str) -> SlaMonitor:
    async def ignore(breach: Breach) -> None:
        return None

    return SlaMonitor(
        queue,
        SlaPolicy(),
        notify=ignore,
        alert=WebhookNotifier(url, timeout_seconds=2),
        clock=clock,
    )


async def test_out_of_hours_safeguarding_handoff_alerts_at_once(
    queue: HandoffQueue, handoff_clock: Clock, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_SAFEGUARDING_WEBHOOK", hook.url("/hook"))
    handoff_clock.now = NIGHT
    texts, events = await hand_off(queue, NIGHT)
    assert events == [ConversationPaused()]
    assert texts[0].startswith(f"Thank you for telling us. {EMERGENCY_NUMBERS} ")
    assert ALERTED in texts[0] and texts[0].endswith("after we open at 9am tomorrow.")
    case_id = await queue.case_for(CONVERSATION)
    assert case_id is not None
    assert hook.received == [
        {
            "case_id": case_id,
            "team": "safeguarding",
            "priority": "P1",
            "kind": "safeguarding_out_of_hours",
            "channel": "whatsapp",
            "created_at": NIGHT.isoformat(),
            "due": NIGHT.isoformat(),
        }
    ]
    body = json.dumps(hook.received)
    assert "bruises" not in body and "447700900123" not in body  # no personal data

    # The console's monitor sees the alert was sent and does not send it again.
    handoff_clock.advance(minutes=1)
    sla = monitor(queue, handoff_clock, hook.url("/hook"))
    assert await sla.check() == []
    assert await sla.check() == []
    assert len(hook.received) == 1
    assert sla.alerts is not None and "sent_at" in await sla.alerts.state(case_id)


async def test_no_alert_in_hours_or_for_other_handoffs(
    queue: HandoffQueue, handoff_clock: Clock, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_SAFEGUARDING_WEBHOOK", hook.url("/hook"))
    handoff_clock.now = DAY
    texts, _ = await hand_off(queue, DAY)
    assert EMERGENCY_NUMBERS in texts[0] and "alerted" not in texts[0]
    assert "at the top of our safeguarding team's queue" in texts[0]
    case_id = await queue.case_for(CONVERSATION)
    assert case_id is not None
    await queue.resolve(case_id)
    handoff_clock.now = NIGHT
    await hand_off(queue, NIGHT, intent="complaint")
    assert hook.received == []


async def test_a_failed_alert_is_recorded_and_retried_by_the_monitor(
    queue: HandoffQueue,
    handoff_clock: Clock,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("COUNCIL_SAFEGUARDING_WEBHOOK", hook.url("/broken"))
    handoff_clock.now = NIGHT
    with caplog.at_level(logging.WARNING, logger="bot.handoff.alerts"):
        texts, events = await hand_off(queue, NIGHT)
    assert events == [ConversationPaused()] and EMERGENCY_NUMBERS in texts[0]  # reply unharmed
    assert "alerted" not in texts[0]  # the hook refused it: nobody was alerted yet
    case_id = await queue.case_for(CONVERSATION)
    assert case_id is not None
    assert len(hook.refused) == 1
    assert f"safeguarding alert for case {case_id} failed" in caplog.text
    alerts = SafeguardingAlerts(queue.redis, queue.namespace, hook=WebhookNotifier("unused"))
    state = await alerts.state(case_id)
    assert state["failures"] == "1" and "500" in state["last_error"]
    assert await alerts.pending() == [case_id]

    # The console's monitor (its hook answering again) waits for the retry time, then sends it
    # once. The alert it sends is the one the handoff recorded.
    sla = monitor(queue, handoff_clock, hook.url("/hook"))
    handoff_clock.advance(seconds=30)
    assert await sla.check() == []
    handoff_clock.advance(seconds=31)
    assert [(b.case_id, b.kind) for b in await sla.check()] == [
        (case_id, "safeguarding_out_of_hours")
    ]
    assert await sla.check() == []
    assert hook.received == hook.refused
    assert await alerts.pending() == []
    assert "sent_at" in await alerts.state(case_id)


async def test_failures_back_off_and_are_never_dropped(
    queue: HandoffQueue, handoff_clock: Clock, hook: Hook
) -> None:
    handoff_clock.now = NIGHT
    record = make_record("9", reason="safeguarding", created_at=NIGHT.isoformat())
    await queue.open(record)
    sla = monitor(queue, handoff_clock, hook.url("/broken"))
    attempts = []
    for _ in range(8):  # an hour of minute checks with the hook down
        await sla.check()
        attempts.append(len(hook.refused))
        handoff_clock.advance(minutes=1)
    assert attempts == [1, 2, 2, 3, 3, 3, 3, 4]  # after 1, 2, 4 minutes...
    assert sla.alerts is not None
    assert await sla.alerts.pending() == [record.case_id]
    assert (await sla.alerts.state(record.case_id))["failures"] == "4"


async def test_a_slow_hook_does_not_hold_up_the_reply(
    queue: HandoffQueue, handoff_clock: Clock, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_SAFEGUARDING_WEBHOOK", hook.url("/slow"))
    monkeypatch.setattr(actions.handoff, "ALERT_TIMEOUT_SECONDS", 0.3)
    handoff_clock.now = NIGHT
    started = time.monotonic()
    texts, _ = await hand_off(queue, NIGHT)
    assert time.monotonic() - started < 2
    assert EMERGENCY_NUMBERS in texts[0] and "alerted" not in texts[0]
    case_id = await queue.case_for(CONVERSATION)
    assert case_id is not None
    alerts = SafeguardingAlerts(queue.redis, queue.namespace, hook=WebhookNotifier("unused"))
    assert "TimeoutError" in (await alerts.state(case_id))["last_error"]


async def test_without_a_webhook_the_handoff_says_so(
    queue: HandoffQueue,
    handoff_clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("COUNCIL_SAFEGUARDING_WEBHOOK", raising=False)
    handoff_clock.now = NIGHT
    with caplog.at_level(logging.WARNING, logger="actions.handoff"):
        texts, events = await hand_off(queue, NIGHT)
    assert events == [ConversationPaused()]
    assert "COUNCIL_SAFEGUARDING_WEBHOOK is not set" in caplog.text
    assert EMERGENCY_NUMBERS in texts[0] and "alerted" not in texts[0]
    assert "if you need help before we open, please use the numbers above" in texts[0]


async def test_two_processes_alerting_at_once_post_once(queue: HandoffQueue, hook: Hook) -> None:
    record = make_record("8", reason="safeguarding", created_at=NIGHT.isoformat())
    await queue.open(record)
    posted: list[Breach] = []

    async def slow_hook(alert: Breach) -> None:
        await asyncio.sleep(0.2)
        posted.append(alert)

    senders = [
        SafeguardingAlerts(queue.redis, queue.namespace, hook=slow_hook, clock=lambda: NIGHT)
        for _ in range(2)
    ]
    alert = SafeguardingAlert.for_record(record)
    outcomes = await asyncio.gather(*(s.send(alert) for s in senders))
    assert sorted(outcomes) == ["in_progress", "sent"]
    assert await senders[0].send(alert) == "already_sent"
    assert len(posted) == 1


def test_the_alert_round_trips_as_json() -> None:
    alert = SafeguardingAlert.for_record(
        make_record("7", reason="safeguarding", created_at=NIGHT.isoformat())
    )
    assert SafeguardingAlert.from_json(json.loads(json.dumps(alert.to_json()))) == alert
    assert OpeningHours().is_open(NIGHT) is False
