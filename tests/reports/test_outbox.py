"""The reports' outbox: a confirmed report reaches the back office once and the resident is
told its reference once, through 500s, 401s, garbage, timeouts, tokens and an hour's outage."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import bot.reports.outbox as outbox_module
from bot.handoff.queue import HandoffQueue
from bot.keys import key
from bot.reports.open311 import marker
from tests.reports.conftest import Rig, RigFactory, make_report


async def test_a_report_is_queued_once_however_often_it_is_confirmed(rig: RigFactory) -> None:
    r = await rig()
    first = await r.outbox.enqueue(make_report())
    again = await r.outbox.enqueue(make_report())
    assert first == again
    assert await r.redis.xlen(r.outbox.stream) == 1
    assert (await r.record("r-0001")).status == "queued"


async def test_the_resident_is_told_the_councils_reference_and_follows_the_request(
    rig: RigFactory,
) -> None:
    r = await rig()
    await r.run(make_report())
    (request,) = r.standin.requests.values()
    record = await r.record("r-0001")
    assert record.status == "submitted"
    assert record.reference == request.service_request_id
    (told,) = await r.told()
    assert told["conversation_id"] == make_report().conversation_id
    assert told["recipient"] == "+447700900001" and told["channel"] == "whatsapp"
    assert f"Your reference is {request.service_request_id}." in told["text"]
    (subscriber,) = await r.store.subscribers(request.service_request_id)
    assert subscriber.conversation_id == make_report().conversation_id
    assert await r.redis.xlen(r.outbox.stream) == 0  # finished and removed
    # the same report confirmed again later: nothing new is posted or said
    await r.run(make_report())
    assert r.standin.posts == 1 and len(await r.told()) == 1


async def test_a_500_after_the_request_was_created_submits_once(rig: RigFactory) -> None:
    r = await rig()
    r.standin.faults.fail_after_create_ratio = 1.0  # created, then answered 500
    await r.run(make_report())
    assert len(r.standin.by_marker(marker("r-0001"))) == 1  # found by its marker, not re-posted
    assert r.standin.posts == 1
    record = await r.record("r-0001")
    assert record.status == "submitted"
    assert len(await r.told()) == 1


async def test_a_500_before_anything_was_created_is_posted_again(rig: RigFactory) -> None:
    r = await rig()
    r.standin.faults.fail_once_ratio = 1.0
    await r.run(make_report())
    assert r.standin.posts == 2 and len(r.standin.requests) == 1
    assert r.time.slept and r.time.slept[0] <= 1.0  # the first backoff


async def test_garbage_and_a_slow_server_are_retried_without_a_second_request(
    rig: RigFactory,
) -> None:
    r = await rig()
    r.standin.faults.delay = 3.0  # longer than the client's 2 s: the POST lands, no answer
    slow = {"done": False}

    def speed_up(now: float) -> None:
        if not slow["done"]:
            slow["done"] = True
            r.standin.faults.delay = 0.0
            r.standin.faults.garbage = True
        else:
            r.standin.faults.garbage = False

    r.time.on_sleep = speed_up
    await r.run(make_report())
    assert len(r.standin.by_marker(marker("r-0001"))) == 1
    assert (await r.record("r-0001")).status == "submitted"


async def test_an_hour_long_outage_loses_nothing_and_submits_each_report_once(
    rig: RigFactory,
) -> None:
    r = await rig()
    r.standin.faults.down_until = 4e9
    start = r.time.now

    def outage(now: float) -> None:
        if now - start >= 3600:
            r.standin.faults.down_until = 0

    r.time.on_sleep = outage
    reports = [make_report(n) for n in range(1, 6)]
    await r.run(*reports)
    assert r.time.now - start >= 3600
    assert len(r.standin.requests) == 5 and r.standin.posts == 5
    for report in reports:
        assert len(r.standin.by_marker(marker(report.report_id))) == 1
    told = await r.told()
    # each resident: told once that it takes longer (nothing is lost), then the reference
    for report in reports:
        mine = [t["text"] for t in told if t["recipient"] == report.sender]
        assert len(mine) == 2 and "Nothing is lost" in mine[0]
        assert "Your reference is" in mine[1]


async def test_a_wrong_api_key_is_retried_until_the_key_is_fixed(rig: RigFactory) -> None:
    r = await rig()
    r.standin.api_key = "rotated"
    r.time.on_sleep = lambda now: (
        setattr(r.standin, "api_key", "k") if len(r.time.slept) > 3 else None
    )
    await r.run(make_report())
    assert (await r.record("r-0001")).status == "submitted"


async def test_a_refused_report_goes_to_agents_and_the_resident_is_told(rig: RigFactory) -> None:
    r = await rig()
    await r.run(make_report(attributes={}))  # the council requires the pothole's size
    record = await r.record("r-0001")
    assert record.status == "failed" and "400" in record.error
    (failed,) = await r.store.failed()
    assert failed["report_id"] == "r-0001" and "attribute size is required" in failed["error"]
    queue = HandoffQueue(r.redis, r.namespace)
    case_id = await queue.case_for(make_report().conversation_id)
    assert case_id is not None
    case = await queue.get(case_id)
    assert case is not None and case.reason == "problem_report_failed" and case.priority == "P2"
    assert case.team == "highways"  # the demo profile's team of service 001
    assert case.entities["report_location"] == ["52.2,-1.5"]
    assert case.entities["report_photo"] == ["https://media.example/p/abc?sig=1"]
    (told,) = await r.told()
    assert "passed it to a person" in told["text"]
    assert r.time.slept == []  # refused at once, not retried


async def test_given_up_after_the_budget_the_report_is_failed_not_lost(rig: RigFactory) -> None:
    r = await rig()
    r.standin.faults.status = 500
    r.worker.policy = type(r.worker.policy)(give_up_after=600.0)
    await r.run(make_report())
    record = await r.record("r-0001")
    assert record.status == "failed" and "gave up" in record.error
    assert r.time.now - 1_780_000_100.0 >= 600


async def test_a_token_answer_is_kept_and_exchanged_for_the_id(rig: RigFactory) -> None:
    r = await rig(mode="batch", token_delay=0.0)
    await r.run(make_report())
    record = await r.record("r-0001")
    assert record.status == "submitted"
    assert record.token and record.reference in r.standin.requests
    assert r.standin.posts == 1


async def test_a_token_not_ready_yet_is_asked_again_never_posted_again(rig: RigFactory) -> None:
    r = await rig(mode="batch", token_delay=3600.0)
    ready = {"at": 0.0}

    def later(now: float) -> None:
        if len(r.time.slept) > 2:  # the back office gets round to it
            for token, (request_id, _) in list(r.standin.tokens.items()):
                r.standin.tokens[token] = (request_id, 0.0)
                ready["at"] = now

    r.time.on_sleep = later
    await r.run(make_report())
    assert r.standin.posts == 1 and ready["at"]
    assert (await r.record("r-0001")).status == "submitted"


async def test_a_report_posted_before_a_crash_is_adopted_not_posted_again(
    rig: RigFactory,
) -> None:
    r = await rig()
    report = make_report()
    await r.worker.ensure_group()
    await r.outbox.enqueue(report)
    # a worker posted it, then died before it could record the answer
    await r.store.first_attempt(report.report_id, r.time.now)
    r.standin._create(  # what the dead worker's POST created
        {"service_code": "001", "lat": "52.2", "long": "-1.5"},
        f"{report.description}\n\n{marker(report.report_id)}",
        __import__("time").time(),
    )
    await r.run()
    assert r.standin.posts == 0 and len(r.standin.requests) == 1


async def test_failures_are_listed_for_agents_with_no_resident_text(rig: RigFactory) -> None:
    r = await rig()
    await r.run(make_report(service_code="999", description="Outside number 12 Mill Lane"))
    rows = await r.redis.xrange(key(r.namespace, "reports", "failed"))
    assert "mill lane" not in json.dumps(rows).lower()  # the description stays out of the list


@asynccontextmanager
async def first_waiting(r: Rig) -> AsyncIterator[None]:
    """The worker running on the real clock, report 1 failed and waiting out its backoff."""
    stop = asyncio.Event()
    await r.worker.ensure_group()
    running = asyncio.create_task(r.worker.run(stop))
    try:
        await r.outbox.enqueue(make_report(1))
        async with asyncio.timeout(10):
            while not await r.redis.zcard(r.worker.retries.due_key):
                await asyncio.sleep(0.01)
        yield
    finally:
        stop.set()
        await running


async def both_posted(r: Rig) -> None:
    """Queue report 2 and wait until both reports reached the stand-in."""
    await r.outbox.enqueue(make_report(2))
    async with asyncio.timeout(10):
        while len(r.standin.requests) < 2:
            await asyncio.sleep(0.01)


async def test_reports_waiting_out_a_backoff_go_as_soon_as_the_back_office_answers(
    rig: RigFactory,
) -> None:
    r = await rig()
    worker = r.worker
    worker.sleep, worker.clock, worker.recovery_spread = asyncio.sleep, time.time, 0.2
    worker.policy = type(worker.policy)(base_delay=60.0, max_delay=60.0)
    r.standin.faults.down_until = 4e9
    async with first_waiting(r):  # failed, waiting 60 s
        r.standin.faults.down_until = 0
        await both_posted(r)  # report 2 gets through at once, and wakes report 1
    assert sorted(len(r.standin.by_marker(marker(f"r-{n:04d}"))) for n in (1, 2)) == [1, 1]


async def test_a_wake_up_never_makes_a_report_wait_longer_than_its_backoff(
    rig: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module.random, "uniform", lambda low, high: high)  # the worst
    r = await rig()
    worker = r.worker
    worker.sleep, worker.clock, worker.recovery_spread = asyncio.sleep, time.time, 30.0
    worker.policy = type(worker.policy)(base_delay=1.0, max_delay=1.0)
    r.standin.faults.fail_once_ratio = 1.0  # report 1 fails once: back in about a second
    async with first_waiting(r):
        r.standin.faults.fail_once_ratio = 0.0
        started = time.monotonic()
        await both_posted(r)  # report 2 gets through: wakes report 1
        assert time.monotonic() - started < 3.0  # not the 30 s spread
