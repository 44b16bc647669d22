"""Console section: residents' bin collection calendars (public, no sign-in).

The bot's bin-day answer links here (:func:`bot.bins.ics.calendar_url`). A resident subscribes
to ``/bins/calendar/{uprn}.ics`` in their calendar app; the feed covers the next year from
today and is rebuilt from the schedule in Redis on every fetch, so bank-holiday shifts loaded
later reach subscribers on their next refresh. A UPRN and its collection days are not personal
data, so the route needs no account.
"""

from __future__ import annotations

import re

from aiohttp import web

from bot.bins.clock import today
from bot.bins.ics import CALENDAR_PATH, export_calendar
from bot.bins.store import BinStore
from bot.web.app import NAMESPACE, REDIS

__all__ = ["STORE", "setup"]

STORE = web.AppKey("calendar.store", BinStore)
_UPRN = re.compile(r"[0-9]{1,12}")
# Calendar apps poll; an hour keeps load low while holiday changes still arrive the same day.
_CACHE_SECONDS = 3600


async def _calendar(request: web.Request) -> web.StreamResponse:
    uprn = request.match_info["uprn"]
    if not _UPRN.fullmatch(uprn):
        raise web.HTTPNotFound(text="A UPRN is a number of up to 12 digits.")
    source = await request.app[STORE].schedule(uprn)
    if source is None:
        raise web.HTTPNotFound(text=f"No address with UPRN {uprn} is on the collection schedule.")
    body = export_calendar(uprn, source, today())
    return web.Response(
        body=body.encode(),
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Cache-Control": f"public, max-age={_CACHE_SECONDS}",
            "Content-Disposition": f'inline; filename="bins-{uprn}.ics"',
        },
    )


def setup(app: web.Application) -> None:
    """Serve ``GET /bins/calendar/{uprn}.ics`` from the schedule in the app's Redis."""
    app[STORE] = BinStore(app[REDIS], app[NAMESPACE])
    app.router.add_get(CALENDAR_PATH.replace("{uprn}", "{uprn:[^/.]+}"), _calendar)
