"""An Open311 GeoReport v2 client (https://wiki.open311.org/GeoReport_v2), JSON format.

:class:`Open311Client` calls ``services.json`` (kept in Redis for ``cache_seconds``),
``services/<code>.json``, ``POST requests.json``, ``tokens/<token>.json`` and
``GET requests.json``. Every answer is checked; what cannot be understood, a refusal or no
answer at all raises :class:`~bot.errors.BackOfficeError` (HTTP status, reason, and whether
the call may have been carried out anyway: ``ambiguous``). Identifiers are read as text
whether the server sends ``293944`` or ``"293944"`` (the specification's own examples use
numbers).

A report's description ends with a marker line (:func:`marker`: ``Ref: <report_id>``): after
an ambiguous failure the outbox looks for the marker among the service's recent requests
(:meth:`Open311Client.find_marked`) before posting again, so a report is submitted once.

``lat``/``long``/``radius`` on ``GET requests`` are not in GeoReport v2 itself; they are the
common extension (v2.1 draft, FixMyStreet, Mark-a-Spot) that :func:`nearby_open` needs. A
server without it answers with all the service's open requests, and :func:`nearby_open`
keeps only those within the radius.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import redis.asyncio

from bot.errors import BackOfficeError
from bot.keys import key
from bot.reports.model import ProblemReport

__all__ = [
    "MAX_DESCRIPTION",
    "Attribute",
    "GeneralServiceError",
    "NearbyRequest",
    "Open311Client",
    "RetryableError",
    "Service",
    "ServiceDefinition",
    "ServiceRequest",
    "Submitted",
    "distance_m",
    "marker",
    "nearby_open",
    "post_fields",
    "refuses_request",
    "service_request",
]

MAX_DESCRIPTION = 4000
"""GeoReport v2: the description is free text of at most 4,000 characters."""

_EARTH_RADIUS_M = 6_371_008.8


def marker(report_id: str) -> str:
    """The line that ends a report's description, found again by :meth:`find_marked`."""
    return f"Ref: {report_id}"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class Service:
    """One service (report category) of ``GET services``."""

    code: str
    name: str
    description: str = ""
    metadata: bool = False
    type: str = "realtime"
    keywords: tuple[str, ...] = ()
    group: str = ""


@dataclass(frozen=True)
class Attribute:
    """One question of a service definition (``attributes``).

    ``values`` are ``(key, name)`` pairs for ``singlevaluelist``/``multivaluelist``;
    ``variable`` false means the attribute is only information to show.
    """

    code: str
    datatype: str
    description: str
    required: bool = False
    variable: bool = True
    order: int = 0
    datatype_description: str = ""
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ServiceDefinition:
    """A service's extra questions, in their ``order``."""

    service_code: str
    attributes: tuple[Attribute, ...]


@dataclass(frozen=True)
class Submitted:
    """What ``POST requests`` answered.

    An id, or a token to exchange for one later, or neither (a ``blackbox`` service).
    """

    service_request_id: str | None
    token: str | None
    service_notice: str = ""


@dataclass(frozen=True)
class ServiceRequest:
    """One request of ``GET requests`` (status ``open`` or ``closed``)."""

    service_request_id: str
    status: str
    service_code: str = ""
    service_name: str = ""
    status_notes: str = ""
    description: str = ""
    requested_datetime: str = ""
    updated_datetime: str = ""
    expected_datetime: str = ""
    address: str = ""
    lat: float | None = None
    long: float | None = None
    media_url: str = ""
    agency_responsible: str = ""
    service_notice: str = ""


@dataclass(frozen=True)
class NearbyRequest:
    """An open request near a new report (offered to the resident as a duplicate)."""

    service_request_id: str
    distance_m: float
    requested_datetime: str
    service_code: str = ""
    service_name: str = ""
    description: str = ""
    address: str = ""
    status: str = "open"


# GeoReport v2, POST Service Request, "Possible Errors": a 400 "specified in error response"
# names the argument at fault (service_code, jurisdiction_id; the required attributes and
# location of the "Required Arguments"): the same request is refused again, a person must
# look. "400 - General Service Error (Any failure during create request processing, eg CRM
# is down)" names none: the same request may well be taken later.
_ARGUMENTS = re.compile(
    r"\b(service_code|jurisdiction_id|attribute|attributes|lat|address_string|address_id|"
    r"location|media_url|email|phone|first_name|last_name|device_id|account_id|required)\b"
    r"|\bdescription\b.*\b(long|characters)\b",
    re.IGNORECASE,
)


class RetryableError(BackOfficeError):
    """A failure worth trying again, whatever its HTTP status."""

    @property
    def retryable(self) -> bool:
        """Always."""
        return True


class GeneralServiceError(RetryableError):
    """A 400 that refuses nothing in the request (a GeoReport v2 "General Service Error")."""


def _error_list(response: httpx.Response) -> list[tuple[str, str]]:
    """The ``(code, description)`` pairs of a GeoReport v2 error body (empty: not one)."""
    try:
        body = response.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body]
    return [
        (_text(item.get("code")), _text(item.get("description")))
        for item in items
        if isinstance(item, Mapping) and item.get("description")
    ]


def refuses_request(errors: Sequence[tuple[str, str]]) -> bool:
    """Whether a 400's errors refuse the request itself (sending it again cannot help).

    True when an error names an argument of the request (or its code is 404: a
    ``service_code`` or ``jurisdiction_id`` not found); False for a general service error or
    a body that says nothing (see :data:`_ARGUMENTS`).
    """
    return any(code == "404" or _ARGUMENTS.search(text) for code, text in errors)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _flag(value: Any) -> bool:
    return value is True or _text(value).lower() == "true"


def post_fields(
    report: ProblemReport, jurisdiction_id: str = "", api_key: str = ""
) -> list[tuple[str, str]]:
    """The form fields of ``POST requests`` for ``report`` (contact only when agreed).

    The description is cut to :data:`MAX_DESCRIPTION` characters with the marker line kept.
    A list answer (``multivaluelist``) is sent as one ``attribute[code][]`` field per value.
    """
    fields: list[tuple[str, str]] = []
    if api_key:
        fields.append(("api_key", api_key))
    if jurisdiction_id:
        fields.append(("jurisdiction_id", jurisdiction_id))
    fields.append(("service_code", report.service_code))
    if report.lat is not None and report.long is not None:
        fields += [("lat", repr(report.lat)), ("long", repr(report.long))]
    if report.address_string:
        fields.append(("address_string", report.address_string))
    tail = "\n\n" + marker(report.report_id)
    body = report.description.strip()[: MAX_DESCRIPTION - len(tail)]
    fields.append(("description", body + tail))
    if report.media_url:
        fields.append(("media_url", report.media_url))
    for code, value in sorted(report.attributes.items()):
        if isinstance(value, list):  # multivaluelist: attribute[code][]=v1&attribute[code][]=v2
            fields += [(f"attribute[{code}][]", item) for item in value]
        else:
            fields.append((f"attribute[{code}]", value))
    if report.contact is not None:
        contact = report.contact
        for name, value in (
            ("email", contact.email),
            ("phone", contact.phone),
            ("first_name", contact.first_name),
            ("last_name", contact.last_name),
        ):
            if value:
                fields.append((name, value))
    return fields


def _service(item: Mapping[str, Any]) -> Service:
    keywords = tuple(k.strip() for k in _text(item.get("keywords")).split(",") if k.strip())
    return Service(
        code=_text(item["service_code"]),
        name=_text(item.get("service_name")) or _text(item["service_code"]),
        description=_text(item.get("description")),
        metadata=_flag(item.get("metadata")),
        type=_text(item.get("type")) or "realtime",
        keywords=keywords,
        group=_text(item.get("group")),
    )


def _attribute(item: Mapping[str, Any]) -> Attribute:
    values = tuple(
        (_text(v.get("key")), _text(v.get("name")) or _text(v.get("key")))
        for v in item.get("values") or ()
        if isinstance(v, Mapping)
    )
    order = item.get("order")
    return Attribute(
        code=_text(item["code"]),
        datatype=_text(item.get("datatype")) or "string",
        description=_text(item.get("description")),
        required=_flag(item.get("required")),
        variable=item.get("variable") is None or _flag(item.get("variable")),
        order=int(order) if isinstance(order, int) and not isinstance(order, bool) else 0,
        datatype_description=_text(item.get("datatype_description")),
        values=values,
    )


def service_request(item: Mapping[str, Any]) -> ServiceRequest:
    """A request of a GeoReport v2 answer (``GET requests`` or a push), ids read as text."""
    return ServiceRequest(
        service_request_id=_text(item["service_request_id"]),
        status=_text(item.get("status")).lower() or "open",
        service_code=_text(item.get("service_code")),
        service_name=_text(item.get("service_name")),
        status_notes=_text(item.get("status_notes")),
        description=_text(item.get("description")),
        requested_datetime=_text(item.get("requested_datetime")),
        updated_datetime=_text(item.get("updated_datetime")),
        expected_datetime=_text(item.get("expected_datetime")),
        address=_text(item.get("address")),
        lat=_float(item.get("lat")),
        long=_float(item.get("long")),
        media_url=_text(item.get("media_url")),
        agency_responsible=_text(item.get("agency_responsible")),
        service_notice=_text(item.get("service_notice")),
    )


def _w3(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Open311Client:
    """Calls one Open311 GeoReport v2 endpoint.

    Args:
        base_url: The endpoint (``https://council.example/open311/v2``).
        jurisdiction_id: Sent with every call when not empty.
        api_key: Sent with ``POST requests`` (from the environment, never the profile).
        transport: An httpx transport (tests pass ``httpx.ASGITransport`` or a mock).
        timeout: Seconds for each call.
        redis: Where the services list is cached (None: not cached).
        namespace: Key namespace of the cache.
        cache_seconds: How long the services list is kept.
    """

    def __init__(
        self,
        base_url: str,
        jurisdiction_id: str = "",
        api_key: str = "",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        redis: redis.asyncio.Redis | None = None,
        namespace: str = "cr",
        cache_seconds: int = 3600,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.jurisdiction_id = jurisdiction_id
        self.api_key = api_key
        self.target = f"open311 {self.base_url}"
        self.redis = redis
        self.cache_key = key(namespace, "reports", "services", self.base_url, jurisdiction_id)
        self.cache_seconds = cache_seconds
        self.http = httpx.AsyncClient(
            transport=transport, timeout=timeout, headers={"Accept": "application/json"}
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self.http.aclose()

    async def __aenter__(self) -> Open311Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _params(self, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        base = [("jurisdiction_id", self.jurisdiction_id)] if self.jurisdiction_id else []
        return [*base, *extra]

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        form: Sequence[tuple[str, str]] | None = None,
    ) -> Any:
        url = f"{self.base_url}/{path}"
        sent = False
        try:
            if form is None:
                response = await self.http.request(method, url, params=list(params))
            else:
                response = await self.http.request(
                    method,
                    url,
                    content=str(httpx.QueryParams(list(form))).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise BackOfficeError(self.target, 0, f"not reachable ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            sent = True  # the request may have reached the server
            raise BackOfficeError(
                self.target, 0, f"no answer ({type(exc).__name__})", sent
            ) from None
        status = response.status_code
        if status == 400 and not refuses_request(_error_list(response)):
            # GeoReport v2's "General Service Error" (the CRM is down...): worth trying again,
            # and it may have been part-processed, so look for it before posting again
            raise GeneralServiceError(self.target, status, self._error_text(response), True)
        if status >= 400:
            raise BackOfficeError(self.target, status, self._error_text(response), status >= 500)
        try:
            return response.json()
        except ValueError:
            raise BackOfficeError(
                self.target, status, "the answer is not JSON", method == "POST"
            ) from None

    @staticmethod
    def _error_text(response: httpx.Response) -> str:
        # GeoReport v2 errors: [{"code": 403, "description": "..."}]; anything else: the reason
        described = "; ".join(description for _, description in _error_list(response))
        return described[:300] if described else response.reason_phrase or "error"

    def _garbage(self, what: str, ambiguous: bool = False) -> BackOfficeError:
        return BackOfficeError(self.target, 200, f"unexpected answer to {what}", ambiguous)

    async def services(self) -> list[Service]:
        """The services list (``GET services.json``), from the Redis cache while fresh."""
        if self.redis is not None:
            cached = await self.redis.get(self.cache_key)
            if cached:
                return [
                    Service(**{**s, "keywords": tuple(s["keywords"])}) for s in json.loads(cached)
                ]
        body = await self._call("GET", "services.json", params=self._params())
        try:
            found = [_service(item) for item in body]
        except (KeyError, TypeError, AttributeError):
            raise self._garbage("GET services") from None
        if self.redis is not None:
            await self.redis.set(
                self.cache_key,
                json.dumps([s.__dict__ for s in found]),
                ex=self.cache_seconds,
            )
        return found

    async def definition(self, service_code: str) -> ServiceDefinition:
        """A service's questions (``GET services/<code>.json``), sorted by ``order``."""
        body = await self._call(
            "GET",
            f"services/{quote(service_code, safe='')}.json",
            params=self._params(),
        )
        try:
            attributes = sorted(
                (_attribute(item) for item in body.get("attributes") or ()), key=lambda a: a.order
            )
            return ServiceDefinition(
                _text(body.get("service_code")) or service_code, tuple(attributes)
            )
        except (KeyError, TypeError, AttributeError):
            raise self._garbage("GET service definition") from None

    async def submit(self, report: ProblemReport) -> Submitted:
        """``POST requests.json``: the council's id, or a token to exchange later.

        Raises:
            BackOfficeError: Refused, not answered or answered with garbage (``ambiguous``
                when the request may have been created all the same).
        """
        body = await self._call(
            "POST", "requests.json", form=post_fields(report, self.jurisdiction_id, self.api_key)
        )
        # the answer is a list of one request; an object with an id or a token is accepted
        # too; a request with neither is a ``blackbox`` service's answer
        if isinstance(body, list) and body and isinstance(body[0], Mapping):
            first = body[0]
        elif isinstance(body, Mapping) and ("service_request_id" in body or "token" in body):
            first = body
        else:
            raise self._garbage("POST requests", ambiguous=True)
        request_id = _text(first.get("service_request_id")) or None
        token = _text(first.get("token")) or None
        return Submitted(
            request_id, None if request_id else token, _text(first.get("service_notice"))
        )

    async def token(self, token: str) -> str | None:
        """The id a token stands for (``GET tokens/<token>.json``); None while not yet known."""
        try:
            body = await self._call("GET", f"tokens/{token}.json", params=self._params())
        except BackOfficeError as exc:
            if exc.status == 404:  # not processed yet, as some servers answer
                return None
            raise
        try:
            first = body[0] if isinstance(body, list) else body
            if not first:
                return None
            return _text(first.get("service_request_id")) or None
        except (IndexError, TypeError, AttributeError):
            raise self._garbage("GET token") from None

    async def requests(
        self,
        *,
        ids: Sequence[str] = (),
        service_code: str = "",
        lat: float | None = None,
        long: float | None = None,
        radius_m: float | None = None,
        status: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ServiceRequest]:
        """``GET requests.json``.

        By ids (which override everything else), or by service, status, dates and (the common
        extension) position and radius.
        """
        params: list[tuple[str, str]] = []
        if ids:
            params.append(("service_request_id", ",".join(ids)))
        else:
            if service_code:
                params.append(("service_code", service_code))
            if status:
                params.append(("status", status))
            if lat is not None and long is not None:
                params += [("lat", repr(lat)), ("long", repr(long))]
                if radius_m is not None:
                    params.append(("radius", str(math.ceil(radius_m))))
            if start is not None:
                params.append(("start_date", _w3(start)))
            if end is not None:
                params.append(("end_date", _w3(end)))
        body = await self._call("GET", "requests.json", params=self._params(params))
        try:
            return [service_request(item) for item in body]
        except (KeyError, TypeError, AttributeError):
            raise self._garbage("GET requests") from None

    async def find_marked(self, report: ProblemReport, since: datetime) -> ServiceRequest | None:
        """The request created from ``report`` since ``since``, found by its marker line."""
        found = await self.requests(
            service_code=report.service_code,
            start=since - timedelta(minutes=5),
            end=datetime.now(UTC) + timedelta(minutes=5),
        )
        line = marker(report.report_id)
        return next((r for r in found if line in r.description.splitlines()), None)


async def nearby_open(
    client: Open311Client, service_code: str, lat: float, long: float, radius_m: float
) -> list[NearbyRequest]:
    """Open requests of ``service_code`` within ``radius_m`` of a point, nearest first."""
    found = await client.requests(
        service_code=service_code, lat=lat, long=long, radius_m=radius_m, status="open"
    )
    near = []
    for request in found:
        if request.status != "open" or request.lat is None or request.long is None:
            continue
        if request.service_code and request.service_code != service_code:
            continue
        distance = distance_m(lat, long, request.lat, request.long)
        if distance <= radius_m:
            near.append(
                NearbyRequest(
                    request.service_request_id,
                    round(distance, 1),
                    request.requested_datetime,
                    request.service_code or service_code,
                    request.service_name,
                    request.description,
                    request.address,
                )
            )
    return sorted(near, key=lambda n: n.distance_m)
