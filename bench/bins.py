"""Lookup latency over the demo borough, for the benchmark scripts.

``python -m bot.bins.bench [n]`` loads the demo into a throw-away namespace of ``REDIS_URL``,
times ``n`` resident lookups (postcode -> addresses -> next collections) and prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import date
from pathlib import Path

from bot.bins.csv_source import read_schedule
from bot.bins.demo import DEMO_DIR, DEMO_FILES
from bot.bins.load import load_files
from bot.bins.store import BinStore, PostcodeStatus
from bot.redis_conn import connect, connect_async, redis_url

__all__ = ["lookup_benchmark", "main"]


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
    url = url or redis_url()
    namespace = f"bench:{uuid.uuid4().hex[:10]}"
    paths = [DEMO_DIR / DEMO_FILES[kind] for kind in ("addresses", "rounds", "holidays")]
    source, _ = read_schedule(*paths)
    postcodes = sorted({a.postcode for a in source.all_addresses() if a.rounds})
    rng = random.Random(seed)  # noqa: S311 (sampling, not security)
    sample = [rng.choice(postcodes) for _ in range(n)]
    client = connect(url)
    try:
        load_files(client, namespace, *paths)
        timings = asyncio.run(_time_lookups(url, namespace, sample, date(2026, 11, 23)))
    finally:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
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
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    figures = json.dumps(lookup_benchmark(args.n), indent=2)
    print(figures)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(figures + "\n")


if __name__ == "__main__":
    main()
