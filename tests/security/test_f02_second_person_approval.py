"""Finding 2: second-person approval could be bypassed.

The tester's report: editor 1 asked for approval of version 6; editor 2 saved their own text
as version 7 and clicked "Approve and publish": version 7 went live, reviewed by nobody, and
the history said "author editor1, approved by editor2". Rolling back on an approval-required
team republished without approval.

Now approval publishes exactly the requested version; any edit after the request ends it; the
approver can be neither the author nor the requester of that version; the history names the
real author and approver; a rollback on such a team waits for approval like any change.
"""

from __future__ import annotations

from datetime import date

import pytest
import redis.asyncio

from bot.errors import PublishBlockedError
from bot.knowledge.model import Entry
from bot.knowledge.store import KnowledgeBase

TEAM = "Waste and Recycling"
REVIEWED = "We collect up to three bulky items for £30. Book online."
SNUCK_IN = "Leave your sofa on the pavement, we will take it for free."


def make_entry(answers: dict[str, str]) -> Entry:
    return Entry(
        id="test-entry",
        topic="bulky_waste",
        questions=("Can you take away my old sofa?",),
        answers=answers,
        owner_team=TEAM,
        review_by=date(2027, 1, 31),
    )


@pytest.fixture
async def kb(async_redis: redis.asyncio.Redis, namespace: str) -> KnowledgeBase:
    # no encoder and no test conversations: approval never needs the embedding model
    base = KnowledgeBase(async_redis, namespace)
    await base.set_approval_required(TEAM, True)
    return base


async def _live_text(kb: KnowledgeBase) -> str | None:
    live = await kb.live("test-entry")
    return None if live is None else live.answers["default"]


async def test_an_edit_after_the_request_cannot_be_approved(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(answers={"default": REVIEWED}), "editor1", "new price")
    requested = await kb.request_approval("test-entry", "editor1")
    # editor 2 saves their own text over it, then approves "the request"
    await kb.save_draft(make_entry(answers={"default": SNUCK_IN}), "editor2", "tweak")
    assert await kb.pending_approval("test-entry") is None  # the edit ended the request
    for number in (requested.number, requested.number + 1):
        with pytest.raises(PublishBlockedError):
            await kb.approve("test-entry", number, "editor2", "looks fine")
    assert await _live_text(kb) is None


async def test_the_approver_cannot_approve_their_own_version(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(answers={"default": SNUCK_IN}), "editor2", "my text")
    await kb.request_approval("test-entry", "editor1")  # asked by someone else
    with pytest.raises(PublishBlockedError, match="second person"):
        await kb.approve("test-entry", 1, "editor2", "approving my own text")
    with pytest.raises(PublishBlockedError, match="second person"):
        await kb.approve("test-entry", 1, "editor1", "approving what I asked for")
    with pytest.raises(PublishBlockedError, match="ask for approval"):
        await kb.publish("test-entry", "editor2", "straight to live")
    assert await _live_text(kb) is None


async def test_history_names_the_real_author_and_approver(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(answers={"default": REVIEWED}), "editor1", "new price")
    await kb.request_approval("test-entry", "editor1")
    published = await kb.approve("test-entry", 1, "editor2", "checked the price")
    assert await _live_text(kb) == REVIEWED
    assert (published.author, published.approved_by) == ("editor1", "editor2")
    assert published.entry.answers == {"default": REVIEWED}
    history = [
        (v.number, v.action, v.author, v.approved_by) for v in await kb.versions("test-entry")
    ]
    assert history == [(1, "save", "editor1", ""), (2, "approve", "editor1", "editor2")]
    with pytest.raises(PublishBlockedError):  # the request was used up
        await kb.approve("test-entry", 1, "editor3", "again")


async def test_rollback_on_an_approval_team_waits_for_approval(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(answers={"default": REVIEWED}), "editor1", "v1")
    await kb.request_approval("test-entry", "editor1")
    await kb.approve("test-entry", 1, "editor2", "ok")  # version 2, live
    await kb.save_draft(
        make_entry(answers={"default": "Newer text, also reviewed."}), "editor1", "v3"
    )
    await kb.request_approval("test-entry", "editor1")
    await kb.approve("test-entry", 3, "editor2", "ok")  # version 4, live
    restored = await kb.rollback("test-entry", 2, "editor3", "the old price was right")
    assert await _live_text(kb) == "Newer text, also reviewed."  # nothing changed for residents
    assert restored.requested_by == "editor3" and restored.entry.status == "draft"
    assert await kb.pending_approval("test-entry") == ("editor3", restored.number)
    with pytest.raises(PublishBlockedError):
        await kb.approve("test-entry", restored.number, "editor3", "self")
    approved = await kb.approve("test-entry", restored.number, "editor1", "agreed")
    assert await _live_text(kb) == REVIEWED
    assert (approved.author, approved.approved_by) == ("editor3", "editor1")
