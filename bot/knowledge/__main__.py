"""Command line: ``python -m bot.knowledge import|export [--folder DIR] [--author NAME]``.

``import`` loads the content files into Redis (unchanged entries are skipped; published ones go
live); ``export`` writes every entry's working copy back to the files, so content lives in git.
Redis comes from ``REDIS_URL`` and the namespace from ``COUNCIL_NAMESPACE``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.keys import namespace
from bot.knowledge.content import CONTENT_DIR, dump_entries, load_entries
from bot.knowledge.store import KnowledgeBase
from bot.redis_conn import connect_async

__all__ = ["main", "run"]


async def run(command: str, folder: Path, author: str, url: str | None = None) -> str:
    """Run ``import`` or ``export`` and return a one-line summary."""
    client = await connect_async(url)
    try:
        kb = KnowledgeBase(client, namespace())
        if command == "import":
            entries = load_entries(folder)
            stored = [await kb.import_entry(e, author, f"import from {folder}") for e in entries]
            changed = sum(1 for v in stored if v is not None)
            return f"imported {len(entries)} entries from {folder} ({changed} changed)"
        heads = await kb.heads()
        files = dump_entries([v.entry for v in heads], folder)
        return f"exported {len(heads)} entries to {len(files)} files under {folder}"
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the command."""
    parser = argparse.ArgumentParser(prog="python -m bot.knowledge", description=__doc__)
    parser.add_argument("command", choices=["import", "export"])
    parser.add_argument("--folder", type=Path, default=CONTENT_DIR)
    parser.add_argument("--author", default="cli")
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.command, args.folder, args.author)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
