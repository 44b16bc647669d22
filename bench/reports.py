"""Problem reports benchmark (``make bench-reports``): confirmed reports to the back office and
status changes back, through failures and an outage.

Two sides run at once, each against its own Open311 stand-in (``bot.testing.open311``, a
thread with its own event loop) with the same faults: 5% of submissions answered 500 once
before the request is created and 5% once *after* it was created (10% failing once; the
second kind is ambiguous), and every call answered 503 for ``--outage`` seconds in the middle.

* ``ours``: each confirmed report is queued in the reports' outbox (``ReportOutbox``) and
  delivered by a ``ReportWorker`` (scheduled retries, marker lookup before any re-POST, the
  reference told through ``{ns}:outbox``). Then ``--changes`` status changes are made at the
  stand-in; the ``UpdatePoller`` (every ``--poll`` s) and, for half of them, the edge's push
  route (``POST /reports/updates`` through the real edge app, then ``PushedUpdates``) both see
  them; each resident must be told once per change.
* ``baseline``: what a form handler without an outbox does: POST at confirmation and, on any
  failure, POST once more at once; the reference is "told" when a POST succeeds. Updates: the
  poller and the push each tell the resident on their own (no shared marker).

Load: ``--reports`` reports from as many residents, open-loop over ``--seconds``, each with a
photo (a small JPEG stored in a local photo folder and an expiring signed ``media_url``).

Figures per side: ``submitted``, ``lost`` (confirmed, never at the back office), ``duplicates``
(requests beyond one per report at the back office), ``submit_p50_s``/``submit_p99_s`` (from
confirmation to the reference queued for the resident) outside the outage and
``submit_p99_outage_s`` for reports confirmed during it, ``updates_delivered`` and
``update_duplicates`` (messages beyond one per resident and change), ``update_p99_s``.
"During the outage" counts the reports confirmed from 5 s before it began (their first
retries meet it) to its end; ``submit_p99_all_s`` is over every report.
Prints both sides side by side and writes ``bench/results/reports.json``. ``--short`` is a
one-minute run (100 reports, 10 s outage, 50 changes). Needs REDIS_URL or TEST_REDIS_URL
(else starts the bundled Valkey).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis.asyncio  # noqa: E402
from PIL import Image  # noqa: E402

from bot.channels.inbox import Inbox  # noqa: E402
from bot.channels.window import touch  # noqa: E402
from bot.edge.app import create_app  # noqa: E402
from bot.keys import key, prefix  # noqa: E402
from bot.profile import current  # noqa: E402
from bot.redis_conn import start_embedded  # noqa: E402
from bot.reports.backoffice import Open311BackOffice  # noqa: E402
from bot.reports.cases import ReportCases  # noqa: E402
from bot.reports.media import MediaUrls, new_name  # noqa: E402
from bot.reports.model import ProblemReport  # noqa: E402
from bot.reports.notify import ResidentNotifier, Wording  # noqa: E402
from bot.reports.open311 import Open311Client  # noqa: E402
from bot.reports.outbox import ReportOutbox, ReportWorker  # noqa: E402
from bot.reports.photos import LocalPhotoStore  # noqa: E402
from bot.reports.store import ReportStore  # noqa: E402
from bot.reports.updates import PushedUpdates, ReportUpdates, UpdatePoller  # noqa: E402
from bot.reports.updates_edge import UpdatesPart  # noqa: E402
from bot.services import free_port  # noqa: E402
from bot.testing.cleanup import delete_keys_async  # noqa: E402
from bot.testing.open311 import Open311StandIn, StandInThread  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "reports.json"
SECRET = "b" * 40
_NEAR = 5.0  # a report confirmed this close before the outage meets it on its first retries


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(out, "JPEG", quality=80)
    return out.getvalue()


class Side:
    """One side's stand-in, its confirmations and what its resident was told."""

    def __init__(self, name: str, args: argparse.Namespace, start: float) -> None:
        self.name = name
        self.standin = Open311StandIn()
        self.standin.faults.fail_once_ratio = 0.05
        self.standin.faults.fail_after_create_ratio = 0.05
        self.thread = StandInThread(self.standin)
        self.url = self.thread.start()
        self.confirmed: dict[str, float] = {}  # report id -> confirmation time
        self.told: dict[str, float] = {}  # report id -> reference told (baseline)
        self.outage = (start + args.seconds / 2 - args.outage / 2, args.outage)

    def schedule_outage(self) -> None:
        at, seconds = self.outage
        self.standin.faults.down_until = 0.0

        def down() -> None:
            self.standin.faults.down_until = at + seconds

        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, at - time.time()), down)

    def in_outage(self, moment: float) -> bool:
        at, seconds = self.outage
        return bool(at - _NEAR <= moment <= at + seconds)

    def duplicates(self) -> int:
        counts = Counter(
            line for r in self.standin.requests.values() for line in r.description.splitlines()
            if line.startswith("Ref: ")
        )  # fmt: skip
        return sum(n - 1 for n in counts.values())

    def at_back_office(self) -> set[str]:
        return {
            line[len("Ref: ") :]
            for r in self.standin.requests.values()
            for line in r.description.splitlines()
            if line.startswith("Ref: ")
        }


def _report(n: int, photo_url: str, at: float) -> ProblemReport:
    return ProblemReport(
        report_id=f"bench-{n:05d}",
        conversation_id=f"whatsapp:+441632960000:+4477{n:08d}",
        channel="whatsapp",
        account="+441632960000",
        sender=f"+4477{n:08d}",
        service_code=("001", "002", "003")[n % 3],
        service_name=("Pothole", "Street light not working", "Fly-tipping")[n % 3],
        description=f"Reported in the benchmark, number {n}",
        created_at=at,
        lat=52.15 + (n % 100) * 0.0005,
        long=-1.5 + (n // 100) * 0.0005,
        attributes=(
            {"size": "large"},
            {"column_number": str(n)},
            {"waste_type": "household", "amount": "bag"},
        )[n % 3],
        media_url=photo_url,
    )


async def _load(
    args: argparse.Namespace, start: float, send: Any, photos: LocalPhotoStore, urls: MediaUrls
) -> None:
    data = _photo()
    sending: set[asyncio.Task[None]] = set()
    for n in range(args.reports):
        due = start + n * args.seconds / args.reports
        await asyncio.sleep(max(0.0, due - time.time()))
        name = new_name("jpg")
        await photos.put(name, data, "image/jpeg")
        task = asyncio.get_running_loop().create_task(send(_report(n, urls.url(name), time.time())))
        sending.add(task)
        task.add_done_callback(sending.discard)
    await asyncio.gather(*sending)


async def _baseline_submit(side: Side, client: Open311Client, report: ProblemReport) -> None:
    side.confirmed[report.report_id] = report.created_at
    for _ in range(2):  # one retry at once, as a form handler would
        try:
            await client.submit(report)
        except Exception:
            continue
        side.told[report.report_id] = time.time()
        return


async def _told_times(client: redis.asyncio.Redis, namespace: str) -> dict[str, list[float]]:
    """Recipient -> times of the messages queued for them (stream ids are milliseconds)."""
    found: dict[str, list[float]] = {}
    rows: Any = await client.xrange(key(namespace, "outbox"))
    for entry_id, fields in rows:
        found.setdefault(fields["recipient"], []).append(int(entry_id.split("-")[0]) / 1000)
    return found


async def run(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    client = redis.asyncio.from_url(redis_url, decode_responses=True)
    namespace = f"bench-reports-{int(time.time())}"
    profile = current()
    wording = Wording(profile)
    start = time.time() + 3
    ours, base = Side("ours", args, start), Side("baseline", args, start)
    folder = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    photos, urls = LocalPhotoStore(folder), MediaUrls("m" * 40, "https://edge.example")
    notifier = ResidentNotifier(client, namespace, wording)
    ours_client = Open311Client(ours.url, timeout=5.0)
    store = ReportStore(client, namespace)
    worker = ReportWorker(
        client, Open311BackOffice(ours_client, store), notifier,
        ReportCases(client, namespace, profile), namespace, block_ms=200,
    )  # fmt: skip
    outbox = ReportOutbox(client, namespace)
    base_client = Open311Client(base.url, timeout=5.0)
    stop = asyncio.Event()
    await worker.ensure_group()
    working = asyncio.create_task(worker.run(stop))

    async def ours_send(report: ProblemReport) -> None:
        ours.confirmed[report.report_id] = report.created_at
        # the resident has just confirmed in the chat: their WhatsApp window is open
        await touch(client, report.conversation_id, time.time(), namespace)
        await outbox.enqueue(report)

    async def base_send(report: ProblemReport) -> None:
        await _baseline_submit(base, base_client, report)

    ours.schedule_outage()
    base.schedule_outage()
    print(f"submitting {args.reports} reports over {args.seconds:g} s ...", flush=True)
    await asyncio.gather(
        _load(args, start, ours_send, photos, urls), _load(args, start, base_send, photos, urls)
    )
    deadline = time.time() + args.drain
    while time.time() < deadline:
        done = await client.xlen(worker.stream) == 0 and len(ours.confirmed) == args.reports
        if done and len(base.confirmed) == args.reports:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(2)

    results: dict[str, Any] = {}
    told = await _told_times(client, namespace)
    for side in (ours, base):
        arrived = side.at_back_office()
        figures: dict[str, Any] = {
            "reports": len(side.confirmed),
            "submitted": len(arrived & set(side.confirmed)),
            "lost": len(set(side.confirmed) - arrived),
            "duplicates": side.duplicates(),
        }
        waits: list[float] = []
        slow: list[tuple[float, float]] = []  # (wait, confirmed relative to the outage)
        outage_waits: list[float] = []
        for report_id, at in side.confirmed.items():
            if side is ours:
                sender = _report(int(report_id.split("-")[1]), "", 0).sender
                moments = told.get(sender)
                moment = moments[0] if moments else None
            else:
                moment = side.told.get(report_id)
            if moment is None:
                continue
            (outage_waits if side.in_outage(at) else waits).append(moment - at)
            if not side.in_outage(at):
                slow.append((round(moment - at, 2), round(at - side.outage[0], 1)))
        figures |= {
            "submit_p50_s": _p(waits, 0.5),
            "submit_p99_s": _p(waits, 0.99),
            "submit_p99_outage_s": _p(outage_waits, 0.99),
            "submit_p99_all_s": _p(waits + outage_waits, 0.99),
            "submit_over_5s_outside": sum(w > 5 for w in waits),
            "slowest_outside": sorted(slow, reverse=True)[:3],
            "told_reference": len(waits) + len(outage_waits),
        }
        results[side.name] = figures
        print(side.name, json.dumps(figures), flush=True)

    # status changes: ours through the poller and the push route; the baseline naively
    print(f"{args.changes} status changes ...", flush=True)
    updates = ReportUpdates(client, namespace, notifier)
    poller = UpdatePoller(client, namespace, ours_client, updates, every_seconds=args.poll)
    pushed = PushedUpdates(client, namespace, updates)
    edge = create_app([], Inbox(client, namespace), parts=[UpdatesPart(client, namespace, SECRET)])
    polling = asyncio.create_task(poller.run(stop, idle=0.5))
    draining = asyncio.create_task(pushed.run(stop, idle=0.2))
    records = [await store.get(f"bench-{n:05d}") for n in range(args.reports)]
    followed = [r for r in records if r is not None and r.reference][: args.changes]
    changed_at: dict[str, float] = {}
    base_messages: Counter[str] = Counter()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=edge), base_url="http://edge"
    ) as http:
        for i, record in enumerate(followed):
            stored = ours.standin.set_status(record.reference, "closed", "Fixed")
            changed_at[record.report.sender] = time.time()
            if i % 2 == 0:  # this back office also pushes half of its changes
                body = json.dumps([stored.public()])
                await http.post(
                    "/reports/updates", content=body, headers={"Authorization": f"Bearer {SECRET}"}
                )
                base_messages[record.reference] += 1  # the baseline's push handler tells
            await asyncio.sleep(args.change_seconds / max(1, len(followed)))
    for record in followed:  # the baseline's poller tells too: it does not know of the push
        base_messages[record.reference] += 1
    expected = {r.report.sender for r in followed}
    deadline = time.time() + args.poll * 3 + 30
    while time.time() < deadline:
        told = await _told_times(client, namespace)
        if all(len(told.get(sender, [])) >= 2 for sender in expected):
            break
        await asyncio.sleep(1)
    await asyncio.sleep(args.poll + 2)  # anything duplicated would have arrived by now
    told = await _told_times(client, namespace)
    update_waits = [told[s][1] - changed_at[s] for s in expected if len(told.get(s, [])) >= 2]
    results["ours"] |= {
        "changes": len(followed),
        "updates_delivered": sum(min(1, len(told.get(s, [])) - 1) for s in expected),
        "update_duplicates": sum(max(0, len(told.get(s, [])) - 2) for s in expected),
        "update_p99_s": _p(update_waits, 0.99),
    }
    results["baseline"] |= {
        "changes": len(followed),
        "updates_delivered": len(base_messages),
        "update_duplicates": sum(n - 1 for n in base_messages.values()),
        "update_p99_s": None,
    }
    stop.set()
    await asyncio.gather(working, polling, draining, return_exceptions=True)
    await ours_client.aclose()
    await base_client.aclose()
    ours.thread.stop()
    base.thread.stop()
    await delete_keys_async(client, prefix(namespace))
    await client.close()
    return results


def _table(results: dict[str, Any]) -> str:
    rows = [
        "reports", "submitted", "lost", "duplicates", "submit_p50_s", "submit_p99_s",
        "submit_p99_outage_s", "submit_p99_all_s", "submit_over_5s_outside", "changes",
        "updates_delivered", "update_duplicates", "update_p99_s",
    ]  # fmt: skip
    lines = [f"{'':24}{'ours':>12}{'baseline':>12}"]
    for row in rows:
        cells = [str(results[side].get(row, "-")) for side in ("ours", "baseline")]
        lines.append(f"{row:24}{cells[0]:>12}{cells[1]:>12}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=600.0, help="confirmations spread over")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds down in the middle")
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--change-seconds", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=5.0, help="poller period in seconds")
    parser.add_argument("--drain", type=float, default=180.0)
    parser.add_argument("--short", action="store_true", help="100 reports over 60 s")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.short:
        args.reports, args.seconds, args.outage = 100, 60.0, 10.0
        args.changes, args.change_seconds, args.drain = 50, 10.0, 90.0
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("TEST_REDIS_URL", "")
    embedded = None
    if not redis_url:
        embedded = start_embedded(Path(tempfile.mkdtemp(prefix="bench-redis-")), free_port())
        redis_url = embedded.url
    try:
        results = asyncio.run(run(args, redis_url))
    finally:
        if embedded is not None:
            embedded.stop()
    results["config"] = {
        "reports": args.reports,
        "seconds": args.seconds,
        "outage_s": args.outage,
        "faults": "5% of POSTs 500 once before creating, 5% 500 once after creating",
        "changes": args.changes,
        "poll_s": args.poll,
        "short": args.short,
        "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(_table(results), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(args.out.read_text()) if args.out.exists() else {}
    name = "short" if args.short else "full"
    kept[name] = results
    args.out.write_text(json.dumps(kept, indent=2) + "\n")
    print(f"saved {args.out} ({name})", flush=True)


if __name__ == "__main__":
    main()
