"""Agents see problem reports the back office has not taken yet (still being retried):
a banner on every agent page, refreshed from /api/agent/reports (bot.reports.waiting)."""

from __future__ import annotations

import time

import pytest
from playwright.async_api import Page, expect

from bot.channels.stream import Retries
from bot.reports.model import ProblemReport
from bot.reports.outbox import ReportOutbox
from bot.reports.store import ReportStore
from bot.testing.accessibility import axe_violations, describe, horizontal_overflow
from bot.testing.browser import LocalServer
from bot.testing.console import *  # noqa: F403
from bot.testing.console import Login, MakeUser, sign_in_as
from bot.web.app import NAMESPACE, REDIS, ConsoleApp
from tests.reports.conftest import make_report


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


async def retried_for_an_hour(console_app: ConsoleApp) -> tuple[ProblemReport, Retries, str]:
    """A report confirmed an hour ago, failed 40 times (wrong API key), to be tried again."""
    client, ns = console_app[REDIS], console_app[NAMESPACE]
    report = make_report(created_at=time.time() - 3600)
    entry = await ReportOutbox(client, ns).enqueue(report)
    retries = Retries(client, ReportStore(client, ns).key("outbox"))
    await client.hset(retries.state_key, entry, '{"attempts": 40, "first": 0, "errors": 0}')
    await retries.schedule(entry, time.time() + 60)
    error = "open311 https://bo.example/open311/v2: HTTP 403: Invalid api_key received"
    await ReportStore(client, ns).update(report.report_id, last_error=error)
    return report, retries, entry


LEAD = "<strong>Problem reports are waiting for the council's back office.</strong>"


async def test_reports_retried_for_long_are_shown_to_agents_without_resident_data(
    login: Login, console_app: ConsoleApp
) -> None:
    client = console_app[REDIS]
    agent = await login("agent", teams=("customer_services",))
    assert (await agent.get("/api/agent/reports")).json() == {"problems": []}
    assert LEAD not in (await agent.get("/agent/")).text

    report, retries, entry = await retried_for_an_hour(console_app)

    [problem] = (await agent.get("/api/agent/reports")).json()["problems"]
    assert problem.startswith("1 problem report has waited over 10 minutes")
    assert "40 attempts" in problem and "HTTP 403: Invalid api_key received" in problem
    html = (await agent.get("/agent/")).text
    assert 'id="report-banner" class="channel-banner" role="status" aria-live="polite"' in html
    assert LEAD in html and "HTTP 403" in html
    assert report.sender not in html and "bus stop" not in html  # no resident data

    # it went (or failed and became a case): no longer shown
    await client.zrem(retries.due_key, entry)
    assert (await agent.get("/api/agent/reports")).json() == {"problems": []}


async def test_only_agents_see_it(login: Login) -> None:
    nobody = await login("editor")
    assert (await nobody.get("/api/agent/reports")).status_code in (302, 303, 403)


@pytest.mark.browser
async def test_in_chromium_the_banner_comes_and_goes_live_and_is_axe_clean(
    console_server: LocalServer, console_app: ConsoleApp, make_user: MakeUser, page: Page
) -> None:
    await sign_in_as(page, console_server, make_user, "/agent/")
    await expect(page.locator("#report-banner")).to_be_empty()

    _, retries, entry = await retried_for_an_hour(console_app)
    banner = page.get_by_role("status").filter(has_text="Problem reports are waiting")
    await expect(banner).to_contain_text("HTTP 403: Invalid api_key received", timeout=30_000)
    await expect(banner).to_contain_text("Nothing is lost")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.set_viewport_size({"width": 320, "height": 640})
    await expect(banner).to_be_visible()
    assert await horizontal_overflow(page) == 0

    await console_app[REDIS].zrem(retries.due_key, entry)  # it went
    await expect(page.locator("#report-banner")).to_be_empty(timeout=30_000)
