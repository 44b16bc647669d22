import asyncio
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.errors import EntryInvalidError, EntryNotFoundError, PublishBlockedError
from bot.knowledge.model import Entry
from bot.knowledge.store import KnowledgeBase
from bot.redis_conn import connect_async

from .conftest import MemoEncoder, make_entry

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SOFA = "Can you take away my old sofa?"


async def test_draft_is_not_served_until_published(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(), "ed", "new entry")
    assert await kb.live("test-entry") is None
    assert await kb.select("bulky_waste", 0.9, SOFA, "web", NOW) is None
    await kb.publish("test-entry", "ed", "ready")
    found = await kb.select("bulky_waste", 0.9, SOFA, "web", NOW)
    assert found is not None and found[0].id == "test-entry" and found[1] == 0.9


async def test_history_records_who_when_what_why(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(), "alice", "first draft")
    await kb.publish("test-entry", "bob", "checked")
    edited = make_entry(answers={"default": "We collect sofas for £35."})
    await kb.save_draft(edited, "carol", "new price")
    history = await kb.versions("test-entry")
    assert [(v.number, v.author, v.action, v.reason) for v in history] == [
        (1, "alice", "save", "first draft"),
        (2, "bob", "publish", "checked"),
        (3, "carol", "save", "new price"),
    ]
    assert history[2].changes == ("answers", "status")
    assert history[1].at.tzinfo is not None
    # the published text stays live while the new draft waits
    live = await kb.live("test-entry")
    assert live is not None and "sofas:" in live.answers["default"]
    assert (await kb.get("test-entry")).status == "draft"


async def test_rollback_republishes_old_content(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(), "ed", "v1")
    await kb.publish("test-entry", "ed", "v1 live")
    await kb.save_draft(make_entry(answers={"default": "Wrong text"}), "ed", "v3")
    await kb.publish("test-entry", "ed", "v3 live")
    assert (await kb.live("test-entry")).answers["default"] == "Wrong text"  # type: ignore[union-attr]
    version = await kb.rollback("test-entry", 2, "ed", "mistake")
    assert version.number == 5 and version.action == "rollback"
    live = await kb.live("test-entry")
    assert live is not None and live.answers["default"].startswith("We collect sofas")
    with pytest.raises(EntryNotFoundError):
        await kb.rollback("test-entry", 99, "ed", "no such version")


async def test_archive_withdraws(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(), "ed", "v1")
    await kb.publish("test-entry", "ed", "live")
    await kb.archive("test-entry", "ed", "service ended")
    assert await kb.live("test-entry") is None
    assert await kb.select("bulky_waste", 0.9, SOFA, "web", NOW) is None


async def test_expiry_and_publish_from(kb: KnowledgeBase) -> None:
    entry = make_entry(publish_from=NOW + timedelta(hours=1), expire_at=NOW + timedelta(hours=2))
    await kb.save_draft(entry, "ed", "timed")
    await kb.publish("test-entry", "ed", "timed")
    assert await kb.select("bulky_waste", 0.9, SOFA, "web", NOW) is None
    assert await kb.select("bulky_waste", 0.9, SOFA, "web", NOW + timedelta(minutes=61))
    assert await kb.select("bulky_waste", 0.9, SOFA, "web", NOW + timedelta(hours=2)) is None


async def test_invalid_edit_is_refused_and_draft_kept(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry(), "ed", "v1")
    broken = make_entry(answers={"default": "", "sms": "see https//ashvale.gov.uk"})
    with pytest.raises(EntryInvalidError) as caught:
        await kb.save_draft(broken, "ed", "oops")
    assert caught.value.entry_id == "test-entry"
    assert any("must not be empty" in p for p in caught.value.problems)
    assert any("not a valid web address" in p for p in caught.value.problems)
    assert (await kb.get("test-entry")).answers["default"].startswith("We collect")
    assert len(await kb.versions("test-entry")) == 1


async def test_missing_entry(kb: KnowledgeBase) -> None:
    with pytest.raises(EntryNotFoundError):
        await kb.get("nope")
    with pytest.raises(EntryNotFoundError):
        await kb.versions("nope")


async def test_search_and_review_dates(kb: KnowledgeBase) -> None:
    await kb.save_draft(make_entry("old-one", review_by=date(2026, 1, 1)), "ed", "x")
    await kb.save_draft(make_entry("new-one", questions=("Fridge pickup?",)), "ed", "x")
    assert [v.entry.id for v in await kb.search("fridge")] == ["new-one"]
    assert [v.entry.id for v in await kb.search("", status="draft")] == ["new-one", "old-one"]
    assert [e.id for e in await kb.due_for_review(date(2026, 11, 23))] == ["old-one"]


async def test_second_person_approval(kb: KnowledgeBase) -> None:
    await kb.set_approval_required("Waste and Recycling", True)
    await kb.save_draft(make_entry(), "alice", "v1")
    with pytest.raises(PublishBlockedError):
        await kb.publish("test-entry", "alice", "self publish")
    await kb.request_approval("test-entry", "alice")
    assert await kb.pending_approval("test-entry") == ("alice", 1)
    with pytest.raises(PublishBlockedError):
        await kb.approve("test-entry", 1, "alice", "approve own")
    version = await kb.approve("test-entry", 1, "bob", "ok")
    assert "approved by bob" in version.reason
    assert (version.author, version.approved_by, version.action) == ("alice", "bob", "approve")
    assert await kb.pending_approval("test-entry") is None


async def test_import_skips_unchanged(kb: KnowledgeBase) -> None:
    entry = make_entry(status="published")
    assert await kb.import_entry(entry, "cli", "import") is not None
    assert await kb.import_entry(entry, "cli", "import") is None
    assert await kb.live("test-entry") == entry


async def test_publish_is_live_on_another_server_within_5_seconds(
    redis_url: str, namespace: str, encoder: MemoEncoder, demo_entries: list[Entry]
) -> None:
    """Two processes' worth of state: each KnowledgeBase has its own client and index."""
    editor_side, bot_side = await connect_async(redis_url), await connect_async(redis_url)
    try:
        editor = KnowledgeBase(editor_side, namespace, encoder=encoder)
        server = KnowledgeBase(bot_side, namespace, encoder=encoder)  # default 1 s refresh
        for entry in demo_entries:
            await editor.import_entry(entry, "cli", "demo")
        now = datetime.now(UTC)
        question = "I'm the only adult at home, is there a discount?"
        before = await server.select("council_tax_discount", 0.9, question, "sms", now)
        assert before is not None and "25% off" in before[0].answer_for("sms")

        current = await editor.get("council-tax-single-person-discount")
        new_sms = "Live alone? Get 25% off: https://www.ashvale.gov.uk/council-tax/spd"
        await editor.save_draft(
            Entry.from_dict(current.to_dict() | {"answers": current.answers | {"sms": new_sms}}),
            "ed",
            "shorter link",
        )
        await editor.publish("council-tax-single-person-discount", "ed", "go")
        started = time.monotonic()
        while True:
            found = await server.select("council_tax_discount", 0.9, question, "sms", now)
            if found and found[0].answer_for("sms") == new_sms:
                break
            assert time.monotonic() - started < 5, "publish not live within 5 s"
            await asyncio.sleep(0.1)
    finally:
        await editor_side.close()
        await bot_side.close()
