"""Fetching a file a resident sent (a photo), shared by the adapters' ``fetch_media``.

Each adapter knows how its provider serves files (Twilio: the account's basic auth on the
media URL; Telegram: ``getFile`` then the file path; Meta and X: the URL in the event) and
calls :func:`download`, which reads at most ``max_bytes`` (a bigger file is refused without
reading the rest) and follows a few redirects, sending credentials only with the first
request. Failures are :class:`MediaError` (``reason`` is safe to log: never a URL, which may
carry an access grant).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.errors import CouncilError

__all__ = [
    "MAX_REDIRECTS",
    "Media",
    "MediaError",
    "MediaTooLargeError",
    "download",
    "same_origin",
]

MAX_REDIRECTS = 3
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Media:
    """A fetched file: its bytes and the type the provider gave (may be empty)."""

    data: bytes = field(repr=False)
    content_type: str = ""


class MediaError(CouncilError):
    """A file could not be fetched from the provider.

    Args:
        channel: The channel it came from.
        reason: What went wrong (no URL, no credentials).
    """

    def __init__(self, channel: str, reason: str) -> None:
        self.channel = channel
        self.reason = reason
        super().__init__(f"{channel}: media not fetched: {reason}")


class MediaTooLargeError(MediaError):
    """The file is bigger than we accept.

    Args:
        channel: The channel it came from.
        limit: The most bytes accepted.
    """

    def __init__(self, channel: str, limit: int) -> None:
        self.limit = limit
        super().__init__(channel, f"larger than {limit} bytes")


def same_origin(url: str, base: str) -> bool:
    """True when ``url`` has the scheme, host and port of ``base``."""
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port) and bool(a.hostname)


async def download(
    channel: str,
    url: str,
    *,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
    timeout: float = 20.0,
) -> Media:
    """GET ``url`` and return at most ``max_bytes`` of it.

    ``headers`` and ``auth`` go only with the request for ``url`` itself: a redirect (Twilio's
    media URLs redirect to a signed CDN address) is followed without them.

    Raises:
        MediaTooLargeError: The file is over ``max_bytes`` (by its length header or its body).
        MediaError: Not http(s), a network failure, too many redirects or a non-200 answer.
    """
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        for hop in range(MAX_REDIRECTS + 1):
            if urlsplit(url).scheme not in {"http", "https"}:
                raise MediaError(channel, "not an http(s) address")
            trusted = hop == 0
            try:
                async with session.get(
                    url,
                    headers=dict(headers or {}) if trusted else None,
                    auth=auth if trusted else None,
                    allow_redirects=False,
                ) as response:
                    if response.status in {301, 302, 303, 307, 308}:
                        url = urljoin(url, response.headers.get("Location", ""))
                        continue
                    if response.status != 200:
                        raise MediaError(channel, f"HTTP {response.status}")
                    if (response.content_length or 0) > max_bytes:
                        raise MediaTooLargeError(channel, max_bytes)
                    body = bytearray()
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        body.extend(chunk)
                        if len(body) > max_bytes:
                            raise MediaTooLargeError(channel, max_bytes)
                    content_type = response.headers.get("Content-Type", "").split(";")[0]
                    return Media(bytes(body), content_type.strip().lower())
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise MediaError(channel, f"network: {type(exc).__name__}") from None
    raise MediaError(channel, "too many redirects")
