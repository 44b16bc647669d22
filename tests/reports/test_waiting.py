"""Reports still being retried are visible to agents (issue 15: "the failure visible to
agents" while the back office is down or refuses the API key, not only once it fails)."""

from __future__ import annotations

import asyncio

from bot.reports.waiting import waiting_problems, waiting_reports
from tests.reports.conftest import RigFactory, make_report


async def test_a_report_retried_for_long_is_listed_with_its_last_error_until_it_goes(
    rig: RigFactory,
) -> None:
    r = await rig()
    r.standin.api_key = "rotated"  # the council's key is wrong: 403 on every POST
    start = r.time.now
    fake_sleep = r.worker.sleep
    reached, release = asyncio.Event(), asyncio.Event()

    async def sleep(seconds: float) -> None:
        await fake_sleep(seconds)
        if r.time.now - start >= 20 * 60 and not release.is_set():
            reached.set()
            await release.wait()

    r.worker.sleep = sleep
    running = asyncio.create_task(r.run(make_report(created_at=start)))
    await asyncio.wait_for(reached.wait(), 10)

    # new reports are left alone; the one retried for 20 minutes is named with its last error
    assert await waiting_reports(r.redis, r.namespace, now=r.time.now, older_than=3600) == []
    [waiting] = await waiting_reports(r.redis, r.namespace, now=r.time.now, older_than=600)
    assert waiting.report_id == "r-0001" and waiting.service_name == "Pothole"
    assert waiting.waited_seconds >= 20 * 60 and waiting.attempts >= 5
    assert "HTTP 403" in waiting.last_error and "Invalid api_key" in waiting.last_error
    [problem] = await waiting_problems(r.redis, r.namespace, now=r.time.now)
    assert problem.startswith("1 problem report has waited over 10 minutes for ")
    assert "(Pothole; the oldest for 2" in problem and "HTTP 403" in problem
    assert "+4477" not in problem and "bus stop" not in problem  # no resident data

    r.standin.api_key = "k"  # fixed: it goes, and is no longer listed
    release.set()
    await asyncio.wait_for(running, 10)
    record = await r.record("r-0001")
    assert record.status == "submitted"
    assert await waiting_reports(r.redis, r.namespace, now=r.time.now, older_than=0) == []
    assert await waiting_problems(r.redis, r.namespace, now=r.time.now) == []


async def test_nothing_waiting_nothing_to_say(rig: RigFactory) -> None:
    r = await rig()
    await r.run(make_report())
    assert await waiting_problems(r.redis, r.namespace) == []
