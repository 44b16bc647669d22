"""An admin answers a resident's requests in the console: a copy of their data, then erasure.

Rhiannon wrote to the council on SMS and was handed off to a person; she asks for a copy of what
is held about her, then for it to be erased. The admin finds her by phone number, downloads the
JSON, is asked to type a confirmation before erasing, and afterwards nothing of her is left in
Redis; the audit log records both and holds neither her number nor her words. Other roles and
forged forms are refused (and audited by the console).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio
from playwright.async_api import Page, expect

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.residents import Layout, find, leftovers
from bot.testing.accessibility import axe_violations, describe
from bot.testing.browser import LocalServer
from bot.testing.console import fill_sign_in
from bot.web.app import AUDIT, SETTINGS, ConsoleApp
from bot.web.residents import LAYOUT, subject_digest

NOW = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)
ACCOUNT = "+441632960000"


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.admin", "bot.web.residents")


@pytest.fixture
def layout(namespace: str) -> Layout:
    prefix = "rt" + uuid.uuid4().hex[:10]
    return Layout(namespace, f"{prefix}:tracker:", f"{prefix}:lock:")


@pytest.fixture
async def app(
    console_app: ConsoleApp, layout: Layout, async_redis: redis.asyncio.Redis
) -> AsyncIterator[ConsoleApp]:
    console_app[LAYOUT] = layout
    yield console_app
    keys = [k async for k in async_redis.scan_iter(match=f"{layout.tracker_prefix}*")]
    if keys:
        await async_redis.delete(*keys)


@dataclass
class Resident:
    phone: str
    national: str
    conversation: str
    case_id: str
    words: str


async def _seed(client: redis.asyncio.Redis, layout: Layout) -> Resident:
    tag = uuid.uuid4().hex[:6]
    digits = f"7700900{int(tag, 16) % 1000:03d}"
    phone = f"+44{digits}"
    conversation = f"sms:{ACCOUNT}:{phone}"
    words = f"potholes{tag}"
    tracker = {
        "sender_id": conversation,
        "events": [{"event": "user", "text": f"the {words} on my road", "message_id": "SM" + tag}],
    }
    await client.set(layout.tracker_prefix + conversation, json.dumps(tracker))
    await client.zadd(layout.key("window", "last"), {conversation: NOW.timestamp()})
    queue = HandoffQueue(client, layout.namespace, clock=lambda: NOW)
    case_id = await queue.open(
        HandoffRecord(
            conversation_id=conversation,
            channel="sms",
            account=ACCOUNT,
            sender=phone,
            reason="complaint",
            topic="roads",
            priority="P3",
            team="highways",
            created_at=NOW.isoformat(),
            display_name="Rhiannon",
            transcript=[{"role": "resident", "text": words, "at": NOW.isoformat()}],
        )
    )
    return Resident(phone, "0" + digits, conversation, case_id, words)


async def _audit_text(app: ConsoleApp) -> str:
    return json.dumps([entry.__dict__ for entry in await app[AUDIT].recent(limit=500)], default=str)


async def test_admin_exports_a_resident_as_json(app, login, csrf, async_redis) -> None:
    resident = await _seed(async_redis, app[LAYOUT])
    admin = await login("admin", username="root")
    page = await admin.get("/admin/residents")
    assert page.status_code == 200
    assert 'for="who"' in page.text

    response = await admin.post(
        "/admin/residents/export", data={"who": resident.national, "csrf_token": await csrf(admin)}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"].startswith("attachment;")
    held = response.json()
    assert held["identifiers"]["conversations"] == [resident.conversation]
    assert [case["case_id"] for case in held["handoff_cases"]] == [resident.case_id]
    assert resident.words in json.dumps(held)
    [entry] = await app[AUDIT].recent(action="resident.export")
    assert (entry.actor, entry.outcome) == ("root", "ok")
    assert entry.object_id == subject_digest(app[SETTINGS].secret_key, resident.national)
    assert entry.detail == {"conversations": 1, "handoff_cases": 1}
    audit = await _audit_text(app)
    for needle in (resident.phone[1:], resident.national, resident.words, resident.conversation):
        assert needle not in audit


async def test_erase_asks_for_typed_confirmation_then_leaves_nothing(
    app, login, csrf, async_redis
) -> None:
    resident = await _seed(async_redis, app[LAYOUT])
    other = await _seed(async_redis, app[LAYOUT])
    admin = await login("admin", username="root")
    token = await csrf(admin)

    asked = await admin.post(
        "/admin/residents/erase", data={"who": resident.phone, "csrf_token": token}
    )
    assert asked.status_code == 200
    assert "Confirm the erasure" in asked.text
    assert "1 conversation and 1 handoff case" in asked.text
    wrong = await admin.post(
        "/admin/residents/erase",
        data={"who": resident.phone, "confirm": "yes", "reference": "DPA-7", "csrf_token": token},
    )
    assert wrong.status_code == 400
    assert 'role="alert"' in wrong.text and "Type &#34;erase&#34;" in wrong.text
    assert 'value="DPA-7"' in wrong.text  # the reference typed is kept
    assert (await find(async_redis, app[LAYOUT], resident.phone)).found  # nothing done yet

    before = await find(async_redis, app[LAYOUT], resident.phone)
    done = await admin.post(
        "/admin/residents/erase",
        data={
            "who": resident.phone,
            "confirm": " Erase ",
            "reference": "DPA-7",
            "csrf_token": token,
        },
    )

    assert done.status_code == 200
    assert "Audit reference: <strong>DPA-7</strong>" in done.text
    assert await leftovers(async_redis, app[LAYOUT], before, skip=[app[LAYOUT].key("audit")]) == []
    assert not (await find(async_redis, app[LAYOUT], resident.phone)).found
    assert (await find(async_redis, app[LAYOUT], other.phone)).found  # someone else's is kept
    [entry] = await app[AUDIT].recent(action="resident.erase")
    assert (entry.actor, entry.object_id, entry.ip) == ("root", "DPA-7", "127.0.0.1")
    assert entry.detail["conversations"] == 1 and entry.detail["handoff_cases"] == 1
    audit = await _audit_text(app)
    for needle in (resident.phone[1:], resident.words, resident.conversation, resident.case_id):
        assert needle not in audit


async def test_bad_reference_is_refused_and_nothing_erased(app, login, csrf, async_redis) -> None:
    resident = await _seed(async_redis, app[LAYOUT])
    admin = await login("admin")
    response = await admin.post(
        "/admin/residents/erase",
        data={
            "who": resident.conversation,
            "confirm": "erase",
            "reference": "<script>",
            "csrf_token": await csrf(admin),
        },
    )
    assert response.status_code == 400
    assert "A request reference is up to 64" in response.text
    for own_details in (resident.national, resident.phone[1:], f"DPA-{resident.case_id}"):
        named = await admin.post(
            "/admin/residents/erase",
            data={
                "who": resident.conversation,
                "confirm": "erase",
                "reference": own_details,
                "csrf_token": await csrf(admin),
            },
        )
        assert named.status_code == 400
        assert "The request reference names the resident" in named.text
    assert (await find(async_redis, app[LAYOUT], resident.conversation)).found


async def test_unknown_or_empty_resident_is_nothing_held(app, login, csrf) -> None:
    admin = await login("admin")
    token = await csrf(admin)
    for path in ("/admin/residents/export", "/admin/residents/erase"):
        unknown = await admin.post(path, data={"who": "07700 900999", "csrf_token": token})
        assert unknown.status_code == 404
        assert "Nothing is held about that resident" in unknown.text
        empty = await admin.post(path, data={"who": "  ", "csrf_token": token})
        assert empty.status_code == 400
        assert 'role="alert"' in empty.text
    entries = await app[AUDIT].recent(object_type="resident")
    assert sorted(e.action for e in entries) == ["resident.erase", "resident.export"]
    assert {e.outcome for e in entries} == {"failed"}
    assert "900999" not in await _audit_text(app)


async def test_only_admins_and_only_with_the_csrf_token(app, login, csrf, async_redis) -> None:
    resident = await _seed(async_redis, app[LAYOUT])
    supervisor = await login("supervisor", "editor", "agent", username="sam")
    token = await csrf(supervisor)
    assert (await supervisor.get("/admin/residents")).status_code == 403
    for path in ("/admin/residents/export", "/admin/residents/erase"):
        form = {"who": resident.phone, "confirm": "erase", "csrf_token": token}
        refused = await supervisor.post(path, data=form)
        assert refused.status_code == 403
        assert resident.words not in refused.text
    admin = await login("admin")
    forged = await admin.post(
        "/admin/residents/erase", data={"who": resident.phone, "confirm": "erase"}
    )
    assert forged.status_code == 403
    assert (await find(async_redis, app[LAYOUT], resident.phone)).found
    denied = await app[AUDIT].recent(outcome="refused")
    assert sum(e.actor == "sam" and e.action == "access.denied" for e in denied) == 3
    assert any(e.action == "csrf.refused" for e in denied)
    assert "Residents' data" not in (await supervisor.get("/admin/audit")).text  # not in its nav


@pytest.mark.browser
async def test_browser_erase_by_keyboard_is_axe_clean(
    app, console_server: LocalServer, make_user, page: Page, async_redis
) -> None:
    resident = await _seed(async_redis, app[LAYOUT])
    user, password = await make_user("admin")
    await page.goto(str(console_server.make_url("/login?next=/admin/residents")))
    await fill_sign_in(page, user.username, password, by_keyboard=True)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Residents' data")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label("Conversation id, phone number").fill(resident.phone)
    await page.get_by_role("button", name="Erase…").press("Enter")
    await expect(page.get_by_role("heading", name="Confirm the erasure")).to_be_visible()
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label('Type "erase" to confirm').fill("nope")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text('Type "erase"')
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label('Type "erase" to confirm').fill("erase")
    await page.get_by_role("button", name="Erase everything").press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("was erased")
    assert not (violations := await axe_violations(page)), describe(violations)
    assert not (await find(async_redis, app[LAYOUT], resident.phone)).found
