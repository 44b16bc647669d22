"""Handoff benchmark (``make bench-handoff``).

Opens ``--handoffs`` cases over 10 teams, then ``--agents`` concurrent simulated agents (each in
one team) take cases from their team's queue (picking among the most urgent few, so they
collide), claim, reply, and resolve, until the queue is empty or ``--seconds`` pass. Meanwhile
the agent console's queue page (``GET /agent/`` over HTTP, signed in) is rendered repeatedly.

Reports claim latency p50/p99, queue page render p99, double claims (a case two agents both
claimed), lost cases (neither resolved nor still open) and peak RSS.
Writes bench/results/handoff.json. Needs REDIS_URL (or TEST_REDIS_URL); not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from argon2 import PasswordHasher  # noqa: E402

from bot.handoff.queue import HandoffQueue  # noqa: E402
from bot.handoff.record import TEAMS, HandoffRecord  # noqa: E402
from bot.keys import prefix  # noqa: E402
from bot.redis_conn import connect_async  # noqa: E402
from bot.testing.browser import serve  # noqa: E402
from bot.testing.cleanup import delete_keys_async  # noqa: E402
from bot.web.app import ACCOUNTS, SESSIONS, Settings, create_app  # noqa: E402
from bot.web.sessions import SESSION_COOKIE  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "handoff.json"
BENCH_TEAMS = [*TEAMS, "contact_centre"][:10]  # the routed teams plus one: ten
REASONS = ("safeguarding", "complaint", "asked_for_person", "low_confidence")


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(int(share * len(ordered)) - 1, 0)], 2) if ordered else 0.0


def _record(n: int, start: datetime) -> HandoffRecord:
    reason = REASONS[n % len(REASONS)]
    return HandoffRecord(
        conversation_id=f"whatsapp:441234567890:44770{n:07d}",
        channel="whatsapp",
        account="441234567890",
        sender=f"44770{n:07d}",
        reason=reason,
        topic="bin_day",
        priority={"safeguarding": "P1", "low_confidence": "P3"}.get(reason, "P2"),
        team=BENCH_TEAMS[n % len(BENCH_TEAMS)],
        created_at=(start + timedelta(seconds=n)).isoformat(),
        transcript=[{"role": "resident", "text": "my bin was missed", "at": start.isoformat()}],
    )


async def _agent(
    queue: HandoffQueue,
    name: str,
    team: str,
    deadline: float,
    claims_ms: list[float],
    winners: dict[str, list[str]],
    resolved: set[str],
) -> None:
    while time.perf_counter() < deadline:
        candidates = await queue.list_open(team, limit=5)
        if not candidates:
            return
        case = random.choice(candidates)  # several agents pick among the same few: collisions
        started = time.perf_counter()
        claim = await queue.claim(case.case_id, name, lease_seconds=60)
        claims_ms.append((time.perf_counter() - started) * 1000)
        if claim is None:
            continue
        winners.setdefault(case.case_id, []).append(name)
        await queue.append_message(case.conversation_id, "agent", "On its way.")
        if await queue.resolve(case.case_id, name):
            resolved.add(case.case_id)


async def _pages(client: httpx.AsyncClient, done: asyncio.Event, times_ms: list[float]) -> None:
    while not done.is_set():
        started = time.perf_counter()
        response = await client.get("/agent/")
        assert response.status_code == 200, response.status_code
        times_ms.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.05)


async def run(url: str, handoffs: int, agents: int, seconds: float) -> dict[str, object]:
    redis = await connect_async(url)
    namespace = f"bench:{uuid.uuid4().hex[:10]}"
    try:
        queue = HandoffQueue(redis, namespace)
        start = datetime.now(UTC) - timedelta(days=1)
        ids = []
        for offset in range(0, handoffs, 500):
            records = [_record(n, start) for n in range(offset, min(offset + 500, handoffs))]
            ids += await asyncio.gather(*(queue.open(r) for r in records))
        settings = Settings(
            secret_key=secrets.token_bytes(32),
            secure_cookies=False,
            password_hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
        )
        app = create_app(redis, namespace=namespace, settings=settings, sections=("bot.web.agent",))
        await app[ACCOUNTS].create("bench", secrets.token_urlsafe(16), ("agent",), BENCH_TEAMS)
        session = await app[SESSIONS].create("bench")
        claims_ms: list[float] = []
        pages_ms: list[float] = []
        winners: dict[str, list[str]] = {}
        resolved: set[str] = set()
        deadline = time.perf_counter() + seconds
        began = time.perf_counter()
        done = asyncio.Event()

        async def agents_then_stop() -> None:
            await asyncio.gather(
                *(
                    _agent(
                        HandoffQueue(redis, namespace),
                        f"agent{n}",
                        BENCH_TEAMS[n % len(BENCH_TEAMS)],
                        deadline,
                        claims_ms,
                        winners,
                        resolved,
                    )
                    for n in range(agents)
                )
            )
            done.set()

        async with (
            serve(app) as server,
            httpx.AsyncClient(
                base_url=server.base_url, cookies={SESSION_COOKIE: session.sid}
            ) as client,
        ):
            await asyncio.gather(_pages(client, done, pages_ms), agents_then_stop())
        elapsed = time.perf_counter() - began
        still_open = {r.case_id for r in await queue.list_open(limit=handoffs)}
        lost = [c for c in ids if c not in resolved and c not in still_open]
        return {
            "open_handoffs": handoffs,
            "agents": agents,
            "teams": len(BENCH_TEAMS),
            "resolved": len(resolved),
            "still_open": len(still_open),
            "seconds": round(elapsed, 1),
            "claims": len(claims_ms),
            "claim_p50_ms": _pct(claims_ms, 0.5),
            "claim_p99_ms": _pct(claims_ms, 0.99),
            "queue_page_renders": len(pages_ms),
            "queue_page_p99_ms": _pct(pages_ms, 0.99),
            "double_claims": sum(1 for names in winners.values() if len(set(names)) > 1),
            "lost": len(lost),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "machine": f"{os.cpu_count()} CPUs, shared",
        }
    finally:
        await delete_keys_async(redis, prefix(namespace))
        await redis.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--handoffs", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    url = (
        os.environ.get("REDIS_URL")
        or os.environ.get("TEST_REDIS_URL")
        or "redis://127.0.0.1:6379/0"
    )
    results = asyncio.run(run(url, args.handoffs, args.agents, args.seconds))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
