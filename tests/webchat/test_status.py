"""A web chat handed to a person: the resident sees who answers, their typing and their reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
import redis.asyncio
from httpx import AsyncClient

from bot.channels.base import OutboundMessage, conversation_id
from bot.channels.outbox import OutboxWorker
from bot.handoff.record import HandoffRecord
from bot.keys import key
from bot.testing.webchat import SseEvent, WebChatClient
from bot.web.agent import QUEUE
from bot.web.app import ACCOUNTS, ConsoleApp
from bot.webchat.adapter import WebChatAdapter
from bot.webchat.app import WebChat
from bot.webchat.status import agent_display_name

from .conftest import COUNCIL, messages

Login = Callable[..., Awaitable[AsyncClient]]
Csrf = Callable[[AsyncClient], Awaitable[str]]


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


def case_for(sender: str) -> HandoffRecord:
    return HandoffRecord(
        conversation_id=conversation_id("webchat", COUNCIL, sender),
        channel="webchat",
        account=COUNCIL,
        sender=sender,
        display_name="",
        reason="asked_for_person",
        topic="bin_day",
        priority="P2",
        team="customer_services",
        created_at=datetime.now(UTC).isoformat(),
        transcript=[{"role": "resident", "text": "a person please", "at": "2026-11-30T10:00:00"}],
    )


async def connected(webchat: WebChat, sender: str) -> None:
    async with asyncio.timeout(5):
        while webchat.fanout.streams(sender) == 0:
            await asyncio.sleep(0.01)


@dataclass
class Handover:
    """A resident's web chat handed to a person: the case open, the resident's stream read
    until an agent's message comes (``reading``)."""

    sender: str
    case: HandoffRecord
    adapter: WebChatAdapter
    outbox: OutboxWorker
    reading: asyncio.Task[list[SseEvent]]

    async def claim_type_and_reply(
        self, agent: AsyncClient, token: str, text: str
    ) -> list[SseEvent]:
        """The agent claims the case, types and replies; the resident's events once it arrives."""
        base = f"/agent/cases/{self.case.case_id}"
        assert (await agent.post(f"{base}/claim", data={"csrf_token": token})).status_code == 200
        typed = await agent.post(
            f"/api/agent/cases/{self.case.case_id}/typing", headers={"X-CSRF-Token": token}
        )
        assert typed.status_code == 204
        sent = await agent.post(f"{base}/reply", data={"csrf_token": token, "text": text})
        assert sent.status_code == 200
        await self.outbox.ensure_group()
        async with asyncio.timeout(10):
            assert await self.outbox.run_once() == 1
            return await self.reading


@pytest.fixture
async def handover(
    resident: WebChatClient,
    webchat: WebChat,
    console_app: ConsoleApp,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> AsyncIterator[Handover]:
    """The resident asked for a person; the case is open and their widget is listening."""
    await resident.send("can I talk to a person?")
    sender = resident.token.split(".")[2]
    case = case_for(sender)
    await console_app[QUEUE].open(case)

    def answered(seen: list[SseEvent]) -> bool:
        return any(m["from"] == "agent" for m in messages(seen))

    reading = asyncio.create_task(resident.events(answered))
    await connected(webchat, sender)
    adapter = WebChatAdapter(async_redis, namespace, keep_days=1)
    outbox = OutboxWorker(async_redis, {"webchat": adapter}, namespace)
    yield Handover(sender, case, adapter, outbox, reading)
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)


async def test_the_resident_sees_waiting_then_the_agents_name_typing_and_reply(
    handover: Handover, console_app: ConsoleApp, login: Login, csrf: Csrf
) -> None:
    reply = OutboundMessage("I'll find someone to help you.")
    await handover.adapter.send(COUNCIL, handover.sender, reply)
    agent = await login("agent", teams=("customer_services",), username="sam.jones")
    await console_app[ACCOUNTS].set_display_name("sam.jones", "Sam")
    events = await handover.claim_type_and_reply(agent, await csrf(agent), "Hi, Sam here.")

    shown = [
        (
            e.kind,
            e.data.get("state") or e.data.get("from"),
            e.data.get("agent_name") or e.data.get("name"),
        )
        for e in events
    ]
    assert shown == [
        ("status", "bot", None),  # on connecting
        ("message", "resident", None),
        ("status", "waiting", None),
        ("message", "bot", None),
        ("status", "agent", "Sam"),
        ("typing", "agent", "Sam"),
        ("message", "agent", "Sam"),
    ]
    assert messages(events)[-1]["text"] == "Hi, Sam here."


async def test_resolving_the_case_gives_the_chat_back_to_the_bot(
    resident: WebChatClient,
    console_app: ConsoleApp,
    login: Login,
    csrf: Csrf,
) -> None:
    sender = resident.token.split(".")[2]
    case = case_for(sender)
    await console_app[QUEUE].open(case)
    agent = await login("agent", teams=("customer_services",), username="ann")
    token = await csrf(agent)
    await agent.post(f"/agent/cases/{case.case_id}/claim", data={"csrf_token": token})
    await agent.post(f"/agent/cases/{case.case_id}/resolve", data={"csrf_token": token})
    async with asyncio.timeout(5):
        events = await resident.events(
            lambda seen: (
                [e.data.get("state") for e in seen if e.kind == "status"][-1:] == ["bot"]
                and len(seen) > 1
            )
        )
    assert [(e.data["state"], e.data.get("agent_name")) for e in events if e.id] == [
        ("agent", None),  # no display name: the widget says "an adviser"
        ("bot", None),
    ]


async def test_without_a_display_name_no_part_of_the_login_reaches_the_resident(
    handover: Handover, login: Login, csrf: Csrf
) -> None:
    agent = await login("agent", teams=("customer_services",), username="sam.jones")
    events = await handover.claim_type_and_reply(agent, await csrf(agent), "Hello.")

    shown = [(e.kind, e.data.get("state") or e.data.get("from")) for e in events]
    assert shown[-3:] == [("status", "agent"), ("typing", "agent"), ("message", "agent")]
    for event in events[-3:]:
        assert "agent_name" not in event.data and "name" not in event.data
    everything = repr([e.data for e in events]).lower()
    assert "sam" not in everything and "jones" not in everything


async def test_other_channels_cases_are_left_alone_by_the_web_chat(
    console_app: ConsoleApp,
    login: Login,
    csrf: Csrf,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    whatsapp = replace(
        case_for("0" * 32),
        conversation_id="whatsapp:441234567890:447700900123",
        channel="whatsapp",
        case_id="a" * 16,
    )
    await console_app[QUEUE].open(whatsapp)
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    await agent.post(f"/agent/cases/{whatsapp.case_id}/claim", data={"csrf_token": token})
    typing = await agent.post(
        f"/api/agent/cases/{whatsapp.case_id}/typing", headers={"X-CSRF-Token": token}
    )
    assert typing.status_code == 204
    assert await async_redis.keys(key(namespace, "webchat", "*")) == []


async def test_the_name_a_resident_sees_is_the_accounts_display_name_or_none(
    console_app: ConsoleApp, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    accounts = console_app[ACCOUNTS]
    await accounts.create("priya_k", "a long enough password", ["agent"])
    assert await agent_display_name(async_redis, namespace, "priya_k") == ""
    await accounts.set_display_name("priya_k", "Priya")
    assert await agent_display_name(async_redis, namespace, "priya_k") == "Priya"
    assert await agent_display_name(async_redis, namespace, "nobody") == ""
