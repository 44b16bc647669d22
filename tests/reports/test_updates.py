"""Status changes back to residents: polled or pushed, each change told once per subscriber."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from bot.channels.inbox import Inbox
from bot.edge.app import create_app
from bot.reports.notify import ResidentNotifier, Wording
from bot.reports.store import Subscriber, subscribe
from bot.reports.updates import PushedUpdates, ReportUpdates, UpdatePoller
from bot.reports.updates_edge import MAX_BODY, UpdatesPart
from tests.reports.conftest import Rig, RigFactory, make_report, wrote

# a connection, server or task left open by a test fails it (a CI run saw them at teardown)
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

SECRET = "s" * 40


async def submitted(rig: RigFactory) -> tuple[Rig, str, UpdatePoller, PushedUpdates]:
    """A rig whose resident 1 made a report the council now has."""
    r = await rig()
    await r.run(make_report())
    record = await r.record("r-0001")
    assert record.reference
    updates = ReportUpdates(
        r.redis, r.namespace, ResidentNotifier(r.redis, r.namespace, r.worker.notifier.wording)
    )
    poller = UpdatePoller(
        r.redis, r.namespace, r.open311(), updates, every_seconds=300, clock=r.time
    )
    return r, record.reference, poller, PushedUpdates(r.redis, r.namespace, updates)


async def test_a_closed_request_is_told_once_with_the_councils_words(rig: RigFactory) -> None:
    r, reference, poller, _ = await submitted(rig)
    assert await poller.poll_once() == 0  # nothing changed yet: nobody told
    r.standin.set_status(reference, "closed", "Filled in on Tuesday")
    r.time.now += 300
    assert await poller.poll_once() == 1
    told = await r.told()
    assert told[-1]["text"] == (
        f"Update on your report {reference} (Pothole): the council has closed it. "
        "They say: Filled in on Tuesday"
    )
    r.time.now += 300
    assert await poller.poll_once() == 0  # closed: no longer asked about
    assert len(await r.told()) == 2  # the reference, then the one update


async def test_the_same_change_polled_and_pushed_is_told_once(rig: RigFactory) -> None:
    r, reference, poller, pushed = await submitted(rig)
    changed = r.standin.set_status(reference, "closed", "Done")
    part = UpdatesPart(r.redis, r.namespace, SECRET)
    edge = create_app([], Inbox(r.redis, r.namespace), parts=[part])
    body = json.dumps([{**r.standin.requests[reference].public()}]).encode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=edge), base_url="http://edge"
    ) as http:
        answer = await http.post(
            "/reports/updates", content=body, headers={"Authorization": f"Bearer {SECRET}"}
        )
    assert answer.status_code == 202 and answer.json() == {"accepted": 1}
    r.time.now += 300
    told = await poller.poll_once() + await pushed.drain()
    assert told == 1
    assert changed.status == "closed" and len(await r.told()) == 2


async def test_every_subscriber_is_told_each_change_in_their_language(rig: RigFactory) -> None:
    r, reference, poller, _ = await submitted(rig)
    welsh = make_report(2, language="cy")
    await wrote(r.redis, r.namespace, welsh.conversation_id)  # said yes in the chat just now
    await subscribe(r.redis, r.namespace, reference, Subscriber.of(welsh, reference, r.time.now))
    r.standin.set_status(reference, "open", "Inspected: repair booked")
    r.time.now += 300
    assert await poller.poll_once() == 2
    texts = {t["recipient"]: t["text"] for t in (await r.told())[1:]}
    assert "The council says: Inspected: repair booked" in texts[make_report().sender]
    assert texts[welsh.sender].startswith("Diweddariad ar eich adroddiad")
    r.standin.set_status(reference, "closed")
    r.time.now += 300
    assert await poller.poll_once() == 2
    assert len(await r.told()) == 5


async def test_a_late_push_of_an_older_state_is_ignored(rig: RigFactory) -> None:
    r, reference, poller, pushed = await submitted(rig)
    old = r.standin.requests[reference].public()
    r.standin.set_status(reference, "closed", "Done")
    r.time.now += 300
    await poller.poll_once()
    updates = pushed.updates
    from bot.reports.open311 import service_request

    late = service_request({**old, "status": "open", "status_notes": "Queued for inspection"})
    assert await updates.apply(late) == 0
    assert len(await r.told()) == 2


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b'{"service_request_id": "1", "status": "closed"}', 401),
        (
            {"Authorization": "Bearer wrong"},
            b'{"service_request_id": "1", "status": "closed"}',
            401,
        ),
        ({"Authorization": f"Bearer {SECRET}"}, b"<xml/>", 400),
        ({"Authorization": f"Bearer {SECRET}"}, b'{"status": "closed"}', 400),
        ({"Authorization": f"Bearer {SECRET}"}, b"[" + b" " * MAX_BODY + b"]", 413),
    ],
)
async def test_the_push_route_refuses_strangers_and_nonsense(
    async_redis: object, namespace: str, headers: dict[str, str], body: bytes, status: int
) -> None:
    part = UpdatesPart(async_redis, namespace, SECRET)  # type: ignore[arg-type]
    edge = create_app([], Inbox(async_redis, namespace), parts=[part])  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=edge), base_url="http://edge"
    ) as http:
        answer = await http.post("/reports/updates", content=body, headers=headers)
    assert answer.status_code == status
    assert await async_redis.xlen(part.stream) == 0  # type: ignore[attr-defined]


async def test_a_signed_push_is_accepted(async_redis: object, namespace: str) -> None:
    part = UpdatesPart(async_redis, namespace, SECRET)  # type: ignore[arg-type]
    body = b'[{"service_request_id": 638344, "status": "closed", "status_notes": "Duplicate"}]'
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    edge = create_app([], Inbox(async_redis, namespace), parts=[part])  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=edge), base_url="http://edge"
    ) as http:
        answer = await http.post(
            "/reports/updates", content=body, headers={"X-Council-Signature": signature}
        )
    assert answer.status_code == 202
    (row,) = await async_redis.xrange(part.stream)  # type: ignore[attr-defined]
    assert json.loads(row[1]["request"])["service_request_id"] == "638344"


def test_wording_is_ready_for_every_status(wording: Wording) -> None:
    for response in ("utter_report_update_open", "utter_report_update_closed"):
        for has_notes in (True, False):
            text = wording.text(
                response, "sms", "en", reference="1", service_name="Pothole",
                notes="n", has_notes=has_notes,
            )  # fmt: skip
            assert "{" not in text and "1" in text


async def test_a_crash_before_the_state_is_saved_tells_nobody_twice(rig: RigFactory) -> None:
    r, reference, poller, pushed = await submitted(rig)
    r.standin.set_status(reference, "closed", "Done")
    (request,) = await poller.open311.requests(ids=[reference])
    assert await pushed.updates.apply(request) == 1
    # the worker died after telling, before saving the state: the change is seen again
    await r.redis.hset(pushed.updates.store.key("last", reference), "status", "open")
    assert await pushed.updates.apply(request) == 0
    assert len(await r.told()) == 2
