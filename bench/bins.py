"""Bin lookup benchmark: latency over the demo borough.

``python bench/bins.py [n]`` loads the demo into a throw-away namespace of ``REDIS_URL``, times
``n`` resident lookups (postcode -> addresses -> next collections), prints JSON and writes it
to bench/results/bins_lookup.json (or ``--out``). ``bench/knowledge.py`` reports its p99 too.
Needs REDIS_URL (or TEST_REDIS_URL); not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.bins.csv_source import read_schedule  # noqa: E402
from bot.bins.demo import DEMO_DIR, DEMO_FILES  # noqa: E402
from bot.bins.load import load_files  # noqa: E402
from bot.bins.store import BinStore, PostcodeStatus  # noqa: E402
from bot.keys import prefix  # noqa: E402
from bot.redis_conn import connect, connect_async  # noqa: E402
from bot.testing.cleanup import delete_keys  # noqa: E402

__all__ = ["lookup_benchmark", "main"]

RESULTS = ROOT / "bench" / "results" / "bins_lookup.json"


async def _time_lookups(url: str, namespace: str, postcodes: list[str], today: date) -> list[float]:
    client = await connect_async(url)
    store = BinStore(client, namespace)
    timings = []
    try:
        for postcode in postcodes:
            began = time.perf_counter()
            found = await store.lookup(postcode)
            if found.status is not PostcodeStatus.FOUND:
                raise RuntimeError(f"demo data not loaded: {postcode} is {found.status.value}")
            uprn = found.addresses[len(found.addresses) // 2].uprn
            source = await store.schedule(uprn)
            if source is None or not source.next_collections(uprn, today):
                raise RuntimeError(f"no schedule for {uprn}")
            timings.append((time.perf_counter() - began) * 1000)
    finally:
        await client.close()
    return timings


def lookup_benchmark(n: int = 2000, url: str | None = None, seed: int = 7) -> dict[str, float]:
    """Time ``n`` full lookups over the demo dataset; figures in milliseconds.

    Each lookup is what the bot does for one resident: the postcode's addresses, then one
    address's schedule and its next collection of every bin. Call it outside an event loop.
    """
    url = (
        url
        or os.environ.get("REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    namespace = f"bench:{uuid.uuid4().hex[:10]}"
    paths = [DEMO_DIR / DEMO_FILES[kind] for kind in ("addresses", "rounds", "holidays")]
    source, _ = read_schedule(*paths)
    postcodes = sorted({a.postcode for a in source.all_addresses() if a.rounds})
    rng = random.Random(seed)
    sample = [rng.choice(postcodes) for _ in range(n)]
    client = connect(url)
    try:
        load_files(client, namespace, *paths)
        timings = asyncio.run(_time_lookups(url, namespace, sample, date(2026, 11, 23)))
    finally:
        delete_keys(client, prefix(namespace))
        client.close()
    cuts = statistics.quantiles(timings, n=100)
    return {
        "n": float(len(timings)),
        "mean_ms": statistics.fmean(timings),
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": max(timings),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: print the figures as JSON (and save them with ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    figures = json.dumps(lookup_benchmark(args.n), indent=2)
    print(figures)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(figures + "\n")


if __name__ == "__main__":
    main()
