"""Finding 6: the queue page kept a session alive for ever.

The tester's report: the agent queue page polls ``/api/agent/queue`` every 3 seconds, and every
poll counted as activity, so a queue left open on an unattended desk was never signed out:
the 30-minute idle limit never ended it.

Now the page's background requests carry ``X-Council-Background: 1`` and do not touch the
session's idle clock; they are still answered while the session lives, and refused (401) once
it has ended. What the agent does (opening a page, posting a form) still counts.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Page, Request

from bot.testing.browser import LocalServer
from bot.testing.console import FakeClock, Login, MakeUser, fill_sign_in

POLL = {"X-Council-Background": "1"}


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


async def test_an_unattended_queue_page_is_signed_out_after_30_minutes(
    login: Login, clock: FakeClock
) -> None:
    agent = await login("agent", teams=("customer_services",))
    assert (await agent.get("/agent/")).status_code == 200
    for _ in range(29):  # 29 minutes of polling and nothing else
        clock.advance(60)
        assert (await agent.get("/api/agent/queue", headers=POLL)).status_code == 200
    clock.advance(60)
    ended = await agent.get("/api/agent/queue", headers=POLL)
    assert ended.status_code == 401
    page = await agent.get("/agent/", follow_redirects=False)
    assert page.status_code == 302 and page.headers["location"].startswith("/login")


async def test_what_the_agent_does_still_counts(login: Login, clock: FakeClock) -> None:
    agent = await login("agent", teams=("customer_services",))
    for _ in range(45):
        clock.advance(60)
        assert (await agent.get("/agent/")).status_code == 200  # a minute apart, 45 minutes
    clock.advance(29 * 60)
    assert (await agent.get("/api/agent/queue", headers=POLL)).status_code == 200


async def test_a_header_other_than_1_counts_as_activity(login: Login, clock: FakeClock) -> None:
    agent = await login("agent", teams=("customer_services",))
    for _ in range(35):
        clock.advance(60)
        response = await agent.get("/api/agent/queue", headers={"X-Council-Background": "0"})
        assert response.status_code == 200


@pytest.mark.browser
async def test_the_queue_page_marks_its_polls_as_background(
    console_server: LocalServer, make_user: MakeUser, page: Page
) -> None:
    user, password = await make_user("agent", teams=("customer_services",))
    polls: list[Request] = []
    page.on("request", lambda r: polls.append(r) if "/api/agent/queue" in r.url else None)
    await page.goto(console_server.make_url("/agent/"))
    await fill_sign_in(page, user.username, password)
    async with page.expect_request(lambda r: "/api/agent/queue" in r.url, timeout=10_000):
        pass
    assert polls and all(r.headers.get("x-council-background") == "1" for r in polls)
