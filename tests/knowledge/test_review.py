"""The review queue's store: redacted candidates, decisions, and the training data they make."""

from pathlib import Path

import pytest
import redis.asyncio
from rasa.shared.nlu.training_data.loading import load_data

from bot.knowledge.review import Candidate, CandidateNotFoundError, ReviewQueue, training_yaml

SENDER = "sms:+441632960000:+447700900123"


@pytest.fixture
def queue(async_redis: redis.asyncio.Redis, namespace: str) -> ReviewQueue:
    return ReviewQueue(async_redis, namespace)


async def test_candidates_are_redacted_and_kept_once(queue: ReviewQueue) -> None:
    chosen = await queue.record_choice(SENDER, "I'm Priya, bins at 4 Mill Lane AV1 2BX", "t", "e")
    assert chosen is not None
    assert "Priya" not in chosen.text and "Mill Lane" not in chosen.text
    assert "AV1 2BX" not in chosen.text
    assert await queue.record_choice(SENDER, "   ", "t", "e") is None  # nothing to learn
    again = Candidate(id=chosen.id, text="other", source="clarification")
    assert not await queue.add(again)
    assert [c.id for c in await queue.pending()] == [chosen.id]
    assert [c.id for c in await queue.of_conversation(SENDER)] == [chosen.id]


async def test_decisions_move_candidates_and_make_training_examples(queue: ReviewQueue) -> None:
    texts = ["jobs at the council?", "Jobs at  the council?", "jobs at the council?", "hi"]
    ids = []
    for text in texts:
        chosen = await queue.record_choice(SENDER, text, "t", "")
        assert chosen is not None
        ids.append(chosen.id)
    await queue.decide(ids[0], "out_of_scope", "ed")
    await queue.decide(ids[1], "out_of_scope", "ed")
    await queue.decide(ids[2], "rejected", "ed")
    done = await queue.decide(ids[3], "intent", "ed", intent="greet")
    assert (done.label, done.intent, done.decided_by) == ("intent", "greet", "ed")
    assert await queue.pending() == []
    assert len(await queue.decided()) == 4
    assert await queue.training_examples() == {
        "greet": ["hi"],
        "out_of_scope": ["Jobs at the council?", "jobs at the council?"],
    }
    with pytest.raises(CandidateNotFoundError):
        await queue.decide(ids[0], "rejected", "ed")  # decided already


async def test_a_decision_needs_what_it_names(queue: ReviewQueue) -> None:
    chosen = await queue.record_choice(SENDER, "allotments", "t", "")
    assert chosen is not None
    for label in ("maybe", "intent", "kb_question"):
        with pytest.raises(ValueError):
            await queue.decide(chosen.id, label, "ed")
    assert [c.id for c in await queue.pending()] == [chosen.id]


def test_training_yaml_is_what_rasa_reads(tmp_path: Path) -> None:
    path = tmp_path / "reviewed.yml"
    path.write_text(
        training_yaml({"out_of_scope": ["can i rent an allotment near [postcode]", "jobs: any?"]})
    )
    data = load_data(str(path))
    assert sorted(m.get("text") for m in data.training_examples) == [
        "can i rent an allotment near [postcode]",
        "jobs: any?",
    ]
    assert {m.get("intent") for m in data.training_examples} == {"out_of_scope"}
    path.write_text(training_yaml({}))
    assert load_data(str(path)).training_examples == []
