from pathlib import Path

import pytest

from bot.errors import ConfigError, PublishBlockedError
from bot.knowledge.content import CONTENT_DIR, load_entries
from bot.knowledge.gate import DEFAULT_CONVERSATIONS, load_conversations
from bot.knowledge.model import Entry
from bot.knowledge.store import KnowledgeBase

from .conftest import ROOT, make_entry

CONVERSATIONS = ROOT / "responses" / "knowledge" / "gate"


@pytest.fixture
async def gated(demo_kb: KnowledgeBase) -> KnowledgeBase:
    demo_kb.conversations = load_conversations(CONVERSATIONS)
    return demo_kb


def test_conversation_files_load() -> None:
    conversations = load_conversations(CONVERSATIONS)
    assert len(conversations) >= 5
    turns = [t for c in conversations for t in c.turns]
    assert any(t.expect_entry == "none" for t in turns)
    assert any(t.intent for t in turns) and any(not t.intent for t in turns)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("conversations: {}", "conversations"),
        (
            "conversations:\n  - name: x\n    turns: [{user: hi}]",
            "conversations[0].turns[0].expect_entry",
        ),
        (
            "conversations:\n  - name: x\n    turns: [{expect_entry: a}]",
            "conversations[0].turns[0].user",
        ),
        ("conversations: [", ""),
    ],
)
def test_bad_conversation_file_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "bad.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_conversations(tmp_path)
    assert caught.value.path.endswith("bad.yml")
    assert caught.value.key == key


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_conversations(tmp_path / "nowhere")


async def test_demo_content_passes_every_conversation(gated: KnowledgeBase) -> None:
    entry = await gated.get("report-pothole")
    report = await gated.regression(entry)
    assert report.ok, report.broken
    assert report.changes == ()
    assert report.checked > 80


async def test_greedy_entry_is_shown_and_blocked(gated: KnowledgeBase) -> None:
    greedy = make_entry(
        "street-problems",
        topic="report_street_light",
        questions=("the lamp post on my street is flickering", "there's a huge crater in the road"),
        answers={"default": "Report street problems at https://www.ashvale.gov.uk/report"},
        owner_team="Highways",
    )
    await gated.save_draft(greedy, "ed", "one page for everything")
    report = await gated.regression(await gated.get("street-problems"))
    moved = {(c.question, c.before, c.after) for c in report.changes}
    assert (
        "the lamp post on my street is flickering",
        "report-street-light",
        "street-problems",
    ) in moved
    assert any("expects report-street-light, would get street-problems" in b for b in report.broken)
    with pytest.raises(PublishBlockedError) as caught:
        await gated.publish("street-problems", "ed", "go")
    assert caught.value.broken == list(report.broken)
    assert await gated.live("street-problems") is None
    # an admin may accept the change; the version records who did
    version = await gated.publish("street-problems", "ed", "go", override_by="root")
    assert version.override_by == "root"
    assert await gated.live("street-problems") is not None


async def test_expected_text_is_checked(gated: KnowledgeBase) -> None:
    current = await gated.get("council-tax-single-person-discount")
    answers = current.answers | {"whatsapp": "Only adult at home? Apply for a discount."}
    edited = Entry.from_dict(current.to_dict() | {"answers": answers})
    report = await gated.regression(edited)
    assert report.changes == ()
    assert any("no longer contains '25%'" in b for b in report.broken)


async def test_archiving_an_expected_entry_breaks(gated: KnowledgeBase) -> None:
    entry = (await gated.get("report-fly-tipping")).with_status("archived")
    report = await gated.regression(entry)
    assert any("expects report-fly-tipping, would get none" in b for b in report.broken)


def test_shipped_conversations_check_shipped_entries() -> None:
    shipped = {entry.id for entry in load_entries(ROOT / "responses" / "knowledge")}
    expected = {t.expect_entry for c in load_conversations() for t in c.turns}
    assert expected - {"none"} <= shipped
    assert DEFAULT_CONVERSATIONS.is_relative_to(ROOT / "responses")


async def test_the_gate_runs_from_any_working_directory(
    demo_kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a service started from elsewhere (systemd, a container)
    demo_kb.conversations = load_conversations()
    report = await demo_kb.regression(await demo_kb.get("report-pothole"))
    assert report.ok, report.broken
    assert len(demo_kb.conversations) >= 5


def test_the_content_is_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # `python -m bot.run` seeds the demo from CONTENT_DIR
    assert len(load_entries(CONTENT_DIR)) > 20
    assert DEFAULT_CONVERSATIONS.parent == CONTENT_DIR
