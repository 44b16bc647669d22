"""Unguessable, expiring addresses of residents' photos, for Open311's ``media_url``.

A stored photo's name is 128 random bits (:func:`new_name`); its address is
``{COUNCIL_MEDIA_URL}/media/{name}.{expires}.{signature}`` where the signature is an
HMAC-SHA256 of the name and the expiry (Unix seconds) under ``COUNCIL_MEDIA_KEY``. The public
edge serves ``/media/<token>`` (:mod:`bot.edge.app`) only while the token verifies and has not
expired; a changed key ends every address at once. No personal data is in the address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

__all__ = ["MediaUrls", "new_name"]

_NAME = re.compile(r"[0-9a-f]{32}\.(?:jpg|png|webp)")
_TOKEN = re.compile(
    r"(?P<name>[0-9a-f]{32}\.(?:jpg|png|webp))\.(?P<expires>\d{1,12})\.(?P<sig>[A-Za-z0-9_-]{43})"
)


def new_name(extension: str) -> str:
    """A fresh random name for a stored photo (``extension``: ``jpg``, ``png``, ``webp``)."""
    name = f"{secrets.token_hex(16)}.{extension}"
    if not _NAME.fullmatch(name):
        raise ValueError(f"unsupported extension {extension!r}")
    return name


class MediaUrls:
    """Signs and checks photo addresses.

    Args:
        key: ``COUNCIL_MEDIA_KEY`` (at least 32 characters).
        base_url: ``COUNCIL_MEDIA_URL``, the edge's public base URL.
        ttl_seconds: How long an address works (the profile's ``photos.url_ttl_hours``).
        clock: Unix seconds.
    """

    def __init__(
        self,
        key: str,
        base_url: str = "",
        ttl_seconds: int = 72 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 32:
            raise ValueError("the media key must have at least 32 characters")
        self._key = key.encode()
        self.base_url = base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def _signature(self, name: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{name}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def token(self, name: str) -> str:
        """The signed token of photo ``name``, valid for :attr:`ttl_seconds` from now."""
        if not _NAME.fullmatch(name):
            raise ValueError("not a photo name")
        expires = int(self.clock()) + self.ttl_seconds
        return f"{name}.{expires}.{self._signature(name, expires)}"

    def url(self, name: str) -> str:
        """The public address of photo ``name`` (``{base_url}/media/{token}``)."""
        return f"{self.base_url}/media/{self.token(name)}"

    def verify(self, token: str) -> str | None:
        """The photo name of a valid, unexpired ``token``; None otherwise (constant-time)."""
        found = _TOKEN.fullmatch(token)
        if found is None:
            return None
        name, expires = found["name"], int(found["expires"])
        if not hmac.compare_digest(found["sig"], self._signature(name, expires)):
            return None
        return name if expires > self.clock() else None
