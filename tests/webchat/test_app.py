"""A resident on the council's site talks to the edge: messages in, events out, replayed."""

from __future__ import annotations

import asyncio
import json

import httpx
import redis.asyncio

from bot.channels.base import InboundMessage, OutboundMessage
from bot.keys import key
from bot.testing.webchat import WebChatClient
from bot.webchat.adapter import WebChatAdapter

from .conftest import COUNCIL, messages


async def inbox(client: redis.asyncio.Redis, namespace: str) -> list[InboundMessage]:
    rows = await client.xrange(key(namespace, "inbox"))
    return [InboundMessage.from_json(fields["message"]) for _, fields in rows]


async def test_a_message_is_in_the_inbox_as_the_webchat_channel_before_the_202(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    client_id = "7d3c9f0e-0b1a-4c55-9e57-1f2a3b4c5d6e"
    answer = await resident.send("when is my bin day?", client_id=client_id)
    assert answer.status_code == 202
    assert answer.json()["id"]
    [message] = await inbox(async_redis, namespace)
    assert (message.channel, message.account, message.text) == (
        "webchat",
        COUNCIL,
        "when is my bin day?",
    )
    assert message.message_id == client_id
    assert len(message.sender) == 32  # the token's random conversation, nothing personal


async def test_a_retried_message_is_queued_and_echoed_once(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    first = await resident.send("hello", client_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    again = await resident.send("hello", client_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["id"] == again.json()["id"]
    assert len(await inbox(async_redis, namespace)) == 1
    async with asyncio.timeout(5):
        events = await resident.events(lambda seen: len(messages(seen)) >= 1)
    assert [m["text"] for m in messages(events)] == ["hello"]


async def test_a_button_sends_its_payload_and_shows_its_title(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    answer = await resident.send(payload="/bin_day", title="Bin day")
    assert answer.status_code == 202
    [message] = await inbox(async_redis, namespace)
    assert (message.quick_reply_payload, message.text) == ("/bin_day", "Bin day")
    async with asyncio.timeout(5):
        events = await resident.events(lambda seen: len(messages(seen)) >= 1)
    assert messages(events)[0]["text"] == "Bin day"


async def test_replies_arrive_live_and_a_reload_replays_the_whole_conversation_once(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    adapter = WebChatAdapter(async_redis, namespace, keep_days=1)
    await resident.send("hello")
    sender = (await inbox(async_redis, namespace))[0].sender

    async def reply_later() -> None:
        await asyncio.sleep(0.2)  # the stream is open and idle by then
        await adapter.send(COUNCIL, sender, OutboundMessage("Hello! How can I help?"))

    async with asyncio.timeout(10):
        live, _ = await asyncio.gather(
            resident.events(lambda seen: len(messages(seen)) >= 2), reply_later()
        )
        replayed = await resident.events(lambda seen: len(messages(seen)) >= 2)
    texts = [(m["from"], m["text"]) for m in messages(live)]
    assert texts == [("resident", "hello"), ("bot", "Hello! How can I help?")]
    assert [(m["from"], m["text"]) for m in messages(replayed)] == texts
    assert live[0].kind == "status" and live[0].data["state"] == "bot"


async def test_with_last_event_id_only_later_events_are_sent(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    first = (await resident.send("one")).json()["id"]
    await resident.send("two")
    await resident.send("three")
    async with asyncio.timeout(5):
        events = await resident.events(lambda seen: len(messages(seen)) >= 2, last_event_id=first)
    assert [m["text"] for m in messages(events)] == ["two", "three"]
    assert [e.id for e in events if e.kind == "message"] == [m["id"] for m in messages(events)]


async def test_a_message_that_is_too_long_or_malformed_is_refused_and_nothing_is_queued(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    too_long = await resident.send("x" * 201)
    assert too_long.status_code == 413
    assert too_long.json()["error"] == "too_long"
    not_json = await resident.http.post(
        "/webchat/messages", content=b"{not json", headers=resident.auth
    )
    assert not_json.status_code == 400
    no_id = await resident.http.post(
        "/webchat/messages", json={"text": "hi"}, headers=resident.auth
    )
    assert (no_id.status_code, no_id.json()["error"]) == (400, "client_id")
    empty = await resident.send("   ")
    assert empty.status_code == 400
    assert await inbox(async_redis, namespace) == []


async def test_ending_the_chat_revokes_its_token(resident: WebChatClient) -> None:
    assert (await resident.send("bye")).status_code == 202
    ended = await resident.http.post("/webchat/end", headers=resident.auth)
    assert ended.status_code == 200
    after = await resident.send("still there?")
    assert after.status_code == 401
    assert after.json()["error"] == "token"


async def test_config_is_the_profiles_and_cors_only_for_allowed_origins(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.get("/webchat/config", params={"council": COUNCIL})
    assert answer.status_code == 200
    config = answer.json()
    assert (config["council_id"], config["open_now"], config["next_open"]) == (
        COUNCIL,
        True,
        None,
    )
    assert config["limits"]["max_text_chars"] == 200
    assert answer.headers["access-control-allow-origin"] == "https://www.ashvale.gov.uk"
    other = await http.get(
        "/webchat/config", params={"council": COUNCIL}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    unknown = await http.get("/webchat/config", params={"council": "glanfor"})
    assert unknown.status_code == 404


async def test_a_post_from_another_site_is_refused_before_anything_is_stored(
    http: httpx.AsyncClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    evil = {"Origin": "https://evil.example"}
    started = await http.post("/webchat/sessions", json={"council": COUNCIL}, headers=evil)
    assert started.status_code == 403
    assert "access-control-allow-origin" not in started.headers
    preflight = await http.options(
        "/webchat/messages",
        headers={**evil, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 403
    allowed = await http.options(
        "/webchat/messages", headers={"Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 204
    assert "Last-Event-ID" in allowed.headers["access-control-allow-headers"]
    widget = WebChatClient(http, COUNCIL)
    await widget.start()
    no_origin = await http.post(
        "/webchat/messages",
        json={"client_id": "a1b2c3d4-e5f6", "text": "hi"},
        headers={**widget.auth, "Origin": ""},
    )
    assert no_origin.status_code == 403
    assert await inbox(async_redis, namespace) == []


async def test_the_widget_files_are_served_compressed_with_an_etag(http: httpx.AsyncClient) -> None:
    script = await http.get("/webchat/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-encoding"] == "gzip"
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert script.headers["cache-control"] == "public, max-age=300"
    again = await http.get("/webchat/widget.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    assert (await http.get("/webchat/widget.css")).status_code == 200
    assert (await http.get("/webchat/..%2Fapp.py")).status_code == 404
    assert (await http.get("/webchat/nothing.js")).status_code == 404


async def test_the_echo_carries_the_widgets_client_id(resident: WebChatClient) -> None:
    await resident.send("hi", client_id="11111111-2222-3333-4444-555555555555")
    async with asyncio.timeout(5):
        events = await resident.events(lambda seen: len(messages(seen)) >= 1)
    [echo] = messages(events)
    assert echo["client_id"] == "11111111-2222-3333-4444-555555555555"
    assert json.dumps(echo)  # plain JSON
