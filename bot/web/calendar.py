"""Console section: residents' bin collection calendars (public, no sign-in).

The bot's bin-day answer links here (:func:`bot.bins.ics.calendar_url`). A resident subscribes
to ``/bins/calendar/{uprn}.ics`` in their calendar app; the feed covers the next year from
today and is rebuilt from the schedule in Redis on every fetch, so bank-holiday shifts loaded
later reach subscribers on their next refresh. A UPRN and its collection days are not personal
data, so the route needs no account.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from bot.bins.clock import today
from bot.bins.ics import CALENDAR_PATH, export_calendar
from bot.bins.store import BinStore
from bot.web.app import NAMESPACE, REDIS, AppKey, ConsoleApp, app_of

__all__ = ["STORE", "setup"]

STORE = AppKey[BinStore]("calendar.store")
_UPRN = re.compile(r"[0-9]{1,12}")
# Calendar apps poll; an hour keeps load low while holiday changes still arrive the same day.
_CACHE_SECONDS = 3600


async def _calendar(request: Request) -> Response:
    uprn = str(request.path_params["uprn"])
    if not _UPRN.fullmatch(uprn):
        raise HTTPException(404, "A UPRN is a number of up to 12 digits.")
    source = await app_of(request)[STORE].schedule(uprn)
    if source is None:
        raise HTTPException(404, f"No address with UPRN {uprn} is on the collection schedule.")
    body = export_calendar(uprn, source, today())
    return Response(
        body,
        media_type="text/calendar",
        headers={
            "Cache-Control": f"public, max-age={_CACHE_SECONDS}",
            "Content-Disposition": f'inline; filename="bins-{uprn}.ics"',
        },
    )


def setup(app: ConsoleApp) -> None:
    """Serve ``GET /bins/calendar/{uprn}.ics`` from the schedule in the app's Redis."""
    app[STORE] = BinStore(app[REDIS], app[NAMESPACE])
    app.add_route(CALENDAR_PATH, _calendar)
