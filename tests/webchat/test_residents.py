"""A web chat resident's data is in their export, and erasing it leaves nothing behind."""

from __future__ import annotations

import io
import re

import pytest
import redis.asyncio
from PIL import Image

from bot.channels.base import OutboundMessage
from bot.keys import key
from bot.residents.rights import Layout, erase, export, find, leftovers
from bot.testing.webchat import WebChatClient
from bot.web.audit import AuditLog
from bot.webchat.adapter import WebChatAdapter
from bot.webchat.app import WebChat

from .conftest import COUNCIL


@pytest.fixture
def layout(namespace: str) -> Layout:
    return Layout(namespace, f"{namespace}:tracker:", f"{namespace}:lock:")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


async def chat(widget: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str) -> str:
    """A conversation with words, a photo, a reply and a confirmed number; its sender."""
    upload = await widget.http.post(
        "/webchat/uploads", content=png(), headers={**widget.auth, "Content-Type": "image/png"}
    )
    await widget.send(
        "my wheelie bin zebracorn was not emptied", upload_id=upload.json()["upload_id"]
    )
    sender = widget.token.split(".")[2]
    await WebChatAdapter(async_redis, namespace, keep_days=1).send(
        COUNCIL, sender, OutboundMessage("Sorry about that, quokkaberry.")
    )
    return sender


async def test_export_then_erase_a_web_chat_conversation_and_nothing_else(
    resident: WebChatClient,
    webchat: WebChat,
    async_redis: redis.asyncio.Redis,
    namespace: str,
    layout: Layout,
) -> None:
    sender = await chat(resident, async_redis, namespace)
    await webchat.phones.start(sender, "sms", "+447700900123", webchat.config)
    [(_, code_sms)] = await async_redis.xrange(key(namespace, "outbox"))
    code = re.search(r"\d{6}", code_sms["text"])
    assert code is not None
    assert await webchat.phones.confirm(sender, code.group(0), COUNCIL)
    await async_redis.delete(key(namespace, "outbox"))  # the outbox worker sent it
    other = WebChatClient(resident.http, COUNCIL)
    await other.start()
    other_sender = await chat(other, async_redis, namespace)
    conversation = f"webchat:{COUNCIL}:{sender}"

    found = await find(async_redis, layout, conversation)
    assert found.conversations == [conversation]
    by_phone = await find(async_redis, layout, "07700 900123")
    assert by_phone.conversations == [conversation]  # the number they continued on
    held = await export(async_redis, layout, found)
    [mine] = held["conversations"]
    texts = [e["data"].get("text") for e in mine["webchat"]["events"]]
    assert "my wheelie bin zebracorn was not emptied" in texts
    assert "Sorry about that, quokkaberry." in texts
    assert mine["webchat"]["state"]["phone"] == "+447700900123"
    [photo] = mine["webchat"]["uploads"]
    assert photo["type"] == "image/png" and photo["bytes"] == len(png())

    await erase(async_redis, layout, by_phone, AuditLog(async_redis, namespace))
    left = await leftovers(async_redis, layout, by_phone, skip=[key(namespace, "audit")])
    assert left == []
    assert not await async_redis.exists(key(namespace, "webchat", "phone", "447700900123"))
    names = [str(n) async for n in async_redis.scan_iter(match=key(namespace, "webchat", "*"))]
    assert not [n for n in names if sender in n]
    assert not await async_redis.zscore(key(namespace, "webchat", "conversations"), sender)
    # the other resident's conversation is untouched
    assert (await find(async_redis, layout, f"webchat:{COUNCIL}:{other_sender}")).conversations
