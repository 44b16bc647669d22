"""Finding 8: knowledge-base answers accepted raw HTML and ``javascript:`` links.

The tester's report: an editor could save an answer with ``<script>``, ``<a href=...>`` or a
``javascript:`` link, and it was sent as it was to residents (whose web chat or app may
render it).

Now saving refuses markup, HTML character codes and any link that is not https://, tel: or
mailto: (with a problem an editor can act on), and what residents are sent is cleaned again
on the way out, for entries stored before the rule.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
import redis.asyncio

from bot.errors import EntryInvalidError
from bot.knowledge.model import Entry, entry_problems, plain_text
from bot.knowledge.store import KnowledgeBase


def entry(answer: str) -> Entry:
    return Entry(
        id="bulky-waste",
        topic="bulky_waste",
        questions=("Can you take away my old sofa?",),
        answers={"default": answer},
        owner_team="waste",
        review_by=date(2027, 1, 31),
    )


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("Book here <script>alert(document.cookie)</script>", "remove the HTML <script>"),
        ('<a href="https://www.ashvale.gov.uk">Book</a>', "remove the HTML <a href="),
        ("<img src=x onerror=alert(1)>", "remove the HTML <img"),
        ("Book online: javascript:alert(1)", "link javascript: is not allowed"),
        ("[Book](JavaScript:alert(1))", "link javascript: is not allowed"),
        ("Book: java\nscript:alert(1)", "link javascript: is not allowed"),
        ("Form: data:text/html;base64,PHNjcmlwdD4=", "link data: is not allowed"),
        ("Download: ftp://files.ashvale.gov.uk/form.pdf", "link ftp: is not allowed"),
        ("Fees &#60;b&#62; apply", "HTML code &#60;"),
        ("Call tel:call-us-now", "not a valid phone or e-mail link"),
        ("Write to mailto:nobody", "not a valid phone or e-mail link"),
    ],
)
def test_markup_and_unsafe_links_are_refused(answer: str, problem: str) -> None:
    problems = entry_problems(entry(answer))
    assert any(problem in p for p in problems), problems
    assert all(p.startswith("answers.default:") for p in problems)


@pytest.mark.parametrize(
    "answer",
    [
        "Book a collection at https://www.ashvale.gov.uk/bulky-waste (£30 for 3 items).",
        "Call tel:+441632960123 or e-mail mailto:waste@ashvale.gov.uk.",
        "Note: collections are on weekdays. Items < 2 m long; 3 > 2.",
        "Opening hours: 9:00-17:00.",
    ],
)
def test_plain_answers_with_safe_links_pass(answer: str) -> None:
    assert entry_problems(entry(answer)) == []


async def test_saving_refuses_with_a_clear_problem(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    kb = KnowledgeBase(async_redis, namespace)
    with pytest.raises(EntryInvalidError) as info:
        await kb.save_draft(entry('Click <a href="javascript:steal()">here</a>'), "ed", "x")
    assert any("plain text" in p for p in info.value.problems)
    assert any("javascript:" in p for p in info.value.problems)
    assert await async_redis.hlen(f"{namespace}:kb:head") == 0


def test_old_entries_are_cleaned_on_the_way_out() -> None:
    assert plain_text("Book <b>now</b>: <script>x()</script>https://a.gov.uk") == (
        "Book now: x()https://a.gov.uk"
    )
    assert plain_text("<scr<script>ipt>alert(1)</script>") == "alert(1)"
    assert "javascript" not in plain_text("go to javascript:alert(1) now").lower()
    assert "script:" not in plain_text("go to java\tscript:alert(1)")
    assert plain_text("Items < 2 m; call tel:+441632960123") == (
        "Items < 2 m; call tel:+441632960123"
    )


async def test_a_resident_never_gets_markup_stored_before_the_rule(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    # an entry written before validation existed, straight into the live hash
    stored = entry('Book <a href="javascript:alert(1)">online</a>').to_dict()
    stored["status"] = "published"
    await async_redis.hset(f"{namespace}:kb:live", "bulky-waste", json.dumps(stored))
    live = await KnowledgeBase(async_redis, namespace).live("bulky-waste")
    assert live is not None
    sent = live.answer_for("whatsapp")  # what action_answer utters
    assert sent == "Book online" and "<" not in sent and "javascript" not in sent
