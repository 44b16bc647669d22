"""The review queue (issue 13 item 3): editors turn missed messages into training data."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from httpx import AsyncClient
from playwright.async_api import Browser

from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.knowledge.model import Entry
from bot.knowledge.review import ReviewQueue
from bot.testing.accessibility import axe_violations, describe, horizontal_overflow
from bot.testing.browser import LocalServer
from bot.testing.console import Csrf, Login, MakeUser, fill_sign_in
from bot.testing.handoff import handoff_record
from bot.web.app import AUDIT, NAMESPACE, REDIS, ConsoleApp
from bot.web.editor import KB
from bot.web.review import REVIEW, domain_intents

SENDER = "whatsapp:441234567890:447700900123"


@pytest.fixture
def console_sections() -> tuple[str, ...]:
    return ("bot.web.editor", "bot.web.review")


@pytest.fixture
def review(console_app: ConsoleApp) -> ReviewQueue:
    return console_app[REVIEW]


@pytest.fixture
async def entry(console_app: ConsoleApp) -> Entry:
    allotments = Entry(
        id="allotments",
        topic="allotments",
        title="Allotments",
        questions=("How do I get an allotment?",),
        answers={"default": "Join the waiting list: https://www.ashvale.gov.uk/allotments"},
        owner_team="Parks",
        review_by=date(2027, 1, 31),
        status="published",
    )
    await console_app[KB].import_entry(allotments, "tester", "test content")
    return allotments


def case(reason: str, text: str, **fields: Any) -> HandoffRecord:
    fields.setdefault("topic", "council_tax_pay")
    return handoff_record(reason=reason, text=text, minutes_ago=30, **fields)


async def _decide(client: AsyncClient, csrf: Csrf, candidate_id: str, **form: str) -> Any:
    return await client.post(
        f"/review/{candidate_id}",
        data={"csrf_token": await csrf(client), **form},
        follow_redirects=False,
    )


async def test_a_chosen_topic_becomes_an_intent_example_for_training(
    console_app: ConsoleApp, review: ReviewQueue, login: Login, csrf: Csrf
) -> None:
    chosen = await review.record_choice(
        SENDER, "my name is Jo Bloggs, council tax help pls", "council_tax_discount", "ctr"
    )
    assert chosen is not None
    editor = await login("editor")
    page = await editor.get("/review/")
    assert page.status_code == 200
    assert "council tax help pls" in page.text and "Jo Bloggs" not in page.text
    assert "The resident chose: council_tax_discount" in page.text

    answer = await _decide(
        editor, csrf, chosen.id, label="intent", intent="council_tax_discount", entry="x"
    )
    assert (answer.status_code, answer.headers["location"]) == (302, "/review/?done=reviewed")
    assert await review.pending() == []
    assert await review.training_examples() == {
        "council_tax_discount": ["my name is [name], council tax help pls"]
    }
    [audited] = await console_app[AUDIT].recent(action="review.decide")
    assert audited.object_id == chosen.id
    assert audited.detail["label"] == "intent"
    assert "help" not in str(audited.detail)  # never the resident's words
    assert "Decision saved." in (await editor.get("/review/?done=reviewed")).text


async def test_unanswered_cases_are_queued_with_the_agents_outcome(
    console_app: ConsoleApp, review: ReviewQueue, login: Login, csrf: Csrf
) -> None:
    queue = HandoffQueue(console_app[REDIS], console_app[NAMESPACE])
    allotment = case("low_confidence", "can I rent an allotment near AV1 2BX")
    person = case("asked_for_person", "talk to a person please")
    await queue.open(allotment)
    await queue.open(person)
    await queue.resolve(allotment.case_id, "agent.one")
    editor = await login("editor")
    page = (await editor.get("/review/")).text
    assert "can I rent an allotment near [postcode]" in page
    assert "resolved by a person" in page
    assert "talk to a person please" not in page  # not an unanswered question
    await editor.get("/review/")  # opening the page again adds nothing twice
    [pending] = await review.pending()
    assert pending.id == f"case-{allotment.case_id}"
    assert pending.conversation_id == allotment.conversation_id

    answer = await _decide(editor, csrf, pending.id, label="out_of_scope")
    assert answer.status_code == 302
    assert await review.training_examples() == {
        "out_of_scope": ["can I rent an allotment near [postcode]"]
    }
    await editor.get("/review/")
    assert await review.pending() == []  # a decided case is not imported again


async def test_a_knowledge_base_question_goes_into_the_entry_draft(
    console_app: ConsoleApp, review: ReviewQueue, entry: Entry, login: Login, csrf: Csrf
) -> None:
    chosen = await review.record_choice(SENDER, "allotment waiting list?", "allotments", "")
    assert chosen is not None
    editor = await login("editor")
    answer = await _decide(editor, csrf, chosen.id, label="kb_question", entry=entry.id)
    assert answer.status_code == 302
    head = await console_app[KB].head(entry.id)
    assert head.entry.questions == (*entry.questions, "allotment waiting list?")
    assert head.entry.status == "draft"  # published as usual, through the gate
    live = await console_app[KB].live(entry.id)
    assert live is not None and live.questions == entry.questions
    assert await review.training_examples() == {}


async def test_bad_decisions_are_refused_and_nothing_changes(
    review: ReviewQueue, entry: Entry, login: Login, csrf: Csrf
) -> None:
    chosen = await review.record_choice(SENDER, "allotments", "allotments", "")
    assert chosen is not None
    editor = await login("editor")
    assert (await _decide(editor, csrf, chosen.id, label="maybe")).status_code == 400
    assert (await _decide(editor, csrf, chosen.id, label="intent", intent="x")).status_code == 400
    refused = await _decide(editor, csrf, chosen.id, label="kb_question", entry="nope")
    assert refused.status_code == 400
    assert (await _decide(editor, csrf, "unknown", label="rejected")).status_code == 404
    assert [c.id for c in await review.pending()] == [chosen.id]
    no_token = await editor.post(f"/review/{chosen.id}", data={"label": "rejected"})
    assert no_token.status_code == 403
    assert (await _decide(editor, csrf, chosen.id, label="rejected")).status_code == 302
    assert (await _decide(editor, csrf, chosen.id, label="rejected")).status_code == 404


async def test_only_editors_review(console_app: ConsoleApp, login: Login, csrf: Csrf) -> None:
    agent = await login("agent")
    assert (await agent.get("/review/")).status_code == 403
    assert (await _decide(agent, csrf, "x", label="rejected")).status_code == 403
    assert await console_app[AUDIT].recent(action="access.denied")


def test_intents_offered_are_the_domains() -> None:
    intents = domain_intents()
    assert {"council_tax_pay", "bulky_waste", "greet"} <= set(intents)
    assert not {"kb_choose", "out_of_scope", "attachment"} & set(intents)


@pytest.mark.browser
@pytest.mark.parametrize(
    "view",
    [
        {"viewport": {"width": 320, "height": 640}},
        {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},  # 200% zoom
    ],
)
async def test_review_page_is_accessible_and_reflows(
    view: dict[str, Any],
    browser: Browser,
    console_server: LocalServer,
    review: ReviewQueue,
    entry: Entry,
    make_user: MakeUser,
) -> None:
    await review.record_choice(SENDER, "can i get an allotment plot", "allotments", entry.id)
    user, password = await make_user("editor")
    context = await browser.new_context(**view)
    page = await context.new_page()
    await page.goto(console_server.make_url("/review/"))
    await fill_sign_in(page, user.username, password)
    await page.wait_for_url(console_server.make_url("/review/"))
    assert await horizontal_overflow(page) == 0
    assert not (violations := await axe_violations(page)), describe(violations)
    # keyboard only: choose "out of scope" and save
    await page.get_by_label("Out of scope (the assistant should hand it to a person)").focus()
    await page.keyboard.press("Space")
    await page.get_by_role("button", name="Save decision").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url(console_server.make_url("/review/?done=reviewed"))
    assert await review.training_examples() == {"out_of_scope": ["can i get an allotment plot"]}
    assert not (violations := await axe_violations(page)), describe(violations)
    await context.close()
