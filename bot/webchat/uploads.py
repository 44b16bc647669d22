"""Residents' web chat uploads: checked images, kept with their conversation.

An upload must be one of the profile's types (images only), within its size limit, and decode
as an image of that very type (Pillow; a renamed file or a decompression bomb is refused). It is
kept in Redis with its conversation, expiring with it (``retention.conversations``), so the edge
stays stateless: ``{ns}:webchat:upload:<conversation>:<id>`` (hash: ``type``, ``data`` in
base64, ``at``) and the set ``{ns}:webchat:uploads:<conversation>`` of its ids (export, erase).
The message that carries it names it as the attachment URL
``webchat-upload:<conversation>/<id>`` (:func:`attachment_url`, :func:`parse_attachment_url`).
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
import secrets
import warnings
from typing import Any

from PIL import Image, UnidentifiedImageError

from bot.errors import CouncilError
from bot.keys import key
from bot.webchat.config import WebChatLimits
from bot.webchat.retained import Retained

__all__ = [
    "ATTACHMENT_SCHEME",
    "UploadError",
    "UploadStore",
    "attachment_url",
    "check_image",
    "parse_attachment_url",
]

ATTACHMENT_SCHEME = "webchat-upload:"
"""The attachment URL of an upload: ``webchat-upload:<conversation>/<id>``."""
_URL = re.compile(r"webchat-upload:([0-9a-f]{32})/([0-9a-f]{24})\Z")
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/gif": "GIF"}
_MAX_PIXELS = 40_000_000


class UploadError(CouncilError):
    """An upload was refused.

    Attributes:
        status: The HTTP status (413 too large, 415 wrong type or not an image).
        reason: Why, in words for the widget.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def attachment_url(conversation: str, upload_id: str) -> str:
    """The attachment URL naming an upload of a conversation."""
    return f"{ATTACHMENT_SCHEME}{conversation}/{upload_id}"


def parse_attachment_url(url: str) -> tuple[str, str] | None:
    """The conversation and upload id an attachment URL names (None: not an upload's)."""
    match = _URL.match(url)
    return (match.group(1), match.group(2)) if match else None


def check_image(content_type: str, data: bytes, limits: WebChatLimits) -> None:
    """Refuse anything but a decodable image of an allowed type within the size limit.

    Raises:
        UploadError: 413 too large, 415 type not allowed or not that kind of image.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in limits.upload_types:
        raise UploadError(415, f"only {', '.join(limits.upload_types)} can be sent")
    if len(data) > limits.max_upload_bytes:
        raise UploadError(413, f"the file is over {limits.max_upload_bytes} bytes")
    if not data:
        raise UploadError(415, "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format != _FORMATS[kind]:
                    raise UploadError(415, f"the file is not a {kind} image")
                if image.width * image.height > _MAX_PIXELS:
                    raise UploadError(415, "the image is too large to open")
                image.verify()
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UploadError(415, "the file is not an image that can be opened") from None
    except Image.DecompressionBombWarning:
        raise UploadError(415, "the image is too large to open") from None


class UploadStore(Retained):
    """Keeps checked uploads with their conversation (arguments: :class:`Retained`)."""

    def upload_key(self, conversation: str, upload_id: str) -> str:
        """The hash of one upload."""
        return key(self.namespace, "webchat", "upload", conversation, upload_id)

    def index_key(self, conversation: str) -> str:
        """The set of a conversation's upload ids."""
        return key(self.namespace, "webchat", "uploads", conversation)

    async def save(
        self, conversation: str, content_type: str, data: bytes, limits: WebChatLimits
    ) -> str:
        """Check (in a thread: decoding is CPU work) and keep an upload; return its id.

        Raises:
            UploadError: Refused (see :func:`check_image`).
        """
        await asyncio.to_thread(check_image, content_type, data, limits)
        upload_id = secrets.token_hex(12)
        name = self.upload_key(conversation, upload_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                name,
                mapping={
                    "type": content_type.split(";", 1)[0].strip().lower(),
                    "data": base64.b64encode(data).decode(),
                    "at": str(self.clock()),
                },
            )
            pipe.expire(name, self.keep_seconds)
            pipe.sadd(self.index_key(conversation), upload_id)
            pipe.expire(self.index_key(conversation), self.keep_seconds)
            await pipe.execute()
        return upload_id

    async def exists(self, conversation: str, upload_id: str) -> bool:
        """True when the conversation holds that upload."""
        return bool(await self.redis.exists(self.upload_key(conversation, upload_id)))

    async def get(self, conversation: str, upload_id: str) -> tuple[str, bytes] | None:
        """An upload's type and bytes (None: none such, or expired)."""
        found: Any = await self.redis.hmget(
            self.upload_key(conversation, upload_id), "type", "data"
        )
        if not found[0]:
            return None
        return str(found[0]), base64.b64decode(found[1])

    async def ids(self, conversation: str) -> list[str]:
        """The conversation's upload ids."""
        found: Any = await self.redis.smembers(self.index_key(conversation))
        return sorted(found)
