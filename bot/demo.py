"""Seed a Redis namespace with the demo council: bin schedules and knowledge-base content.

Used by the launcher (``make run``) and the end-to-end tests. Both steps are idempotent: the
schedule is replaced as a whole and unchanged knowledge-base entries are left as they are.
"""

from __future__ import annotations

import asyncio

from bot.bins.demo import DEMO_DIR, DEMO_FILES
from bot.bins.load import load_files
from bot.knowledge.content import CONTENT_DIR, load_entries
from bot.knowledge.store import KnowledgeBase
from bot.redis_conn import connect, connect_async

__all__ = ["seed"]


async def _import_knowledge(redis_url: str, namespace: str) -> int:
    client = await connect_async(redis_url)
    try:
        kb = KnowledgeBase(client, namespace)
        entries = load_entries(CONTENT_DIR)
        for entry in entries:
            await kb.import_entry(entry, "demo", f"import from {CONTENT_DIR.name}")
        return len(entries)
    finally:
        await client.close()


def seed(redis_url: str, namespace: str) -> str:
    """Load the demo borough's schedules and the knowledge base; return a summary line.

    Raises:
        ConfigError: A demo file cannot be read.
    """
    client = connect(redis_url)
    try:
        result = load_files(
            client,
            namespace,
            DEMO_DIR / DEMO_FILES["addresses"],
            DEMO_DIR / DEMO_FILES["rounds"],
            DEMO_DIR / DEMO_FILES["holidays"],
        )
    finally:
        client.close()
    entries = asyncio.run(_import_knowledge(redis_url, namespace))
    return f"demo council: {result.loaded} addresses, {entries} knowledge-base entries"
