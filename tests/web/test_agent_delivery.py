"""An agent sees whether each reply reached the resident, and whether replies flow at all.

The replies are sent through the console (the real ``OutboxSender``); their states are written
as the outbox worker writes them (``delivery.sent_call`` / ``delivery.failed_call``) and as the
webhook applies a provider's receipts (``delivery.apply`` of a Twilio status callback's ``Receipt``,
the statuses of Twilio's docs: delivered, read, undelivered with ErrorCode 30003).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Page, expect

from bot.channels import delivery
from bot.channels.base import InboundMessage, OutboundMessage, Receipt
from bot.channels.delivery import DeliveryState
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.outbox import OutboxWorker
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord, priority_for, team_for
from bot.handoff.replies import OutboxSender
from bot.testing.accessibility import axe_violations, describe, horizontal_overflow
from bot.testing.browser import LocalServer
from bot.testing.console import Csrf, Login, MakeUser, sign_in_as
from bot.web.agent import QUEUE, SENDER, match_deliveries
from bot.web.app import NAMESPACE, REDIS, ConsoleApp

ACCOUNT = "+441234567890"


def record(**fields: Any) -> HandoffRecord:
    sender = f"+447{uuid.uuid4().int % 10**9:09d}"
    created = datetime.now(UTC) - timedelta(minutes=5)
    values: dict[str, Any] = {
        "conversation_id": f"whatsapp:{ACCOUNT}:{sender}",
        "channel": "whatsapp",
        "account": ACCOUNT,
        "sender": sender,
        "display_name": "Sam Resident",
        "reason": "asked_for_person",
        "topic": "bin_day",
        "priority": priority_for("asked_for_person"),
        "team": team_for("bin_day", "asked_for_person"),
        "created_at": created.isoformat(),
        "transcript": [
            {"role": "resident", "text": "my bin was missed", "at": created.isoformat()}
        ],
        "intents": [],
        "entities": {},
        "window": None,
    }
    values.update(fields)
    return HandoffRecord(**values)


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


@pytest.fixture
def queue(console_app: ConsoleApp) -> HandoffQueue:
    return console_app[QUEUE]


def receipt(case: HandoffRecord, status: Any, provider_id: str, **fields: Any) -> Receipt:
    """A Twilio status callback for one of our messages, as the adapter reads it."""
    return Receipt("whatsapp", ACCOUNT, case.sender, status, time.time(), (provider_id,), **fields)


class Agent:
    """A signed-in agent's client, replying from the case page."""

    def __init__(self, client: AsyncClient, csrf: Csrf, console_app: ConsoleApp) -> None:
        self.client, self.csrf, self.app = client, csrf, console_app

    async def get(self, path: str) -> Any:
        return await self.client.get(path)

    async def reply(self, case: HandoffRecord, text: str) -> str:
        """Send ``text`` on the case; the outbox entry id it was queued as."""
        answer = await self.client.post(
            f"/agent/cases/{case.case_id}/reply",
            data={"text": text, "csrf_token": await self.csrf(self.client)},
            follow_redirects=False,
        )
        assert answer.status_code == 302, answer.text
        sender = self.app[SENDER]
        assert isinstance(sender, OutboxSender)
        [(entry_id, fields)] = await self.app[REDIS].xrevrange(sender.key, count=1)
        assert fields["text"] == text
        return str(entry_id)


async def agent_for(login: Login, csrf: Csrf, console_app: ConsoleApp) -> Agent:
    return Agent(await login("agent", teams=("customer_services",)), csrf, console_app)


async def three_replies(agent: Agent, console_app: ConsoleApp, case: HandoffRecord) -> None:
    """Delivered and read; failed by the provider's receipt; failed before the provider took it."""
    client, ns = console_app[REDIS], console_app[NAMESPACE]
    cid = case.conversation_id
    first = await agent.reply(case, "A crew will come back today.")
    await delivery.record(
        client,
        delivery.sent_call(
            cid, "SM1", entry=first, text="A crew will come back today.", namespace=ns
        ),
    )
    await delivery.apply(client, receipt(case, "read", "SM1"), namespace=ns)
    second = await agent.reply(case, "Is the bin at the front?")
    await delivery.record(
        client,
        delivery.sent_call(cid, "SM2", entry=second, text="Is the bin at the front?", namespace=ns),
    )
    failed = receipt(case, "failed", "SM2", error="unreachable destination handset", code="30003")
    await delivery.apply(client, failed, namespace=ns)
    third = await agent.reply(case, "Please call us on 0300 123 4567.")
    await delivery.record(
        client, delivery.failed_call(cid, entry=third, error="window closed", namespace=ns)
    )


async def test_each_reply_shows_its_state_and_a_failure_is_surfaced(
    login: Login, csrf: Csrf, console_app: ConsoleApp, queue: HandoffQueue
) -> None:
    case = record()
    await queue.open(case)
    agent = await agent_for(login, csrf, console_app)
    await three_replies(agent, console_app, case)
    waiting = await agent.reply(case, "Thanks, we are on it.")  # not sent yet
    assert waiting

    api = (await agent.get(f"/api/agent/cases/{case.case_id}/deliveries")).json()
    shown = [(d or {}).get("status") for d in api["deliveries"]]
    assert shown == [None, "read", "failed", "failed", "queued"]
    assert api["deliveries"][2]["label"] == "not delivered"
    assert api["deliveries"][2]["error"] == "unreachable destination handset"
    assert [(f["text"], f["code"]) for f in api["failures"]] == [
        ("Is the bin at the front?", "30003"),
        ("Please call us on 0300 123 4567.", ""),  # its text found through the transcript
    ]

    html = (await agent.get(f"/agent/cases/{case.case_id}")).text
    assert 'data-status="read"><span aria-hidden="true">✓✓</span> Delivery: read</p>' in html
    assert "Delivery: not delivered (unreachable destination handset)" in html
    assert "Delivery: queued" in html
    assert "Replies were not delivered to the resident." in html
    assert "“Is the bin at the front?”: unreachable destination handset (code 30003)" in html

    [row] = (await agent.get("/api/agent/queue")).json()["cases"]
    assert row["delivery_failed"] is True
    assert "Reply not delivered" in (await agent.get("/agent/")).text
    other_team = await login("agent", teams=("revenues",))
    assert (await other_team.get(f"/api/agent/cases/{case.case_id}/deliveries")).status_code == 403


async def test_a_failure_from_before_the_case_is_not_this_cases(
    login: Login, csrf: Csrf, console_app: ConsoleApp, queue: HandoffQueue
) -> None:
    case = record()
    client, ns = console_app[REDIS], console_app[NAMESPACE]
    long_ago = time.time() - 3600
    await delivery.record(
        client,
        delivery.sent_call(case.conversation_id, "SM9", text="Old", at=long_ago, namespace=ns),
    )
    old = receipt(case, "failed", "SM9", error="blocked")
    await delivery.apply(client, Receipt(**{**old.__dict__, "at": long_ago + 1}), namespace=ns)
    await queue.open(case)
    agent = await agent_for(login, csrf, console_app)
    assert (await agent.get(f"/api/agent/cases/{case.case_id}/deliveries")).json()["failures"] == []
    [row] = (await agent.get("/api/agent/queue")).json()["cases"]
    assert row["delivery_failed"] is False
    assert "Reply not delivered" not in (await agent.get("/agent/")).text


def test_replies_are_matched_by_text_then_by_the_time_they_were_queued() -> None:
    at = datetime(2027, 3, 3, 10, tzinfo=UTC)
    ms = int(at.timestamp() * 1000)

    def said(role: str, text: str, seconds: int) -> dict[str, Any]:
        return {"role": role, "text": text, "at": (at + timedelta(seconds=seconds)).isoformat()}

    transcript = [
        said("resident", "hello", 0),
        said("bot", "OK", 1),
        said("agent", "OK", 60),  # the same words twice: matched in order
        said("agent", "Sorry", 120),
        said("agent", "Still there?", 600),
    ]
    states = [
        DeliveryState("SM1", "delivered", 0, 1.0, f"{ms + 1500}-0", text="OK"),
        DeliveryState("SM2", "read", 0, 2.0, f"{ms + 60_100}-0", text="OK"),
        # failed before the provider took it: no text, queued 0.2 s after the agent's reply
        DeliveryState("entry:3", "failed", 0, None, f"{ms + 120_200}-0", "window closed"),
        # a text-less failure queued far from any reply matches nothing
        DeliveryState("entry:4", "failed", 0, None, f"{ms + 3_600_000}-0", "blocked"),
    ]
    shown = [(d or {}).get("status") for d in match_deliveries(transcript, states)]
    assert shown == [None, "delivered", "read", "failed", "queued"]


async def echo(incoming: InboundMessage) -> Sequence[OutboundMessage]:
    return [OutboundMessage("ok")]


async def test_the_banner_says_when_replies_are_not_flowing(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    client, ns = console_app[REDIS], console_app[NAMESPACE]
    agent = await agent_for(login, csrf, console_app)
    # a console whose channels never ran in this namespace: nothing to warn about
    assert (await agent.get("/api/agent/channels")).json() == {"problems": []}
    assert "Replies to residents are not flowing" not in (await agent.get("/agent/")).text

    await Inbox(client, ns).ensure_group()  # the edge has started; no worker reads
    problems = (await agent.get("/api/agent/channels")).json()["problems"]
    assert "no inbox worker is running: residents' messages are not answered" in problems
    html = (await agent.get("/agent/")).text
    assert 'id="channel-banner" class="channel-banner" role="status" aria-live="polite"' in html
    assert "Replies to residents are not flowing." in html
    assert "<li>No inbox worker is running: residents&#39; messages are not answered.</li>" in html

    reader = InboxWorker(client, echo, ns, consumer="console-test-1-abcdef", block_ms=10)
    sender = OutboxWorker(client, {}, ns, consumer="console-test-1-abcdef", block_ms=10)
    await sender.ensure_group()
    await reader.step(block=False)
    await sender.step(block=False)
    assert (await agent.get("/api/agent/channels")).json() == {"problems": []}
    assert "Replies to residents are not flowing" not in (await agent.get("/agent/")).text


@pytest.mark.browser
async def test_in_chromium_states_notice_marker_and_banner_are_shown_live_and_axe_clean(
    console_server: LocalServer,
    console_app: ConsoleApp,
    make_user: MakeUser,
    login: Login,
    csrf: Csrf,
    page: Page,
    queue: HandoffQueue,
) -> None:
    client, ns = console_app[REDIS], console_app[NAMESPACE]
    case = record()
    await queue.open(case)
    agent = await agent_for(login, csrf, console_app)
    first = await agent.reply(case, "A crew will come back today.")
    await Inbox(client, ns).ensure_group()  # channels started, no worker alive: the banner

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    await sign_in_as(page, console_server, make_user, f"/agent/cases/{case.case_id}")
    agent_reply = page.locator("#transcript li.from-agent")
    await expect(agent_reply.locator("p.delivery")).to_have_text("… Delivery: queued")
    banner = page.get_by_role("status").filter(has_text="Replies to residents are not flowing")
    await expect(banner).to_be_visible()
    await expect(page.locator("#delivery-failed")).to_be_hidden()
    assert not (violations := await axe_violations(page)), describe(violations)

    # the outbox sends it, then Twilio's callbacks arrive: the page follows without a reload
    text = "A crew will come back today."
    await delivery.record(
        client,
        delivery.sent_call(case.conversation_id, "SM1", entry=first, text=text, namespace=ns),
    )
    await expect(agent_reply.locator("p.delivery")).to_have_text("✓ Delivery: sent", timeout=15_000)
    failed = receipt(case, "failed", "SM1", error="unreachable destination handset", code="30003")
    await delivery.apply(client, failed, namespace=ns)
    await expect(agent_reply.locator("p.delivery")).to_have_text(
        "⚠ Delivery: not delivered (unreachable destination handset)", timeout=15_000
    )
    notice = page.get_by_role("alert").filter(has_text="A reply was not delivered")
    await expect(notice).to_contain_text("“A crew will come back today.”", timeout=15_000)
    await expect(notice).to_contain_text("(code 30003)")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.set_viewport_size({"width": 320, "height": 640})  # reflows, nothing off screen
    await expect(notice).to_be_visible()
    assert await horizontal_overflow(page) == 0
    await page.set_viewport_size({"width": 1280, "height": 800})

    await page.goto(console_server.make_url("/agent/"))
    row = page.locator(f'tr[data-case="{case.case_id}"]')
    await expect(row.locator(".delivery-flag")).to_have_text("⚠ Reply not delivered")
    await expect(banner).to_be_visible()
    assert not (violations := await axe_violations(page)), describe(violations)
    # the workers come back: the banner goes without a reload
    reader = InboxWorker(client, echo, ns, consumer="console-test-2-abcdef", block_ms=10)
    sender = OutboxWorker(client, {}, ns, consumer="console-test-2-abcdef", block_ms=10)
    await sender.ensure_group()
    await reader.step(block=False)
    await sender.step(block=False)
    await expect(page.locator("#channel-banner")).to_be_empty(timeout=30_000)
    await expect(row.locator(".delivery-flag")).to_have_text("⚠ Reply not delivered")  # live poll
    assert errors == []
