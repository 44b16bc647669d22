"""Fixtures of the knowledge-base tests: the real embedding model, loaded once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import redis.asyncio

from bot.knowledge.content import load_entries
from bot.knowledge.embedding import CachingEncoder, default_encoder
from bot.knowledge.model import Entry
from bot.knowledge.store import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]


class MemoEncoder:
    """The real model behind a session-wide cache; records the texts each test asked for."""

    def __init__(self, cached: CachingEncoder) -> None:
        self.cached = cached
        self.calls: list[str] = []

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.calls.extend(texts)
        return self.cached.encode(texts)


@pytest.fixture(scope="session")
def cached_encoder() -> CachingEncoder:
    return CachingEncoder(default_encoder(str(ROOT / "config.yml")))


@pytest.fixture
def encoder(cached_encoder: CachingEncoder) -> MemoEncoder:
    return MemoEncoder(cached_encoder)


@pytest.fixture(scope="session")
def demo_entries() -> list[Entry]:
    return load_entries(ROOT / "responses" / "knowledge")


@pytest.fixture
def kb(async_redis: redis.asyncio.Redis, namespace: str, encoder: MemoEncoder) -> KnowledgeBase:
    return KnowledgeBase(async_redis, namespace, encoder=encoder, refresh_seconds=0)


@pytest.fixture
async def demo_kb(kb: KnowledgeBase, demo_entries: list[Entry]) -> KnowledgeBase:
    for entry in demo_entries:
        await kb.import_entry(entry, "tester", "demo content")
    return kb


def make_entry(entry_id: str = "test-entry", **changes: object) -> Entry:
    """An entry that passes validation, with some fields changed."""
    fields: dict[str, object] = {
        "id": entry_id,
        "topic": "bulky_waste",
        "questions": ("Can you take away my old sofa?",),
        "answers": {"default": "We collect sofas: https://www.ashvale.gov.uk/bulky-waste"},
        "owner_team": "Waste and Recycling",
        "review_by": date(2027, 1, 31),
    }
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]
