import asyncio
from datetime import UTC, datetime

import pytest

from bot.knowledge.store import KnowledgeBase
from bot.redis_conn import connect_async
from bot.testing.live import publish_answer, wait_for_answer

from .conftest import MemoEncoder, make_entry


def test_publish_then_wait_sees_the_new_text(
    redis_url: str, namespace: str, encoder: MemoEncoder
) -> None:
    async def server_answer(question: str) -> str:
        client = await connect_async(redis_url)
        try:
            kb = KnowledgeBase(client, namespace, encoder=encoder)
            found = await kb.select("bulky_waste", 0.9, question, "web", datetime.now(UTC))
            return found[0].answer_for("web") if found else ""
        finally:
            await client.close()

    async def seed() -> None:
        client = await connect_async(redis_url)
        try:
            await KnowledgeBase(client, namespace).import_entry(
                make_entry(status="published"), "cli", "seed"
            )
        finally:
            await client.close()

    asyncio.run(seed())
    started = publish_answer(redis_url, namespace, "test-entry", "Sofas go on Tuesdays.")
    seconds = wait_for_answer(
        lambda q: asyncio.run(server_answer(q)), "old sofa", "Tuesdays", since=started
    )
    assert 0 <= seconds <= 5
    with pytest.raises(TimeoutError):
        wait_for_answer(lambda q: "no", "old sofa", "Tuesdays", since=started, timeout=0.1)
