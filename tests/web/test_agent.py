"""Agent console over HTTP (real server, real Redis) and in Chromium."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Page, expect

from bot.channels.window import touch
from bot.handoff.canned import CannedResponses
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord, priority_for, team_for
from bot.profile import current as current_profile
from bot.testing.browser import LocalServer
from bot.testing.console import Csrf, Login, MakeUser, fill_sign_in
from bot.web.agent import CANNED, QUEUE, RESUME
from bot.web.app import AUDIT, NAMESPACE, REDIS, ConsoleApp


def record(
    sender: str = "447700900123",
    *,
    channel: str = "whatsapp",
    reason: str = "asked_for_person",
    topic: str = "bin_day",
    window: dict[str, Any] | None = None,
    **fields: Any,
) -> HandoffRecord:
    values: dict[str, Any] = {
        "conversation_id": f"{channel}:441234567890:{sender}",
        "channel": channel,
        "account": "441234567890",
        "sender": sender,
        "display_name": "Sam Resident",
        "reason": reason,
        "topic": topic,
        "priority": priority_for(reason),
        "team": team_for(topic, reason),
        "created_at": datetime.now(UTC).isoformat(),
        "transcript": [
            {"role": "resident", "text": "my bin was missed", "at": "2027-03-03T10:00:00+00:00"},
            {"role": "bot", "text": "Sorry to hear that.", "at": "2027-03-03T10:00:01+00:00"},
        ],
        "intents": [{"text": "talk to a person", "name": "human_agent", "confidence": 0.91}],
        "entities": {"postcode": ["AB1 2CD"]},
        "window": window,
    }
    values.update(fields)
    return HandoffRecord(**values)


class FakeRasa:
    """Records resume calls; can be told to fail."""

    def __init__(self) -> None:
        self.resumed: list[str] = []
        self.fail = False

    async def __call__(self, conversation_id: str) -> None:
        if self.fail:
            raise TimeoutError
        self.resumed.append(conversation_id)


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


@pytest.fixture
def rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture
def console_app(console_app: ConsoleApp, rasa: FakeRasa) -> ConsoleApp:
    console_app[RESUME] = rasa
    return console_app


@pytest.fixture
def queue(console_app: ConsoleApp) -> HandoffQueue:
    return console_app[QUEUE]


async def audit_actions(app: ConsoleApp, case_id: str) -> list[str]:
    return [e.action for e in reversed(await app[AUDIT].recent(object_id=case_id))]


async def outbox(app: ConsoleApp) -> list[dict[str, str]]:
    entries = await app[REDIS].xrange(f"{app[NAMESPACE]}:outbox")
    return [fields for _, fields in entries]


async def test_unauthenticated_requests_get_nothing(
    client: AsyncClient, queue: HandoffQueue, csrf: Csrf
) -> None:
    case = record()
    await queue.open(case)
    page = await client.get(f"/agent/cases/{case.case_id}", follow_redirects=False)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    api = await client.get("/api/agent/queue")
    assert api.status_code == 401 and "Sam" not in api.text
    post = await client.post(
        f"/agent/cases/{case.case_id}/claim",
        data={"csrf_token": await csrf(client)},
        follow_redirects=False,
    )
    assert post.status_code in {302, 403}
    assert await queue.holder(case.case_id) is None


async def test_agents_see_only_their_teams_cases(login: Login, queue: HandoffQueue) -> None:
    bins, tax = record("1"), record("2", topic="council_tax_pay")
    await queue.open(bins)
    await queue.open(tax)
    agent = await login("agent", teams=("customer_services",))
    listing = (await agent.get("/api/agent/queue")).json()
    assert [c["case_id"] for c in listing["cases"]] == [bins.case_id]
    page = await agent.get("/agent/")
    html = page.text
    assert page.status_code == 200 and bins.case_id in html and tax.case_id not in html
    assert (await agent.get(f"/agent/cases/{bins.case_id}")).status_code == 200
    assert (await agent.get(f"/agent/cases/{tax.case_id}")).status_code == 403
    assert (await agent.get("/agent/cases/nope")).status_code == 404
    editor = await login("editor")
    assert (await editor.get("/agent/")).status_code == 403
    assert (await editor.get("/api/agent/queue")).status_code == 403


async def test_case_page_shows_the_context(login: Login, queue: HandoffQueue) -> None:
    earlier = record("447700900123", created_at="2027-01-01T09:00:00+00:00")
    await queue.open(earlier)
    await queue.resolve(earlier.case_id)
    closes = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
    case = record(window={"open": True, "closes_at": closes})
    await queue.open(case)
    await queue.add_note(case.case_id, "bob", "depot called")
    agent = await login("agent", teams=("customer_services",))
    html = (await agent.get(f"/agent/cases/{case.case_id}")).text
    for expected in (
        "Sam Resident",
        "447700900123",
        "account 441234567890",
        "my bin was missed",
        "Sorry to hear that.",
        "human_agent (0.91)",
        "postcode: AB1 2CD",
        "asked for person",
        "P2",
        "depot called",
        f"/agent/cases/{earlier.case_id}",
        "First response",
        "open until",
    ):
        assert expected in html, expected


async def test_claim_reply_note_resolve_with_audit(
    console_app: ConsoleApp, login: Login, csrf: Csrf, queue: HandoffQueue
) -> None:
    case = record()
    await queue.open(case)
    await CannedResponses(console_app[REDIS], console_app[NAMESPACE]).add("Sorry", "Sorry!")
    agent = await login("agent", teams=("customer_services",), username="ann")
    token = await csrf(agent)
    base = f"/agent/cases/{case.case_id}"
    claimed = await agent.post(f"{base}/claim", data={"csrf_token": token})
    assert claimed.status_code == 200 and "Done: claimed" in claimed.text
    assert await queue.holder(case.case_id) == "ann"
    sent = await agent.post(f"{base}/reply", data={"csrf_token": token, "text": "On its way."})
    html = sent.text
    assert "Done: sent" in html and "On its way." in html and 'value="Sorry!"' in html
    assert await outbox(console_app) == [
        {
            "conversation_id": case.conversation_id,
            "channel": "whatsapp",
            "account": "441234567890",
            "recipient": "447700900123",
            "text": "On its way.",
            # held rather than lost should the window close before the send
            "hold": str(current_profile().retention_in_force().conversation_days * 86400),
        }
    ]
    await agent.post(f"{base}/note", data={"csrf_token": token, "text": "told depot"})
    assert [n["text"] for n in await queue.notes(case.case_id)] == ["told depot"]
    await agent.post(f"{base}/resolve", data={"csrf_token": token})
    closed = await queue.get(case.case_id)
    assert closed is not None and closed.status == "resolved"
    assert await audit_actions(console_app, case.case_id) == [
        "handoff.claim",
        "handoff.view",
        "handoff.reply",
        "handoff.view",
        "handoff.note",
        "handoff.view",
        "handoff.resolve",
        "handoff.view",
    ]
    entries = await console_app[AUDIT].recent(object_id=case.case_id)
    assert all(e.actor == "ann" for e in entries)
    assert all("On its way" not in str(e.detail) for e in entries)  # no residents' words


async def test_posts_without_csrf_are_refused(login: Login, queue: HandoffQueue) -> None:
    case = record()
    await queue.open(case)
    agent = await login("agent", teams=("customer_services",))
    refused = await agent.post(f"/agent/cases/{case.case_id}/claim", data={})
    assert refused.status_code == 403
    forged = await agent.post(
        f"/agent/cases/{case.case_id}/reply", data={"csrf_token": "x" * 40, "text": "hi"}
    )
    assert forged.status_code == 403
    assert await queue.holder(case.case_id) is None


async def test_other_team_cannot_act_on_a_case(
    login: Login, csrf: Csrf, queue: HandoffQueue
) -> None:
    case = record(topic="council_tax_pay")
    await queue.open(case)
    agent = await login("agent", teams=("customer_services",))
    response = await agent.post(
        f"/agent/cases/{case.case_id}/claim", data={"csrf_token": await csrf(agent)}
    )
    assert response.status_code == 403
    assert await queue.holder(case.case_id) is None


async def test_two_agents_racing_to_claim(login: Login, csrf: Csrf, queue: HandoffQueue) -> None:
    case = record()
    await queue.open(case)
    agents = [await login("agent", teams=("customer_services",)) for _ in range(4)]
    tokens = [await csrf(a) for a in agents]
    responses = await asyncio.gather(
        *(
            a.post(f"/agent/cases/{case.case_id}/claim", data={"csrf_token": t})
            for a, t in zip(agents, tokens, strict=True)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409]


async def test_lease_expiry_lets_another_agent_claim(
    login: Login, csrf: Csrf, queue: HandoffQueue
) -> None:
    case = record()
    await queue.open(case)
    await queue.claim(case.case_id, "gone", lease_seconds=0.2)
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    held = await agent.post(f"/agent/cases/{case.case_id}/claim", data={"csrf_token": token})
    assert held.status_code == 409 and "gone is working on this case" in held.text
    await asyncio.sleep(0.3)
    taken = await agent.post(f"/agent/cases/{case.case_id}/claim", data={"csrf_token": token})
    assert taken.status_code == 200


async def test_closed_windows_offer_the_alternative_or_refuse(
    console_app: ConsoleApp, login: Login, csrf: Csrf, queue: HandoffQueue
) -> None:
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    whatsapp = record("1", window={"open": False, "closes_at": past})
    messenger = record("2", channel="messenger", window={"open": False, "closes_at": past})
    await queue.open(whatsapp)
    await queue.open(messenger)
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    page = (await agent.get(f"/agent/cases/{whatsapp.case_id}")).text
    assert "24-hour WhatsApp window has closed" in page and "Send with template:" in page
    plain = await agent.post(
        f"/agent/cases/{whatsapp.case_id}/reply", data={"csrf_token": token, "text": "hi"}
    )
    assert plain.status_code == 409
    templated = await agent.post(
        f"/agent/cases/{whatsapp.case_id}/reply",
        data={"csrf_token": token, "text": "hi", "send_as": "alternative"},
    )
    assert templated.status_code == 200
    page = (await agent.get(f"/agent/cases/{messenger.case_id}")).text
    assert "cannot be sent" in page and "reply-text" not in page
    refused = await agent.post(
        f"/agent/cases/{messenger.case_id}/reply",
        data={"csrf_token": token, "text": "hi", "send_as": "alternative"},
    )
    assert refused.status_code == 409
    assert [e["tag"] for e in await outbox(console_app)] == ["template:council_reply_waiting"]


async def test_window_is_read_live_when_the_resident_writes_again(
    console_app: ConsoleApp, login: Login, csrf: Csrf, queue: HandoffQueue
) -> None:
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    case = record("3", window={"open": False, "closes_at": past})
    await queue.open(case)
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    page = (await agent.get(f"/agent/cases/{case.case_id}")).text
    assert "24-hour WhatsApp window has closed" in page
    # the resident writes again: the channel inbox records the time, the window reopens
    await touch(
        console_app[REDIS],
        case.conversation_id,
        datetime.now(UTC).timestamp(),
        console_app[NAMESPACE],
    )
    page = (await agent.get(f"/agent/cases/{case.case_id}")).text
    assert "window-warning" not in page and 'id="window">open until' in page
    sent = await agent.post(
        f"/agent/cases/{case.case_id}/reply", data={"csrf_token": token, "text": "hello"}
    )
    assert sent.status_code == 200
    assert [e.get("tag", "") for e in await outbox(console_app)] == [""]


async def test_return_to_bot_calls_rasa(
    console_app: ConsoleApp, login: Login, csrf: Csrf, queue: HandoffQueue, rasa: FakeRasa
) -> None:
    case = record()
    await queue.open(case)
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    rasa.fail = True
    failed = await agent.post(f"/agent/cases/{case.case_id}/return", data={"csrf_token": token})
    assert failed.status_code == 502 and await queue.case_for(case.conversation_id) == case.case_id
    rasa.fail = False
    done = await agent.post(f"/agent/cases/{case.case_id}/return", data={"csrf_token": token})
    assert done.status_code == 200 and "Done: returned to bot" in done.text
    assert rasa.resumed == [case.conversation_id]
    closed = await queue.get(case.case_id)
    assert closed is not None and closed.status == "returned_to_bot"
    assert "handoff.return_to_bot" in await audit_actions(console_app, case.case_id)


async def test_reassign_to_another_team(
    console_app: ConsoleApp, login: Login, csrf: Csrf, queue: HandoffQueue
) -> None:
    case = record()
    await queue.open(case)
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    bad = await agent.post(
        f"/agent/cases/{case.case_id}/reassign", data={"csrf_token": token, "team": "nope"}
    )
    assert bad.status_code == 400
    moved = await agent.post(
        f"/agent/cases/{case.case_id}/reassign",
        data={"csrf_token": token, "team": "housing"},
        follow_redirects=False,
    )
    assert moved.status_code == 302 and moved.headers["Location"] == "/agent/?done=reassigned"
    assert [r.case_id for r in await queue.list_open("housing")] == [case.case_id]
    assert (await agent.get(f"/agent/cases/{case.case_id}")).status_code == 403
    entry = (await console_app[AUDIT].recent(object_id=case.case_id))[0]
    assert entry.action == "handoff.reassign"
    assert entry.detail == {"from": "customer_services", "to": "housing"}


async def test_editors_maintain_canned_responses(
    console_app: ConsoleApp, login: Login, csrf: Csrf
) -> None:
    agent = await login("agent", teams=("customer_services",))
    assert (await agent.get("/agent/canned")).status_code == 403
    editor = await login("editor")
    token = await csrf(editor)
    added = await editor.post(
        "/agent/canned", data={"csrf_token": token, "title": "Bins", "text": "Tomorrow."}
    )
    assert added.status_code == 200 and "Tomorrow." in added.text
    (canned,) = await console_app[CANNED].all()
    await editor.post(f"/agent/canned/{canned.response_id}/delete", data={"csrf_token": token})
    assert await console_app[CANNED].all() == []


@pytest.mark.browser
async def test_live_queue_claim_reply_and_return_in_chromium(
    console_server: LocalServer,
    console_app: ConsoleApp,
    make_user: MakeUser,
    page: Page,
    queue: HandoffQueue,
    rasa: FakeRasa,
) -> None:
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    user, password = await make_user("agent", teams=("customer_services",))
    await page.set_viewport_size({"width": 820, "height": 1180})  # a tablet
    await page.goto(str(console_server.make_url("/agent/")))
    await fill_sign_in(page, user.username, password)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Handoff queue")
    await expect(page.get_by_text("No open cases.")).to_be_visible()

    case = record(display_name="Pat Live")
    await queue.open(case)
    link = page.get_by_role("link", name="Pat Live")
    await expect(link).to_be_visible(timeout=10_000)  # arrived without a reload
    await expect(page.locator("#queue-count")).to_have_text("1")
    await link.click()

    await page.get_by_role("button", name="Claim").click()
    await expect(page.locator("#done")).to_have_text("Done: claimed.")
    await page.get_by_label("Reply", exact=True).fill("A crew will come back today.")
    await page.get_by_role("button", name="Send on whatsapp").click()
    await expect(page.locator("#done")).to_have_text("Done: sent.")
    await expect(page.locator("#transcript")).to_contain_text("A crew will come back today.")
    assert [e["text"] for e in await outbox(console_app)] == ["A crew will come back today."]

    await page.get_by_role("button", name="Return to bot").click()
    await expect(page.locator("#done")).to_have_text("Done: returned to bot.")
    await expect(page.locator("#case-status")).to_contain_text("returned to bot")
    assert rasa.resumed == [case.conversation_id]
    assert problems == []
