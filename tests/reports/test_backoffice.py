"""Councils without Open311: the report is mailed or POSTed as JSON, and agents get a case of
the owning team with its position and photo."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis.asyncio
import yaml

import bot.profile
from bot.errors import MissingSecretError
from bot.handoff.queue import HandoffQueue
from bot.profile import CouncilProfile, current
from bot.reports.__main__ import main
from bot.reports.backoffice import (
    EmailBackOffice,
    Open311BackOffice,
    WebhookBackOffice,
    back_office_for,
    signature,
)
from bot.reports.config import EmailTarget, WebhookTarget
from bot.testing.smtp import SmtpStandIn
from tests.reports.conftest import RigFactory, make_report

ROOT = Path(__file__).parents[2]
GLANFOR = CouncilProfile.load(ROOT / "tests/data/profiles/glanfor.yml")
TIPPING = {"service_code": "fly_tipping", "service_name": "Fly-tipping"}


async def test_an_emailed_report_arrives_as_json_and_opens_a_case(rig: RigFactory) -> None:
    async with SmtpStandIn() as smtp:
        target = EmailTarget(
            "reports@glanfor.example", "bot@glanfor.example", "127.0.0.1", smtp.port
        )
        r = await rig(back_office=EmailBackOffice(target), profile=GLANFOR)
        await r.run(make_report(**TIPPING))
    (mail,) = smtp.messages
    assert mail["To"] == "reports@glanfor.example" and "r-0001" in mail["Message-ID"]
    attachment = next(part for part in mail.iter_attachments())
    document = json.loads(attachment.get_content())
    assert document["reference"] == "r-0001" and document["service_code"] == "fly_tipping"
    assert document["lat"] == 52.2 and document["media_url"].startswith("https://media.example/")
    assert "openstreetmap.org/?mlat=52.2&mlon=-1.5" in document["map_url"]
    queue = HandoffQueue(r.redis, r.namespace)
    case = await queue.get(await queue.case_for(make_report().conversation_id) or "")
    assert case is not None and case.team == "waste" and case.reason == "problem_report"
    assert case.entities["report_location"] == ["52.2,-1.5"]
    assert case.entities["report_photo"] == ["https://media.example/p/abc?sig=1"]
    (told,) = await r.told()
    assert "Your reference is r-0001." in told["text"]


async def test_an_smtp_relay_asking_to_retry_later_gets_the_report_later(rig: RigFactory) -> None:
    async with SmtpStandIn() as smtp:
        smtp.fail_with = 451
        target = EmailTarget(
            "reports@glanfor.example", "bot@glanfor.example", "127.0.0.1", smtp.port
        )
        r = await rig(back_office=EmailBackOffice(target), profile=GLANFOR)

        def relay_back(now: float) -> None:
            smtp.fail_with = 0

        r.time.on_sleep = relay_back
        await r.run(make_report(**TIPPING))
    assert len(smtp.messages) == 1 and r.time.slept


async def test_a_webhook_report_is_signed_and_its_reference_used(rig: RigFactory) -> None:
    seen: list[httpx.Request] = []

    def council(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"reference": "GF-7"})

    target = WebhookTarget("https://crm.glanfor.example/reports", "GLANFOR_HOOK")
    office = WebhookBackOffice(target, "s3cret", transport=httpx.MockTransport(council))
    r = await rig(back_office=office, profile=GLANFOR)
    await r.run(make_report(**TIPPING))
    (request,) = seen
    assert request.headers["X-Council-Signature"] == signature("s3cret", request.content)
    assert request.headers["X-Council-Delivery"] == "r-0001"
    assert json.loads(request.content)["description"].startswith("A deep pothole")
    (told,) = await r.told()
    assert "Your reference is GF-7." in told["text"]


async def test_a_webhook_refusing_the_report_makes_it_an_agents_job(rig: RigFactory) -> None:
    target = WebhookTarget("https://crm.glanfor.example/reports", "GLANFOR_HOOK")
    refuse = httpx.MockTransport(lambda request: httpx.Response(422))
    r = await rig(back_office=WebhookBackOffice(target, "s", transport=refuse), profile=GLANFOR)
    await r.run(make_report(**TIPPING))
    record = await r.record("r-0001")
    assert record.status == "failed" and "422" in record.error
    queue = HandoffQueue(r.redis, r.namespace)
    case = await queue.get(await queue.case_for(make_report().conversation_id) or "")
    assert case is not None and case.reason == "problem_report_failed"


async def test_the_profile_names_the_back_office_and_its_secrets_come_from_the_environment(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    demo = current().reports
    assert demo is not None
    office = back_office_for(demo, {"COUNCIL_OPEN311_API_KEY": "k"}, async_redis, namespace)
    assert isinstance(office, Open311BackOffice) and office.client.api_key == "k"
    await office.aclose()
    with pytest.raises(MissingSecretError) as caught:
        back_office_for(demo, {}, async_redis, namespace)
    assert caught.value.variable == "COUNCIL_OPEN311_API_KEY"
    glanfor = GLANFOR.reports
    assert glanfor is not None
    assert isinstance(back_office_for(glanfor, {}, async_redis, namespace), EmailBackOffice)
    hook = WebhookTarget("https://x.example", "HOOK")
    with pytest.raises(MissingSecretError):
        back_office_for(
            replace(glanfor, back_office="webhook", webhook=hook), {}, async_redis, namespace
        )


def test_the_reports_process_refuses_a_profile_without_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load((ROOT / "council.yml").read_text())
    del data["reports"]
    data["closed_days"]["bank_holidays"] = str(ROOT / "data" / "demo" / "bank-holidays.json")
    path = tmp_path / "council.yml"
    path.write_text(yaml.safe_dump(data))
    previous = bot.profile.use(CouncilProfile.load(path))
    try:
        assert main([]) == 1
    finally:
        bot.profile.use(previous)
    assert "reports: is missing" in capsys.readouterr().err
