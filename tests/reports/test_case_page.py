"""An agent sees a report case's position on a map and the resident's photo (item 6)."""

from __future__ import annotations

import pytest

from bot.handoff.queue import HandoffQueue
from bot.reports.cases import DELIVERED, report_record
from bot.testing.console import *  # noqa: F403
from bot.testing.console import Login
from bot.web.agent import QUEUE
from bot.web.app import ConsoleApp
from tests.reports.conftest import make_report


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.agent",)


async def test_the_case_page_links_the_map_position_and_the_photo(
    login: Login, console_app: ConsoleApp
) -> None:
    queue: HandoffQueue = console_app[QUEUE]
    report = make_report(media_url="https://edge.example/media/tok?x=1&y=2")
    case = report_record(
        report, reason=DELIVERED, reference="r-0001", team="highways", note="Sent by email."
    )
    await queue.open(case)
    agent = await login("agent", teams=("highways",))
    html = (await agent.get(f"/agent/cases/{case.case_id}")).text
    assert 'href="https://www.openstreetmap.org/?mlat=52.2&amp;mlon=-1.5#map=19/52.2/-1.5"' in html
    assert 'href="https://edge.example/media/tok?x=1&amp;y=2"' in html
    assert "A deep pothole by the bus stop" in html and "problem report" in html


async def test_a_photo_address_that_is_not_a_web_address_is_not_linked(
    login: Login, console_app: ConsoleApp
) -> None:
    queue: HandoffQueue = console_app[QUEUE]
    case = report_record(
        make_report(media_url="javascript:alert(1)"),
        reason=DELIVERED, reference="r-0001", team="highways", note="x",
    )  # fmt: skip
    await queue.open(case)
    agent = await login("agent", teams=("highways",))
    html = (await agent.get(f"/agent/cases/{case.case_id}")).text
    assert "javascript:alert" not in html.split('id="report-links"')[1].split("</ul>")[0]


def test_several_answers_to_one_question_read_as_a_list_on_the_case() -> None:
    answers: dict[str, str | list[str]] = {"waste_type": ["household", "garden"], "amount": "car"}
    case = report_record(
        make_report(attributes=answers),
        reason=DELIVERED, reference="r-0001", team="waste", note="x",
    )  # fmt: skip
    assert case.entities["report_answers"] == ["amount: car", "waste_type: household, garden"]
