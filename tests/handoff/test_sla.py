"""Service levels in business hours, breach notices once, out-of-hours safeguarding alerts."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.errors import ConfigError
from bot.handoff.hours import OpeningHours
from bot.handoff.queue import HandoffQueue
from bot.handoff.sla import (
    Breach,
    SlaMonitor,
    SlaPolicy,
    WebhookNotifier,
    add_business_time,
    business_seconds,
    evaluate,
)
from bot.profile import current

from .conftest import Clock, make_record

HOURS = OpeningHours(holidays=frozenset({date(2027, 3, 8)}))  # a Monday bank holiday


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_business_time_skips_nights_weekends_and_holidays() -> None:
    friday_4pm = utc(2027, 3, 5, 16, 0)  # London is on GMT in early March
    due = add_business_time(HOURS, friday_4pm, 2 * 3600)
    assert due == utc(2027, 3, 9, 10, 0)  # Friday's last hour, then Tuesday (Monday is a holiday)
    assert business_seconds(HOURS, friday_4pm, due) == 2 * 3600
    saturday = utc(2027, 3, 6, 12, 0)
    assert add_business_time(HOURS, saturday, 60) == utc(2027, 3, 9, 9, 1)
    assert business_seconds(HOURS, due, friday_4pm) == 0


def test_policy_reads_targets_per_priority_and_team() -> None:
    policy = SlaPolicy.from_mapping(
        {
            "P2": {"first_response": 60, "resolution": 480},
            "teams": {"housing": {"P2": {"first_response": 15, "resolution": 120}}},
        }
    )
    assert policy.target("P2", "revenues").first_response == timedelta(minutes=60)
    assert policy.target("P2", "housing").first_response == timedelta(minutes=15)
    assert policy.target("P1", "housing").first_response == timedelta(minutes=30)


def test_time_left_and_breach() -> None:
    policy = replace(
        SlaPolicy.from_mapping({"P2": {"first_response": 60, "resolution": 480}}), hours=HOURS
    )
    record = make_record("1", created_at=utc(2027, 3, 3, 16, 30).isoformat())
    first, resolution = evaluate(policy, record, {}, utc(2027, 3, 3, 16, 50))
    assert first.due == utc(2027, 3, 4, 9, 30)  # 30 minutes today, 30 tomorrow
    assert first.left_seconds == 40 * 60 and not first.breached
    assert first.left_text == "40m left"
    late, _ = evaluate(policy, record, {}, utc(2027, 3, 4, 10, 0))
    assert late.breached and late.left_seconds == -30 * 60 and late.left_text == "30m over"
    met = {"first_response_at": utc(2027, 3, 4, 9, 0).isoformat()}
    answered, _ = evaluate(policy, record, met, utc(2027, 3, 5, 12, 0))
    assert not answered.breached and answered.left_text == "met"
    assert resolution.kind == "resolution" and not resolution.breached


async def test_each_breach_is_notified_once(queue: HandoffQueue, handoff_clock: Clock) -> None:
    sent: list[Breach] = []

    async def notify(breach: Breach) -> None:
        sent.append(breach)

    policy = replace(
        SlaPolicy.from_mapping({"P2": {"first_response": 60, "resolution": 120}}), hours=HOURS
    )
    record = make_record("1")  # opened Wednesday 10:00
    await queue.open(record)
    monitors = [
        SlaMonitor(queue, policy, notify=notify, clock=handoff_clock) for _ in range(2)
    ]  # two console processes
    assert await monitors[0].check() == []
    handoff_clock.advance(minutes=61)
    assert [b.kind for b in await monitors[0].check()] == ["first_response"]
    assert await monitors[1].check() == []
    handoff_clock.advance(minutes=60)
    assert [b.kind for b in await monitors[1].check()] == ["resolution"]
    assert [(b.case_id, b.kind) for b in sent] == [
        (record.case_id, "first_response"),
        (record.case_id, "resolution"),
    ]
    assert await queue.redis.zcard(monitors[0].breaches_key) == 2


async def test_a_failing_hook_does_not_stop_checks(
    queue: HandoffQueue, handoff_clock: Clock
) -> None:
    async def broken(breach: Breach) -> None:
        raise RuntimeError("hook down")

    await queue.open(make_record("1"))
    handoff_clock.advance(hours=3)
    monitor = SlaMonitor(queue, SlaPolicy(hours=HOURS), notify=broken, clock=handoff_clock)
    assert len(await monitor.check()) == 1


async def test_safeguarding_out_of_hours_alerts_once(
    queue: HandoffQueue, handoff_clock: Clock
) -> None:
    alerts: list[Breach] = []

    async def alert(breach: Breach) -> None:
        alerts.append(breach)

    async def ignore(breach: Breach) -> None:
        return None

    night = utc(2027, 3, 3, 23, 0)
    handoff_clock.now = night
    risk = make_record("1", reason="safeguarding", created_at=night.isoformat())
    daytime_risk = make_record("2", reason="safeguarding")
    await queue.open(risk)
    await queue.open(daytime_risk)
    monitor = SlaMonitor(
        queue, SlaPolicy(hours=HOURS), notify=ignore, alert=alert, clock=handoff_clock
    )
    await monitor.check()
    await monitor.check()
    assert [(a.case_id, a.kind) for a in alerts] == [(risk.case_id, "safeguarding_out_of_hours")]


async def test_webhook_notifier_posts_json() -> None:
    received: list[dict[str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        notify = WebhookNotifier(str(server.make_url("/hook")))
        await notify(Breach("c1", "housing", "P2", "first_response", utc(2027, 3, 3, 11, 0)))
        with pytest.raises(Exception, match="404"):
            await WebhookNotifier(str(server.make_url("/missing")))(
                Breach("c1", "housing", "P2", "resolution", utc(2027, 3, 3, 11, 0))
            )
    finally:
        await server.close()
    assert received == [
        {
            "case_id": "c1",
            "team": "housing",
            "priority": "P2",
            "kind": "first_response",
            "due": "2027-03-03T11:00:00+00:00",
        }
    ]


def test_opening_hours_and_bank_holidays_are_configurable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sla.json"
    hours = {
        "open": "08:30",
        "close": "18:00",
        "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
        "holidays": ["2028-01-03"],
    }
    path.write_text(json.dumps({"hours": hours}))
    monkeypatch.setenv("COUNCIL_SLA_FILE", str(path))
    policy = SlaPolicy.from_env()
    london = ZoneInfo("Europe/London")
    assert policy.hours.is_open(datetime(2028, 1, 8, 8, 45, tzinfo=london))  # a Saturday
    assert not policy.hours.is_open(datetime(2028, 1, 3, 10, 0, tzinfo=london))  # the holiday
    assert not policy.hours.is_open(datetime(2028, 1, 4, 18, 0, tzinfo=london))


def test_the_profile_hours_close_on_its_bank_holidays() -> None:
    london = ZoneInfo("Europe/London")
    hours = SlaPolicy.from_env().hours  # the demo profile's, England and Wales bank holidays
    assert not hours.is_open(datetime(2026, 12, 28, 10, 0, tzinfo=london))  # Boxing Day moved
    assert hours.is_open(datetime(2026, 12, 29, 10, 0, tzinfo=london))
    assert not hours.is_open(datetime(2028, 1, 3, 10, 0, tzinfo=london))  # from the 2028 table
    assert OpeningHours().is_open(datetime(2026, 12, 28, 10, 0, tzinfo=london))  # no closed days


def test_the_sla_file_is_deprecated_but_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sla.json"
    path.write_text(json.dumps({"P1": {"first_response": 10, "resolution": 60}}))
    monkeypatch.setenv("COUNCIL_SLA_FILE", str(path))
    with caplog.at_level(logging.WARNING, logger="bot.handoff.sla"):
        policy = SlaPolicy.from_env()
    assert "COUNCIL_SLA_FILE is deprecated" in caplog.text and "service_levels" in caplog.text
    assert policy.targets["P1"].first_response == timedelta(minutes=10)
    # its hours are the profile's, bank holidays included
    london = ZoneInfo("Europe/London")
    assert not policy.hours.is_open(datetime(2026, 12, 28, 10, 0, tzinfo=london))


def test_without_the_sla_file_the_profile_service_levels_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COUNCIL_SLA_FILE", raising=False)
    policy = SlaPolicy.from_env()
    assert policy is current().service_levels
    assert policy.target("P2", "housing").first_response == timedelta(hours=2)


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("{not json", "line 1"),
        ('{"P1": {"first_response": 30}}', "P1"),
        ('{"teams": {"housing": {"P2": {"resolution": 1}}}}', "teams.housing.P2"),
        ('{"hours": {"open": "9am"}}', "hours"),
        ('{"hours": {"weekdays": ["funday"]}}', "hours"),
        ('{"hours": {"zone": "Mars/Olympus"}}', "hours"),
        ('{"hours": {"open": "17:00", "close": "09:00"}}', "hours"),
        ('{"hours": {"lunch": "12:00"}}', "hours"),
        ("[1, 2]", ""),
    ],
)
def test_a_bad_sla_file_names_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, key: str
) -> None:
    path = tmp_path / "sla.json"
    path.write_text(content)
    monkeypatch.setenv("COUNCIL_SLA_FILE", str(path))
    with pytest.raises(ConfigError) as raised:
        SlaPolicy.from_env()
    assert raised.value.path == str(path) and raised.value.key == key


def test_a_missing_sla_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_SLA_FILE", str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match=r"nope\.json: COUNCIL_SLA_FILE: cannot be read"):
        SlaPolicy.from_env()
