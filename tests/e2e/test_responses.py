"""An editor's published reply reaches residents through the real Rasa server, and goes away."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.profile import current
from bot.redis_conn import connect_async
from bot.response_edits import ResponseStore, ResponseText
from bot.testing.assistant import Assistant
from bot.testing.live import wait_for_answer

pytestmark = pytest.mark.e2e

GREET = "utter_greet"


async def _change(assistant: Assistant, text: str | None) -> float:
    """Publish ``text`` for the English greeting (None: back to the shipped text)."""
    client = await connect_async(assistant.redis_url)
    try:
        store = ResponseStore(client, assistant.namespace)
        if text is None:
            await store.archive(GREET, "e2e", "shipped text again")
        else:
            await store.save_draft(ResponseText(GREET, text, "core"), "e2e", "end-to-end check")
            await store.publish(GREET, "e2e", "end-to-end check")
        return time.monotonic()
    finally:
        await client.close()


def test_a_published_reply_is_sent_within_five_seconds_and_the_shipped_one_after(
    assistant: Assistant,
) -> None:
    def ask(text: str) -> str:
        return assistant.conversation().texts(text)

    marker = f"Good day {time.time_ns()} from "
    since = asyncio.run(_change(assistant, marker + "{council_name}."))
    try:
        seconds = wait_for_answer(ask, "hiya", marker + current().name, since=since)
        assert seconds <= 5.0
    finally:
        # the assistant is shared by the session: later tests expect the shipped greeting
        since = asyncio.run(_change(assistant, None))
        wait_for_answer(ask, "hiya", f"this is {current().name}'s assistant", since=since)
