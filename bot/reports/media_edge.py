"""The edge's ``GET /media/<token>``: a resident's photo for the council's back office.

An :class:`~bot.edge.app.EdgePart` (:func:`for_edge` builds it when ``COUNCIL_MEDIA_KEY`` is set
and the profile has a ``reports`` section). A token that does not verify, has expired or names
a photo that is gone is one plain 404 (no oracle telling them apart). The photo is served with
``Content-Security-Policy: default-src 'none'``, ``nosniff`` and ``private`` caching only, so a
browser opening it runs nothing and shared caches keep nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot import profile, settings
from bot.reports.media import MediaUrls
from bot.reports.photos import PhotoStore, photo_store
from bot.services import ROOT

__all__ = ["MediaPart", "for_edge"]

_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class MediaPart:
    """Serves stored photos by signed token.

    Args:
        urls: Verifies the tokens.
        store: Where the photos are.
    """

    def __init__(self, urls: MediaUrls, store: PhotoStore) -> None:
        self.urls = urls
        self.store = store

    async def photo(self, request: Request) -> Response:
        """The photo of a valid token, else 404."""
        name = self.urls.verify(request.path_params["token"])
        stored = await self.store.get(name) if name else None
        if stored is None:
            return PlainTextResponse("not found", status_code=404, headers=_HEADERS)
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=300",
            "Content-Security-Policy": "default-src 'none'",
            "Content-Disposition": "inline",
            "Referrer-Policy": "no-referrer",
        }
        return Response(stored.data, media_type=stored.content_type, headers=headers)

    def routes(self) -> Sequence[BaseRoute]:
        """``GET /media/{token}``."""
        return [Route("/media/{token}", self.photo, methods=["GET"])]

    def running(self) -> AbstractAsyncContextManager[None]:
        """Nothing runs in the background."""

        @asynccontextmanager
        async def idle() -> AsyncIterator[None]:
            yield

        return idle()


def for_edge() -> MediaPart | None:
    """The part for this process' settings and profile (None: photos are not served)."""
    shared = settings.current()
    reports = profile.current().reports
    if not shared.media_key or reports is None:
        return None
    ttl = reports.photos.url_ttl_hours * 3600
    return MediaPart(
        MediaUrls(shared.media_key, ttl_seconds=ttl), photo_store(reports.photos, ROOT)
    )
