"""A POST that timed out after the back office accepted it, and a back office that cannot be
searched for it: the report is never posted again blind. The search is asked again with
backoff; if it answers, the request is adopted; if it does not for ``unconfirmed_after``
seconds, an agent case says it may have been submitted (check before recording it again)."""

from __future__ import annotations

import pytest

from bot.handoff.queue import HandoffQueue
from bot.reports.backoffice import Open311BackOffice
from bot.reports.open311 import marker
from tests.reports.conftest import Rig, RigFactory, make_report


async def _accepted_then_timed_out(rig: RigFactory, search_status: int) -> Rig:
    r = await rig()
    assert isinstance(r.worker.back_office, Open311BackOffice)
    r.worker.back_office.unconfirmed_after = 1800.0
    r.standin.faults.hang_after_create = 3.0  # created, then no answer within the 2 s timeout
    r.standin.faults.search_status = search_status

    def answer_at_once(now: float) -> None:
        r.standin.faults.hang_after_create = 0.0

    r.time.on_sleep = answer_at_once
    return r


@pytest.mark.parametrize("search_status", [404, 400, 500, 503])
async def test_an_unsearchable_back_office_gets_no_second_post_and_an_agent_checks(
    rig: RigFactory, search_status: int
) -> None:
    r = await _accepted_then_timed_out(rig, search_status)
    start = r.time.now
    await r.run(make_report())
    assert r.standin.posts == 1  # never posted again blind
    assert len(r.standin.by_marker(marker("r-0001"))) == 1
    searches = [c for c in r.standin.calls if c[0] == "GET"]
    assert len(searches) > 5  # the search was asked again, with backoff
    assert r.time.slept[1] > r.time.slept[0]
    assert r.time.now - start >= 1800.0
    record = await r.record("r-0001")
    assert record.status == "failed" and record.unconfirmed
    assert "may have been submitted" in record.error
    queue = HandoffQueue(r.redis, r.namespace)
    case = await queue.get(await queue.case_for(make_report().conversation_id) or "")
    assert case is not None and case.reason == "problem_report_failed"
    note = case.transcript[-1]["text"]
    assert "may have been submitted" in note.lower() and "before" in note
    assert marker("r-0001") in note  # how to find it in the council's system
    told = [t["text"] for t in await r.told()]
    assert any("may already have reached the council" in text for text in told)
    assert not any("couldn't send your report" in text for text in told)


async def test_a_search_that_answers_again_adopts_the_request(rig: RigFactory) -> None:
    r = await _accepted_then_timed_out(rig, 503)

    def later(now: float) -> None:
        r.standin.faults.hang_after_create = 0.0
        if len(r.time.slept) > 4:
            r.standin.faults.search_status = 0

    r.time.on_sleep = later
    await r.run(make_report())
    record = await r.store.get("r-0001")
    (request,) = r.standin.requests.values()
    assert record is not None and record.status == "submitted" and not record.unconfirmed
    assert record.reference == request.service_request_id and r.standin.posts == 1
    assert await HandoffQueue(r.redis, r.namespace).case_for(make_report().conversation_id) is None
