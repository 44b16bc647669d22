"""Agents see which language each case is in: Welsh cases are marked in the queue and the case."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from bot.handoff.queue import HandoffQueue
from bot.testing.browser import LocalServer
from bot.testing.console import Login, MakeUser, fill_sign_in
from bot.web.agent import QUEUE
from bot.web.app import ConsoleApp
from tests.web.test_agent import record


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


@pytest.fixture
def queue(console_app: ConsoleApp) -> HandoffQueue:
    return console_app[QUEUE]


async def test_queue_and_case_show_the_language(login: Login, queue: HandoffQueue) -> None:
    welsh = record("447700900111", display_name="Siân", language="cy")
    english = record("447700900222", display_name="Sam")
    await queue.open(welsh)
    await queue.open(english)
    agent = await login("agent", teams=("customer_services",))

    rows = {row["name"]: row for row in (await agent.get("/api/agent/queue")).json()["cases"]}
    assert (rows["Siân"]["language"], rows["Sam"]["language"]) == ("cy", "en")
    listing = (await agent.get("/agent/")).text
    assert listing.count('Welsh (<span lang="cy">Cymraeg</span>)') == 1

    case = (await agent.get(f"/agent/cases/{welsh.case_id}")).text
    assert '<dd id="case-language">Welsh (<span lang="cy">Cymraeg</span>): reply in Welsh' in case
    other = (await agent.get(f"/agent/cases/{english.case_id}")).text
    assert '<dd id="case-language">English</dd>' in other


@pytest.mark.browser
async def test_the_live_queue_marks_welsh_cases(
    console_server: LocalServer, make_user: MakeUser, page: Page, queue: HandoffQueue
) -> None:
    user, password = await make_user("agent", teams=("customer_services",))
    await page.goto(str(console_server.make_url("/agent/")))
    await fill_sign_in(page, user.username, password)
    await expect(page.get_by_text("No open cases.")).to_be_visible()
    # opened after the page loaded: only the polling script (agent.js) can show it
    await queue.open(record("447700900111", display_name="Siân", language="cy"))
    await queue.open(record("447700900222", display_name="Sam"))
    welsh_row = page.locator("#queue tbody tr", has_text="Siân")
    await expect(welsh_row.locator(".language")).to_have_text("Welsh (Cymraeg)", timeout=10_000)
    await expect(welsh_row.locator('.language [lang="cy"]')).to_have_text("Cymraeg")
    english_row = page.locator("#queue tbody tr", has_text="Sam")
    await expect(english_row).to_be_visible()
    await expect(english_row.locator(".language")).to_have_count(0)
