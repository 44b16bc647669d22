"""Finding 7: a session that timed out lost the agent's typed reply, with no warning.

The tester's report: an agent typed a reply, was called away, came back after the 30-minute
idle limit and pressed Send; the console showed the sign-in page and the reply was gone. Nothing
had warned them or offered more time (WCAG 2.2.1 Timing Adjustable), and the queue page had
silently stopped updating.

Now two minutes before the idle limit a dialog (``role="alertdialog"``) says so and offers
"Stay signed in": far more than the 20 seconds WCAG 2.2.1 asks for. Replies and notes typed on a
case are kept in the tab's ``sessionStorage`` until they show up as sent, so they are back after
signing in again; a page whose session has ended says so (``role="alert"``: "You have been
signed out — sign in again") instead of going quiet. Neither the pages' polling nor the
warning's own checks count as activity (``X-Council-Background: 1``), so an unattended page
still signs out (finding 6).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.testing.accessibility import axe_violations, describe
from bot.testing.browser import LocalServer
from bot.testing.console import FakeClock, Login, MakeUser, fill_sign_in
from bot.web.agent import QUEUE
from bot.web.app import ConsoleApp

IDLE = 30 * 60
WARNING = 120  # seconds before the end that the dialog appears
BACKGROUND = {"X-Council-Background": "1"}
REPLY = "I have booked a crew for tomorrow morning."


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


@pytest.fixture
async def case(console_app: ConsoleApp) -> HandoffRecord:
    now = datetime.now(UTC).isoformat()
    record = HandoffRecord(
        conversation_id="whatsapp:441234567890:447700900123",
        channel="whatsapp",
        account="441234567890",
        sender="447700900123",
        display_name="Sam Resident",
        reason="complaint",
        topic="bin_day",
        priority="P2",
        team="customer_services",
        created_at=now,
        transcript=[{"role": "resident", "text": "my bin was missed again", "at": now}],
        intents=[],
        entities={},
        window=None,
    )
    queue: HandoffQueue = console_app[QUEUE]
    await queue.open(record)
    return record


async def seconds_left(client: httpx.AsyncClient) -> Any:
    response = await client.get("/api/agent/session", headers=BACKGROUND)
    return response.json()["expires_in"] if response.status_code == 200 else response.status_code


async def test_polling_and_asking_do_not_extend_only_staying_does(
    login: Login, clock: FakeClock, csrf: Any
) -> None:
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    assert await seconds_left(agent) == IDLE
    clock.advance(600)
    assert await seconds_left(agent) == IDLE - 600
    await agent.get("/api/agent/queue", headers=BACKGROUND)  # the queue page polling
    assert await seconds_left(agent) == IDLE - 600
    refused = await agent.post("/api/agent/session/extend")  # no CSRF token
    assert refused.status_code == 403
    stayed = await agent.post("/api/agent/session/extend", headers={"X-CSRF-Token": token})
    assert stayed.json() == {"expires_in": IDLE, "extendable": True}
    clock.advance(IDLE)
    assert await seconds_left(agent) == 401  # the unattended session has ended


async def test_the_absolute_limit_is_announced_as_final(
    login: Login, clock: FakeClock, csrf: Any
) -> None:
    agent = await login("agent", teams=("customer_services",))
    token = await csrf(agent)
    for _ in range(28):  # 28 x 25 minutes of real work
        clock.advance(1500)
        await agent.post("/api/agent/session/extend", headers={"X-CSRF-Token": token})
    clock.advance(1100)  # 100 s before the 12-hour limit
    status = (await agent.get("/api/agent/session", headers=BACKGROUND)).json()
    assert status == {"expires_in": 100, "extendable": False}


@pytest.mark.browser
async def test_warned_in_time_and_nothing_typed_is_lost(
    console_server: LocalServer,
    make_user: MakeUser,
    page: Page,
    clock: FakeClock,
    case: HandoffRecord,
) -> None:
    user, password = await make_user("agent", teams=("customer_services",))
    case_url = console_server.make_url(f"/agent/cases/{case.case_id}")
    await page.clock.install()  # the page's timers move with the server's fake clock
    await page.goto(case_url)
    async with page.expect_response("**/api/agent/session"):  # the page's first look
        await fill_sign_in(page, user.username, password)
    reply = page.get_by_label("Reply", exact=True)
    await reply.fill(REPLY)

    # 28.5 minutes later: the warning, with time to answer it, and focus on the way out of it.
    clock.advance(IDLE - WARNING + 30)
    await page.clock.fast_forward((IDLE - WARNING + 30) * 1000)
    warning = page.get_by_role("alertdialog", name="You are about to be signed out")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("signed out in 2 minutes")
    stay = warning.get_by_role("button", name="Stay signed in")
    await expect(stay).to_be_focused()
    assert not (violations := await axe_violations(page)), describe(violations)
    await stay.click()
    await expect(warning).to_be_hidden()
    await expect(page.locator("#signed-out")).to_be_empty()

    # Called away again, and this time nobody answers: the page says the session has ended.
    clock.advance(IDLE - WARNING + 30)
    await page.clock.fast_forward((IDLE - WARNING + 30) * 1000)
    await expect(warning).to_be_visible()
    clock.advance(WARNING)
    await page.clock.fast_forward(WARNING * 1000)
    notice = page.get_by_role("alert")
    await expect(notice).to_contain_text("You have been signed out — sign in again.")
    await expect(warning).to_be_hidden()
    await expect(reply).to_have_value(REPLY)
    assert not (violations := await axe_violations(page)), describe(violations)

    # Signing in again brings the agent back to the case with the reply still there.
    await notice.get_by_role("link", name="sign in again").click()
    await fill_sign_in(page, user.username, password)
    await expect(page).to_have_url(case_url)
    await expect(reply).to_have_value(REPLY)
    await page.get_by_role("button", name="Send on whatsapp").click()
    await expect(page.locator("#transcript")).to_contain_text(REPLY)
    await page.reload()  # sent: the kept copy is gone
    await expect(reply).to_have_value("")

    # Signing out on purpose (a shared desk) takes typed drafts with it.
    await reply.fill("half a thought")
    await page.get_by_role("button", name="Sign out").click()
    await page.goto(case_url)
    async with page.expect_response("**/api/agent/session"):  # the page's scripts have run
        await fill_sign_in(page, user.username, password)
    await expect(reply).to_have_value("")


@pytest.mark.browser
async def test_pages_say_when_the_session_has_ended(
    console_server: LocalServer,
    make_user: MakeUser,
    page: Page,
    clock: FakeClock,
    case: HandoffRecord,
) -> None:
    user, password = await make_user("agent", teams=("customer_services",))
    await page.clock.install()
    await page.goto(console_server.make_url("/agent/"))
    async with page.expect_response("**/api/agent/session"):
        await fill_sign_in(page, user.username, password)
    await expect(page.get_by_role("link", name="Sam Resident")).to_be_visible()

    # The queue polls for 31 minutes and nobody touches it: it stops and says why.
    clock.advance(IDLE + 60)
    await page.clock.fast_forward((IDLE + 60) * 1000)
    notice = page.get_by_role("alert")
    await expect(notice).to_contain_text("You have been signed out — sign in again.")
    await expect(notice.get_by_role("link", name="sign in again")).to_have_attribute(
        "href", "/login?next=%2Fagent%2F"
    )

    # On a case, pressing Send after the session ended keeps the reply on the page.
    await page.goto(console_server.make_url(f"/agent/cases/{case.case_id}"))
    async with page.expect_response("**/api/agent/session"):
        await fill_sign_in(page, user.username, password)
    reply = page.get_by_label("Reply", exact=True)
    await reply.fill(REPLY)
    clock.advance(IDLE + 1)  # the page has not noticed yet
    await page.get_by_role("button", name="Send on whatsapp").click()
    await expect(page.get_by_role("alert")).to_contain_text("You have been signed out")
    await expect(reply).to_have_value(REPLY)
    assert page.url.endswith(f"/agent/cases/{case.case_id}")


@pytest.mark.browser
async def test_at_the_12_hour_limit_the_warning_offers_no_false_hope(
    console_server: LocalServer,
    make_user: MakeUser,
    page: Page,
    clock: FakeClock,
    case: HandoffRecord,
) -> None:
    user, password = await make_user("agent", teams=("customer_services",))
    await page.clock.install()
    await page.goto(console_server.make_url(f"/agent/cases/{case.case_id}"))
    async with page.expect_response("**/api/agent/session"):
        await fill_sign_in(page, user.username, password)
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    for _ in range(28):  # a long day of real work, 25 minutes at a time
        clock.advance(1500)
        extend = console_server.make_url("/api/agent/session/extend")
        assert (await page.request.post(extend, headers={"X-CSRF-Token": token or ""})).ok
    clock.advance(1100)  # 100 s before the 12-hour limit
    await page.clock.fast_forward(29_000 * 1000)
    warning = page.get_by_role("alertdialog", name="You are about to be signed out")
    await expect(warning).to_contain_text("cannot be extended")
    await expect(warning.get_by_role("button", name="Stay signed in")).to_be_hidden()
    await expect(warning.get_by_role("button", name="Close")).to_be_focused()
