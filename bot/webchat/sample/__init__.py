"""A fictional council's website embedding the web chat widget, for tests and the demo.

The pages (``index.html``, ``bins.html`` and the Welsh home page ``cy.html``) carry the
strict content-security policy a council would: scripts, styles and connections from the
edge's origin only. They are served from an origin of their own (another port than the
edge's), so the widget really crosses origins.
``python -m bot.webchat.sample --edge http://127.0.0.1:8000`` serves them for a demo.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

__all__ = ["PAGES", "sample_site"]

_HERE = Path(__file__).parent
PAGES = {"/": "index.html", "/bins": "bins.html", "/cy": "cy.html"}
"""The site's paths and the files behind them."""


def sample_site(edge: str, council: str) -> Starlette:
    """The sample site as an ASGI app, its pages embedding the widget of ``edge`` for ``council``.

    Args:
        edge: The edge's origin (``http://127.0.0.1:8000``): where the script comes from and
            the only other origin the pages' policy allows.
        council: The ``data-council`` id (the profile's ``webchat.council_id``).
    """
    origin = edge.rstrip("/")
    pages = {
        path: (_HERE / name)
        .read_text(encoding="utf-8")
        .replace("__EDGE__", origin)
        .replace("__COUNCIL__", council)
        for path, name in PAGES.items()
    }
    stylesheet = (_HERE / "sample.css").read_bytes()

    async def page(request: Request) -> Response:
        return HTMLResponse(pages[request.url.path], headers={"Cache-Control": "no-store"})

    async def css(request: Request) -> Response:
        return Response(stylesheet, media_type="text/css")

    routes = [Route(path, page) for path in pages] + [Route("/sample.css", css)]
    return Starlette(routes=routes)
