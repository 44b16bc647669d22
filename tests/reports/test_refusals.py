"""A back office's 400: a General Service Error is tried again and submitted once; a refusal
of the report itself loses nothing (the resident told, an agent case with every detail, the
record and the failed list saying why). Vectors: tests/data/open311/errors_400.json."""

from __future__ import annotations

from bot.handoff.queue import HandoffQueue
from bot.reports.open311 import marker
from tests.reports.conftest import RigFactory, make_report


async def test_a_general_service_error_is_tried_again_and_submitted_once(rig: RigFactory) -> None:
    r = await rig()
    r.standin.faults.general_errors = 2  # "400 - General Service Error (... CRM is down)"
    await r.run(make_report())
    record = await r.record("r-0001")
    assert record.status == "submitted"
    assert r.standin.posts == 3 and len(r.standin.by_marker(marker("r-0001"))) == 1
    assert len(r.time.slept) == 2  # two backoffs, no case
    assert await HandoffQueue(r.redis, r.namespace).case_for(make_report().conversation_id) is None
    (told,) = await r.told()
    assert f"Your reference is {record.reference}." in told["text"]


async def test_a_refused_report_reaches_an_agent_whole_and_says_why(rig: RigFactory) -> None:
    r = await rig()
    report = make_report(
        attributes={"size": "enormous"}, address_string="Outside 12 Mill Lane", language="en"
    )
    await r.run(report)
    record = await r.store.get(report.report_id)
    why = "attribute size has a value that is not one of its values"
    assert record is not None and record.status == "failed" and why in record.error
    (failed,) = await r.store.failed()
    assert why in failed["error"] and failed["service"] == "Pothole"
    queue = HandoffQueue(r.redis, r.namespace)
    case_id = await queue.case_for(report.conversation_id)
    case = await queue.get(case_id or "")
    assert case is not None and case.reason == "problem_report_failed"
    resident, note = case.transcript
    assert resident["text"] == report.description  # nothing of the report is lost
    assert why in note["text"]  # the agent sees why
    assert case.entities["report_answers"] == ["size: enormous"]
    assert case.entities["report_address"] == ["Outside 12 Mill Lane"]
    assert case.entities["report_location"] == ["52.2,-1.5"]
    assert case.entities["report_photo"] == [report.media_url]
    (told,) = await r.told()
    assert "passed it to a person" in told["text"]
    assert r.standin.posts == 1 and r.time.slept == []  # refused for good: not retried
