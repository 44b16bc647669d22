"""Photos: only decodable images of the allowed types within the size limit are kept."""

from __future__ import annotations

import io

import pytest
import redis.asyncio
from PIL import Image

from bot.channels.base import Attachment, InboundMessage
from bot.channels.media import MediaError, MediaTooLargeError
from bot.keys import key
from bot.testing.webchat import WebChatClient
from bot.webchat.adapter import WebChatAdapter
from bot.webchat.config import WebChatLimits
from bot.webchat.uploads import UploadError, check_image

from .conftest import COUNCIL


def image(kind: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, kind)
    return out.getvalue()


async def upload(
    widget: WebChatClient, body: bytes, content_type: str
) -> tuple[int, dict[str, str]]:
    answer = await widget.http.post(
        "/webchat/uploads",
        content=body,
        headers={**widget.auth, "Content-Type": content_type},
    )
    return answer.status_code, answer.json()


async def test_a_photo_is_kept_and_sent_with_a_message_to_the_inbox(
    resident: WebChatClient, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    status, answer = await upload(resident, image("JPEG"), "image/jpeg")
    assert status == 201
    sent = await resident.send("here it is", upload_id=answer["upload_id"])
    assert sent.status_code == 202
    [(_, fields)] = await async_redis.xrange(key(namespace, "inbox"))
    message = InboundMessage.from_json(fields["message"])
    [attachment] = message.attachments
    assert (attachment.kind, attachment.content_type) == ("image", "image/jpeg")
    # the Rasa side's adapter (problem reports) fetches it like any channel's media
    adapter = WebChatAdapter(async_redis, namespace, keep_days=1)
    media = await adapter.fetch_media(COUNCIL, attachment, max_bytes=1_000_000)
    assert media.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(media.data)).size == (40, 30)
    with pytest.raises(MediaTooLargeError):
        await adapter.fetch_media(COUNCIL, attachment, max_bytes=10)
    with pytest.raises(MediaError):
        await adapter.fetch_media(
            COUNCIL, Attachment("image", "https://x.example/a.jpg"), max_bytes=10
        )


async def test_what_is_not_an_allowed_image_is_refused(resident: WebChatClient) -> None:
    assert (await upload(resident, b"%PDF-1.4 not an image", "application/pdf"))[0] == 415
    assert (await upload(resident, b"GIF89a but not really", "image/gif"))[0] == 415
    # a PNG sent as a JPEG is not the JPEG it claims to be
    status, answer = await upload(resident, image("PNG"), "image/jpeg")
    assert (status, answer["error"]) == (415, "upload")
    too_big = image("PNG", (1200, 1200)) + b"\0" * 200_000
    status, answer = await upload(resident, too_big, "image/png")
    assert (status, answer["error"]) == (413, "too_large")


async def test_an_upload_of_another_conversation_cannot_be_sent(
    resident: WebChatClient,
) -> None:
    _, answer = await upload(resident, image(), "image/png")
    other = WebChatClient(resident.http, COUNCIL)
    await other.start()
    refused = await other.send(upload_id=answer["upload_id"])
    assert (refused.status_code, refused.json()["error"]) == (400, "upload_id")


def test_only_the_configured_types_are_accepted() -> None:
    jpeg_only = WebChatLimits(upload_types=("image/jpeg",))
    check_image("image/jpeg", image("JPEG"), jpeg_only)
    with pytest.raises(UploadError) as refused:
        check_image("image/png", image("PNG"), jpeg_only)
    assert refused.value.status == 415


def test_a_decompression_bomb_is_refused() -> None:
    huge = image("PNG", (8000, 8000))  # 64 megapixels compresses to almost nothing
    with pytest.raises(UploadError, match="too large"):
        check_image("image/png", huge, WebChatLimits())
