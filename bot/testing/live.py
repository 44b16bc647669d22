"""End-to-end test helpers: a published answer reaches residents without retraining.

The end-to-end test (with the real Rasa and action servers) does::

    started = publish_answer(redis_url, namespace, "report-pothole", new_text)
    seconds = wait_for_answer(lambda q: assistant.conversation().texts(q),
                              "there's a pothole on my road", new_text, since=started)
    assert seconds <= 5
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from bot.knowledge.store import KnowledgeBase
from bot.redis_conn import connect_async

__all__ = ["current_answer", "publish_answer", "wait_for_answer"]


async def _publish(
    url: str, namespace: str, entry_id: str, text: str, channel: str, author: str
) -> float:
    client = await connect_async(url)
    try:
        kb = KnowledgeBase(client, namespace)
        entry = await kb.get(entry_id)
        edited = replace(entry, answers=entry.answers | {channel: text})
        await kb.save_draft(edited, author, "end-to-end check")
        # the gate needs the model; this helper only checks that publishing goes live
        await kb.publish(entry_id, author, "end-to-end check")
        return time.monotonic()
    finally:
        await client.close()


async def _answer(url: str, namespace: str, entry_id: str, channel: str) -> str:
    client = await connect_async(url)
    try:
        entry = await KnowledgeBase(client, namespace).get(entry_id)
        return entry.answers.get(channel) or entry.answers["default"]
    finally:
        await client.close()


def current_answer(redis_url: str, namespace: str, entry_id: str, channel: str = "default") -> str:
    """The text of one variant of an entry as stored now (to put it back after a test)."""
    return asyncio.run(_answer(redis_url, namespace, entry_id, channel))


def publish_answer(
    redis_url: str,
    namespace: str,
    entry_id: str,
    text: str,
    *,
    channel: str = "default",
    author: str = "e2e",
) -> float:
    """Change one variant of an entry and publish it; return the monotonic time of the publish.

    Raises:
        EntryNotFoundError: No such entry in ``namespace``.
        EntryInvalidError: The new text is not a valid answer.
    """
    return asyncio.run(_publish(redis_url, namespace, entry_id, text, channel, author))


def wait_for_answer(
    ask: Callable[[str], str],
    question: str,
    expected: str,
    *,
    since: float,
    timeout: float = 5.0,
    interval: float = 0.2,
) -> float:
    """Ask ``question`` until the answer contains ``expected``; return seconds since ``since``.

    Raises:
        TimeoutError: The answer did not change within ``timeout`` seconds of ``since``.
    """
    while True:
        answer = ask(question)
        elapsed = time.monotonic() - since
        if expected in answer:
            return elapsed
        if elapsed > timeout:
            raise TimeoutError(f"{question!r} still answered {answer!r} after {elapsed:.1f} s")
        time.sleep(interval)
