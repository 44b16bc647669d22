"""Reply options by messaging window, the outbox sender and the Rasa resume call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.handoff.canned import CannedResponses
from bot.handoff.replies import (
    HUMAN_AGENT_TAG,
    WHATSAPP_TEMPLATE,
    OutboundReply,
    OutboxSender,
    reply_options,
)
from bot.handoff.resume import RESUME_EVENTS, RasaResumer
from bot.profile import current as current_profile

from .conftest import make_record

NOW = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)
LATER = (NOW + timedelta(hours=3)).isoformat()
EARLIER = (NOW - timedelta(hours=3)).isoformat()


def test_no_window_or_open_window_sends_free_text() -> None:
    assert reply_options("telegram", None, NOW).free_text
    opened = reply_options("whatsapp", {"open": True, "closes_at": LATER}, NOW)
    assert opened.free_text and opened.closes_at is not None


def test_closed_windows_offer_the_allowed_alternative() -> None:
    whatsapp = reply_options("whatsapp", {"open": True, "closes_at": EARLIER}, NOW)
    assert not whatsapp.free_text and whatsapp.tag == WHATSAPP_TEMPLATE
    messenger = reply_options(
        "messenger", {"open": False, "closes_at": EARLIER, "human_agent_until": LATER}, NOW
    )
    assert messenger.tag == HUMAN_AGENT_TAG and messenger.can_send
    too_late = reply_options(
        "messenger", {"open": False, "closes_at": EARLIER, "human_agent_until": EARLIER}, NOW
    )
    assert not too_late.can_send and "cannot be sent" in too_late.explanation
    instagram = reply_options(
        "instagram", {"open": False, "closes_at": EARLIER, "human_agent_until": LATER}, NOW
    )
    assert instagram.tag == HUMAN_AGENT_TAG and "Instagram" in instagram.explanation


async def test_outbox_sender_adds_to_the_stream(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    sender = OutboxSender(async_redis, namespace)
    record = make_record("447700900123")
    await sender.send(OutboundReply.for_record(record, "Hello"))
    await sender.send(OutboundReply.for_record(record, "Hi", tag=HUMAN_AGENT_TAG))
    entries = await async_redis.xrange(f"{namespace}:outbox")
    assert [fields for _, fields in entries] == [
        {
            "conversation_id": "whatsapp:441234567890:447700900123",
            "channel": "whatsapp",
            "account": "441234567890",
            "recipient": "447700900123",
            "text": "Hello",
            # free text is held rather than lost should the window close before the send
            "hold": str(current_profile().retention_in_force().conversation_days * 86400),
        },
        {
            "conversation_id": "whatsapp:441234567890:447700900123",
            "channel": "whatsapp",
            "account": "441234567890",
            "recipient": "447700900123",
            "text": "Hi",
            "tag": HUMAN_AGENT_TAG,
        },
    ]


async def test_rasa_resumer_posts_the_resume_event() -> None:
    calls: list[tuple[str, str, object]] = []

    async def events(request: web.Request) -> web.Response:
        # the raw path: Rasa's router matches it undecoded
        cid = request.raw_path.split("/")[2]
        calls.append((cid, request.query.get("token", ""), await request.json()))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/conversations/{cid}/tracker/events", events)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        await RasaResumer(str(server.make_url("")), token="s3cret")("whatsapp:+441:+447")
    finally:
        await server.close()
    assert calls == [("whatsapp:+441:+447", "s3cret", RESUME_EVENTS)]


async def test_canned_responses(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    canned = CannedResponses(async_redis, namespace)
    bins = await canned.add("Bins", "Your bin will be collected tomorrow.")
    await canned.add("apology", "Sorry for the wait.")
    assert [c.title for c in await canned.all()] == ["apology", "Bins"]
    assert await canned.remove(bins.response_id)
    assert not await canned.remove(bins.response_id)
