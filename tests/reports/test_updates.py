"""Status changes back to residents: polled or pushed, each change told once per subscriber."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

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


class _Delayed(ReportUpdates):
    """A copy of the reports process that read a pushed update, then stalled before applying
    it (the other copy went on meanwhile)."""

    def __init__(self, updates: ReportUpdates) -> None:
        super().__init__(updates.redis, updates.store.namespace, updates.notifier)
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    async def apply(self, *args: Any, **kwargs: Any) -> int:
        self.reached.set()
        await self.go_on.wait()
        return await super().apply(*args, **kwargs)


async def test_a_late_push_without_an_update_time_never_rolls_the_status_back(
    rig: RigFactory,
) -> None:
    """Two copies drain the pushed updates (each does: deliveries only are shared). One read
    "open" and stalled; the other applied it and then "closed", both without
    ``updated_datetime``; the stalled one applies "open" late. The stored status stays
    "closed", and the poll that then sees "closed" (with its time) tells nobody again."""
    r, reference, poller, pushed = await submitted(rig)
    part = UpdatesPart(r.redis, r.namespace, SECRET)
    edge = create_app([], Inbox(r.redis, r.namespace), parts=[part])

    async def push(status: str, notes: str) -> None:
        body = json.dumps({"service_request_id": reference, "status": status,
                           "status_notes": notes, "service_name": "Pothole"})  # fmt: skip
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=edge), base_url="http://edge"
        ) as http:
            answer = await http.post(
                "/reports/updates", content=body, headers={"Authorization": f"Bearer {SECRET}"}
            )
        assert answer.status_code == 202

    await push("open", "Inspected: repair booked")
    stalled = _Delayed(pushed.updates)
    late = asyncio.create_task(PushedUpdates(r.redis, r.namespace, stalled).drain())
    await stalled.reached.wait()  # the second copy holds "open"
    await asyncio.sleep(0.002)  # the back office's next push comes later
    await push("closed", "Filled in")
    assert await pushed.drain() == 2  # the first copy: "open", then "closed"
    stalled.go_on.set()
    assert await late == 0  # told already, and older than "closed"
    last = await pushed.updates.store.last_state(reference)
    assert last["status"] == "closed"

    r.standin.set_status(reference, "closed", "Filled in")  # the server's record, timed
    r.time.now += 300
    assert await poller.poll_once() == 0
    texts = [t["text"] for t in await r.told()]
    assert len(texts) == 3  # the reference, "open", "closed": nothing told twice
    assert (await pushed.updates.store.last_state(reference))["status"] == "closed"


class _StallingNotifier(ResidentNotifier):
    """A copy that checked an update and stalls while telling it (before saving it)."""

    def __init__(self, notifier: ResidentNotifier) -> None:
        super().__init__(notifier.redis, notifier.namespace, notifier.wording)
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    async def tell(self, *args: Any, **kwargs: Any) -> str | None:
        self.reached.set()
        await self.go_on.wait()
        return await super().tell(*args, **kwargs)


async def test_a_copy_saving_an_older_state_after_a_newer_one_is_refused(
    rig: RigFactory,
) -> None:
    """Two copies apply updates at once: the older one's save comes after the newer one's."""
    r, reference, _, pushed = await submitted(rig)
    from bot.reports.open311 import service_request

    record = r.standin.requests[reference].public()
    older = service_request({**record, "status": "open", "status_notes": "Inspected",
                             "updated_datetime": "2026-05-28T10:00:00Z"})  # fmt: skip
    newer = service_request({**record, "status": "closed", "status_notes": "Filled in",
                             "updated_datetime": "2026-05-28T11:00:00Z"})  # fmt: skip
    stalling = _StallingNotifier(pushed.updates.notifier)
    slow = ReportUpdates(r.redis, r.namespace, stalling)
    late = asyncio.create_task(slow.apply(older))
    await stalling.reached.wait()  # checked: newer than what was stored then
    assert await pushed.updates.apply(newer) == 1
    stalling.go_on.set()
    await late
    last = await pushed.updates.store.last_state(reference)
    assert (last["status"], last["updated"]) == ("closed", "2026-05-28T11:00:00Z")
    assert await r.redis.zscore(pushed.updates.store.key("followed"), reference) is None
