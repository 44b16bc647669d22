"""A local Open311 GeoReport v2 server for tests, the benchmark and the demo (``make run``).

:class:`Open311StandIn` keeps services, definitions and requests in memory and serves the
GeoReport v2 JSON API (https://wiki.open311.org/GeoReport_v2) as a Starlette app under
``/open311/v2``: ``services.json``, ``services/<code>.json``, ``POST requests.json`` (an id at
once, or a token in ``batch`` mode), ``tokens/<token>.json``, ``GET requests.json`` (ids,
service, status, dates, and the common ``lat``/``long``/``radius`` extension) and
``requests/<id>.json``. Errors are the specification's ``[{"code", "description"}]``.

Tests change a request's status (:meth:`Open311StandIn.set_status`) and inject failures
(:class:`Faults`): a share of submissions failing once (before or after the request is
created), a period when every call gets 503, slow answers, a fixed status (401), garbage.

:func:`serving` runs it in the test's event loop on an ephemeral loopback port;
:class:`StandInThread` on a loop of its own (the demo, the benchmark).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.reports.open311 import MAX_DESCRIPTION, distance_m

__all__ = [
    "DEMO_DEFINITIONS",
    "DEMO_SERVICES",
    "PREFIX",
    "Faults",
    "Open311StandIn",
    "StandInThread",
    "StoredRequest",
    "serving",
]

_log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
"""Where the API is served (the profile's ``open311.endpoint`` ends with it)."""

DEMO_SERVICES: list[dict[str, Any]] = [
    {
        "service_code": "001",
        "service_name": "Pothole",
        "description": "A hole or crack in a road, pavement or cycle path.",
        "metadata": True,
        "type": "realtime",
        "keywords": "pothole, road, pavement, crack",
        "group": "highways",
    },
    {
        "service_code": "002",
        "service_name": "Street light not working",
        "description": "A street light that is out, flickering or on during the day.",
        "metadata": True,
        "type": "realtime",
        "keywords": "street light, lamp post, light",
        "group": "highways",
    },
    {
        "service_code": "003",
        "service_name": "Fly-tipping",
        "description": "Rubbish dumped on public land.",
        "metadata": True,
        "type": "realtime",
        "keywords": "fly-tipping, dumped rubbish, waste",
        "group": "environment",
    },
]
"""The demo council's services (codes as the profile's ``reports.services`` name them)."""

DEMO_DEFINITIONS: dict[str, dict[str, Any]] = {
    "001": {
        "service_code": "001",
        "attributes": [
            {
                "variable": True,
                "code": "size",
                "datatype": "singlevaluelist",
                "required": True,
                "datatype_description": None,
                "order": 1,
                "description": "How big is the pothole?",
                "values": [
                    {"key": "small", "name": "Smaller than a dinner plate"},
                    {"key": "large", "name": "Larger than a dinner plate"},
                ],
            }
        ],
    },
    "002": {
        "service_code": "002",
        "attributes": [
            {
                "variable": True,
                "code": "column_number",
                "datatype": "string",
                "required": False,
                "datatype_description": "The number on the lamp post, if you can see it",
                "order": 1,
                "description": "What is the number on the lamp post?",
                "values": [],
            }
        ],
    },
    "003": {
        "service_code": "003",
        "attributes": [
            {
                "variable": True,
                "code": "waste_type",
                "datatype": "singlevaluelist",
                "required": True,
                "datatype_description": None,
                "order": 1,
                "description": "What kind of waste is it?",
                "values": [
                    {"key": "household", "name": "Household rubbish"},
                    {"key": "garden", "name": "Garden waste"},
                    {"key": "building", "name": "Building rubble"},
                    {"key": "hazardous", "name": "Asbestos, chemicals or needles"},
                ],
            },
            {
                "variable": True,
                "code": "amount",
                "datatype": "singlevaluelist",
                "required": True,
                "datatype_description": None,
                "order": 2,
                "description": "How much is there?",
                "values": [
                    {"key": "bag", "name": "A bag or two"},
                    {"key": "car", "name": "A car boot load"},
                    {"key": "van", "name": "A van load or more"},
                ],
            },
        ],
    },
}
"""The demo services' questions (GeoReport v2 service definitions)."""


@dataclass
class Faults:
    """Failures the stand-in injects.

    Attributes:
        fail_once_ratio: Share of submissions (0..1) answered 500 on their first POST, before
            anything is created (chosen by the description's hash, so the retry succeeds).
        fail_after_create_ratio: Share answered 500 on their first POST *after* the request
            was created (an ambiguous failure: the client must not create it twice).
        down_until: Unix time until which every call gets 503 (0: up).
        delay: Seconds every answer waits.
        status: Every call gets this HTTP status (401, 500...; 0: none).
        garbage: Every call gets 200 with an HTML page.
        general_errors: The next this many POSTs get GeoReport v2's "400 - General Service
            Error" before anything is created (the CRM is down).
        hang_after_create: Seconds a POST waits *after* creating the request before it
            answers (longer than the client's timeout: accepted, then timed out).
        search_status: ``GET requests`` by service and dates (a search, not by id) gets this
            HTTP status (0: answered), as on a server that cannot be searched.
    """

    fail_once_ratio: float = 0.0
    fail_after_create_ratio: float = 0.0
    down_until: float = 0.0
    delay: float = 0.0
    status: int = 0
    garbage: bool = False
    general_errors: int = 0
    hang_after_create: float = 0.0
    search_status: int = 0


@dataclass
class StoredRequest:
    """One service request the stand-in holds."""

    service_request_id: str
    service_code: str
    service_name: str
    description: str
    lat: float | None
    long: float | None
    address: str
    media_url: str
    attributes: dict[str, str | list[str]]
    address_id: str
    contact: dict[str, str]
    requested_datetime: str
    updated_datetime: str
    status: str = "open"
    status_notes: str = ""
    requested_at: float = 0.0

    def public(self) -> dict[str, Any]:
        """The request as ``GET requests`` shows it."""
        return {
            "service_request_id": self.service_request_id,
            "status": self.status,
            "status_notes": self.status_notes or None,
            "service_name": self.service_name,
            "service_code": self.service_code,
            "description": self.description,
            "agency_responsible": None,
            "service_notice": None,
            "requested_datetime": self.requested_datetime,
            "updated_datetime": self.updated_datetime,
            "expected_datetime": None,
            "address": self.address or None,
            "address_id": self.address_id or None,
            "zipcode": None,
            "lat": self.lat,
            "long": self.long,
            "media_url": self.media_url or None,
        }


def _answers(items: Iterable[tuple[str, Any]]) -> dict[str, str | list[str]]:
    """``attribute[code]=v`` as text, ``attribute[code][]=v`` repeated as a list (GeoReport v2)."""
    answers: dict[str, str | list[str]] = {}
    for name, value in items:
        if not (name.startswith("attribute[") and name.endswith("]")):
            continue
        if name.endswith("][]"):
            listed = answers.setdefault(name[len("attribute[") : -3], [])
            if isinstance(listed, list):
                listed.append(str(value))
        else:
            answers[name[len("attribute[") : -1]] = str(value)
    return answers


def _check_answers(
    attributes: Iterable[Mapping[str, Any]], answers: Mapping[str, str | list[str]]
) -> str:
    """What is wrong with the answers to a definition's questions ("" when nothing is)."""
    for attribute in attributes:
        code = str(attribute["code"])
        given = answers.get(code)
        if attribute.get("required") and attribute.get("variable", True) and not given:
            return f"attribute {code} is required"
        keys = {str(v.get("key")) for v in attribute.get("values") or ()}
        listed = given if isinstance(given, list) else [given] if given else []
        datatype = attribute.get("datatype")
        if datatype in {"singlevaluelist", "multivaluelist"} and not set(listed) <= keys:
            return f"attribute {code} has a value that is not one of its values"
        if datatype == "singlevaluelist" and isinstance(given, list):
            return f"attribute {code} takes one value"
    return ""


def _now_w3(moment: float | None = None) -> str:
    return datetime.fromtimestamp(moment or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _errors(status: int, description: str) -> JSONResponse:
    return JSONResponse([{"code": status, "description": description}], status_code=status)


def _share(text: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _parse_w3(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Open311StandIn:
    """An in-memory GeoReport v2 server (see the module docstring).

    Args:
        services: The services list (default: the demo council's).
        definitions: Service definitions by code.
        api_key: The key ``POST requests`` must carry (empty: any).
        jurisdiction_id: The jurisdiction it serves (empty: any).
        mode: ``realtime`` (an id at once) or ``batch`` (a token, exchanged for the id once
            ``token_delay`` seconds have passed).
        token_delay: Seconds before a token has its id (batch mode).
    """

    def __init__(
        self,
        services: list[dict[str, Any]] | None = None,
        definitions: dict[str, dict[str, Any]] | None = None,
        *,
        api_key: str = "",
        jurisdiction_id: str = "",
        mode: str = "realtime",
        token_delay: float = 0.0,
    ) -> None:
        self.services = list(DEMO_SERVICES if services is None else services)
        self.definitions = dict(DEMO_DEFINITIONS if definitions is None else definitions)
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        self.mode = mode
        self.token_delay = token_delay
        self.faults = Faults()
        self.requests: dict[str, StoredRequest] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (request id, ready at)
        self.posts = 0  # POST requests received (failed ones included)
        self.calls: list[tuple[str, str]] = []  # (method, path) of every call
        self._failed_once: set[str] = set()
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route(f"{PREFIX}/services.json", self._services),
                Route(f"{PREFIX}/services/{{code}}.json", self._definition),
                Route(f"{PREFIX}/requests.json", self._requests, methods=["GET", "POST"]),
                Route(f"{PREFIX}/requests/{{request_id}}.json", self._request),
                Route(f"{PREFIX}/tokens/{{token}}.json", self._token),
            ]
        )

    # -- what tests do -----------------------------------------------------------------

    def set_status(self, request_id: str, status: str, notes: str = "") -> StoredRequest:
        """Change a request's status (``open`` | ``closed``) and notes; bump its update time."""
        with self._lock:
            stored = self.requests[request_id]
            stored.status = status
            stored.status_notes = notes
            stored.updated_datetime = _now_w3()
            return replace(stored)

    def add_request(
        self, service_code: str, lat: float, long: float, *, requested_at: float | None = None
    ) -> StoredRequest:
        """An open request made elsewhere (for the duplicate offer)."""
        with self._lock:
            return self._create(
                {"service_code": service_code, "lat": str(lat), "long": str(long)},
                "Reported on the council's website.",
                requested_at or time.time(),
            )

    def by_marker(self, line: str) -> list[StoredRequest]:
        """Every request whose description has ``line`` (our reports' ``Ref:`` marker)."""
        return [r for r in self.requests.values() if line in r.description.splitlines()]

    # -- the API ---------------------------------------------------------------------

    async def _faulty(self, request: Request) -> Response | None:
        self.calls.append((request.method, request.url.path))
        faults = self.faults
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.down_until > time.time():
            return _errors(503, "Service unavailable (maintenance)")
        if faults.status:
            return _errors(faults.status, "Injected failure")
        if faults.garbage:
            return PlainTextResponse("<html><body>Proxy error</body></html>", 200)
        if self.jurisdiction_id and request.query_params.get("jurisdiction_id", "") not in (
            "",
            self.jurisdiction_id,
        ):
            return _errors(404, "jurisdiction_id not found")
        return None

    async def _services(self, request: Request) -> Response:
        return await self._faulty(request) or JSONResponse(self.services)

    async def _definition(self, request: Request) -> Response:
        failed = await self._faulty(request)
        if failed:
            return failed
        definition = self.definitions.get(request.path_params["code"])
        if definition is None:
            return _errors(404, "service_code not found")
        return JSONResponse(definition)

    async def _request(self, request: Request) -> Response:
        failed = await self._faulty(request)
        if failed:
            return failed
        stored = self.requests.get(request.path_params["request_id"])
        if stored is None:
            return _errors(404, "service_request_id not found")
        return JSONResponse([stored.public()])

    async def _token(self, request: Request) -> Response:
        failed = await self._faulty(request)
        if failed:
            return failed
        token = request.path_params["token"]
        if token not in self.tokens:
            return _errors(404, "token not found")
        request_id, ready_at = self.tokens[token]
        if time.time() < ready_at:
            return JSONResponse([{"token": token}])
        return JSONResponse([{"service_request_id": request_id, "token": token}])

    async def _requests(self, request: Request) -> Response:
        failed = await self._faulty(request)
        if failed:
            return failed
        if request.method == "POST":
            return await self._post(request)
        query = request.query_params
        found = list(self.requests.values())
        ids = [i for i in query.get("service_request_id", "").split(",") if i]
        if not ids and self.faults.search_status:
            return _errors(self.faults.search_status, "Injected failure of the search")
        if ids:
            found = [self.requests[i] for i in ids if i in self.requests]
        else:
            codes = [c for c in query.get("service_code", "").split(",") if c]
            statuses = [s for s in query.get("status", "").split(",") if s]
            start = _parse_w3(query.get("start_date", ""))
            end = _parse_w3(query.get("end_date", ""))
            if start is None:
                start = time.time() - 90 * 86400
            found = [
                r
                for r in found
                if (not codes or r.service_code in codes)
                and (not statuses or r.status in statuses)
                and r.requested_at >= start
                and (end is None or r.requested_at <= end)
            ]
            lat, long, radius = query.get("lat"), query.get("long"), query.get("radius")
            if lat and long and radius:
                try:
                    here = (float(lat), float(long), float(radius))
                except ValueError:
                    return _errors(400, "lat, long and radius must be numbers")
                found = [
                    r
                    for r in found
                    if r.lat is not None
                    and r.long is not None
                    and distance_m(here[0], here[1], r.lat, r.long) <= here[2]
                ]
            found = found[-1000:]  # the specification's default limit
        return JSONResponse([r.public() for r in found])

    async def _post(self, request: Request) -> Response:
        self.posts += 1
        form = await request.form()
        fields = {k: str(v) for k, v in form.multi_items()}
        answers = _answers(form.multi_items())
        if self.api_key and fields.get("api_key", "") != self.api_key:
            return _errors(403, "Invalid api_key received -- can't proceed with create_request.")
        code = fields.get("service_code", "")
        if not code:
            return _errors(400, "service_code was not provided")
        if not any(s["service_code"] == code for s in self.services):
            return _errors(404, "service_code not found")
        has_position = fields.get("lat") and fields.get("long")
        if not has_position and not fields.get("address_string") and not fields.get("address_id"):
            return _errors(
                400, "a location (lat and long, address_string or address_id) is required"
            )
        description = fields.get("description", "")
        if len(description) > MAX_DESCRIPTION:
            return _errors(400, f"description is longer than {MAX_DESCRIPTION} characters")
        problem = _check_answers(self.definitions.get(code, {}).get("attributes", []), answers)
        if problem:
            return _errors(400, problem)
        faults = self.faults
        if faults.general_errors > 0:
            faults.general_errors -= 1
            return _errors(400, "General Service Error")
        first_time = description not in self._failed_once
        if first_time and _share(description, "before") < faults.fail_once_ratio:
            self._failed_once.add(description)
            return _errors(500, "Injected failure before the request was created")
        with self._lock:
            stored = self._create(fields, description, time.time(), answers)
        _log.info(
            "Open311 stand-in: request %s received (%s, %s)",
            stored.service_request_id,
            stored.service_name,
            "position" if has_position else "address",
        )
        if faults.hang_after_create:
            await asyncio.sleep(faults.hang_after_create)
        if first_time and _share(description, "after") < faults.fail_after_create_ratio:
            self._failed_once.add(description)
            return _errors(500, "Injected failure after the request was created")
        if self.mode == "batch":
            token = f"T{stored.service_request_id}"
            self.tokens[token] = (stored.service_request_id, time.time() + self.token_delay)
            return JSONResponse([{"token": token, "service_notice": None, "account_id": None}])
        return JSONResponse(
            [
                {
                    "service_request_id": stored.service_request_id,
                    "service_notice": "We aim to inspect within 5 working days.",
                    "account_id": None,
                }
            ]
        )

    def _create(
        self,
        fields: dict[str, str],
        description: str,
        at: float,
        answers: dict[str, str | list[str]] | None = None,
    ) -> StoredRequest:
        code = fields["service_code"]
        service = next(s for s in self.services if s["service_code"] == code)

        def number(name: str) -> float | None:
            try:
                return float(fields[name]) if fields.get(name) else None
            except ValueError:
                return None

        stored = StoredRequest(
            service_request_id=str(next(self._ids)),
            service_code=code,
            service_name=str(service.get("service_name", code)),
            description=description,
            lat=number("lat"),
            long=number("long"),
            address=fields.get("address_string", ""),
            address_id=fields.get("address_id", ""),
            media_url=fields.get("media_url", ""),
            attributes=answers or {},
            contact={
                k: fields[k] for k in ("email", "phone", "first_name", "last_name") if fields.get(k)
            },
            requested_datetime=_now_w3(at),
            updated_datetime=_now_w3(at),
            requested_at=at,
        )
        self.requests[stored.service_request_id] = stored
        return stored

    def snapshot(self) -> list[dict[str, Any]]:
        """Every stored request as a dict (for assertions and logs)."""
        return [asdict(r) for r in self.requests.values()]


def _bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def _server(app: Starlette) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, ws="none", http="h11"
        )
    )


@asynccontextmanager
async def serving(standin: Open311StandIn) -> AsyncIterator[str]:
    """Serve ``standin`` in this event loop on a free loopback port; yield its endpoint URL."""
    # imported here: the tests' server helper needs Playwright, which the demo does not have
    from bot.testing.browser import serve

    async with serve(standin.app) as server:
        yield server.make_url(PREFIX)


@dataclass
class StandInThread:
    """The stand-in served on a thread with an event loop of its own.

    Args:
        standin: What to serve.
        port: The loopback port (0: a free one).
    """

    standin: Open311StandIn
    port: int = 0
    url: str = ""
    _thread: threading.Thread | None = field(default=None, repr=False)
    _server: uvicorn.Server | None = field(default=None, repr=False)

    def start(self) -> str:
        """Start serving; return the endpoint URL."""
        sock = _bound_socket(self.port)
        self.port = int(sock.getsockname()[1])
        self._server = _server(self.standin.app)
        server = self._server

        def run() -> None:
            asyncio.run(server.serve([sock]))
            sock.close()

        self._thread = threading.Thread(target=run, name="open311 stand-in", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Open311 stand-in did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.port}{PREFIX}"
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
