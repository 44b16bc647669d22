"""The edge's ``POST /reports/updates``: a back office pushing status changes of requests.

An :class:`~bot.edge.app.EdgePart`, served when ``COUNCIL_REPORTS_WEBHOOK_SECRET`` is set
(:func:`for_edge`). The back office authenticates with either ``Authorization: Bearer
<secret>`` or ``X-Council-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>``
(both compared in constant time; 401 otherwise). The body is one GeoReport v2 request object
or a list of them (``service_request_id``, ``status``, ``status_notes``, ``updated_datetime``:
the shape of ``GET requests``), at most 64 KB. Each request is appended to the stream
``{ns}:reports:pushed`` and answered 202; :class:`bot.reports.updates.PushedUpdates` tells
the residents. Nothing of the body is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import redis.asyncio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import settings
from bot.reports.store import ReportStore
from bot.reports.updates import read_pushed

__all__ = ["MAX_BODY", "UpdatesPart", "for_edge"]

MAX_BODY = 64 * 1024
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
_KEEP = 100_000  # pushed updates kept at most while the reports process is away


def _answer(status: int, body: dict[str, object]) -> Response:
    return JSONResponse(body, status_code=status, headers=_HEADERS)


class UpdatesPart:
    """Receives pushed status changes (see the module docstring).

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        secret: The shared secret.
    """

    def __init__(self, client: redis.asyncio.Redis, namespace: str, secret: str) -> None:
        self.redis = client
        self.stream = ReportStore(client, namespace).key("pushed")
        self.secret = secret.encode()

    def authentic(self, request: Request, body: bytes) -> bool:
        """The bearer secret or the body's HMAC signature is right."""
        bearer = request.headers.get("authorization", "")
        if bearer.startswith("Bearer ") and hmac.compare_digest(
            bearer[len("Bearer ") :].encode(), self.secret
        ):
            return True
        given = request.headers.get("x-council-signature", "")
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    async def receive(self, request: Request) -> Response:
        """Check, read and queue the pushed requests."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return _answer(413, {"error": "body too large"})
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _answer(413, {"error": "body too large"})
        if not self.authentic(request, body):
            return _answer(401, {"error": "not authenticated"})
        try:
            requests = read_pushed(json.loads(body))
        except (ValueError, TypeError) as exc:
            return _answer(400, {"error": f"not GeoReport v2 requests: {exc}"})
        async with self.redis.pipeline(transaction=True) as pipe:
            for pushed in requests:
                fields = {
                    "service_request_id": pushed.service_request_id,
                    "status": pushed.status,
                    "status_notes": pushed.status_notes,
                    "updated_datetime": pushed.updated_datetime,
                    "service_name": pushed.service_name,
                }
                pipe.xadd(
                    self.stream,
                    {"request": json.dumps(fields)},
                    maxlen=_KEEP,
                    approximate=True,
                )
            await pipe.execute()
        return _answer(202, {"accepted": len(requests)})

    def routes(self) -> Sequence[BaseRoute]:
        """``POST /reports/updates``."""
        return [Route("/reports/updates", self.receive, methods=["POST"])]

    def running(self) -> AbstractAsyncContextManager[None]:
        """Nothing runs in the background."""

        @asynccontextmanager
        async def idle() -> AsyncIterator[None]:
            yield

        return idle()


def for_edge(client: redis.asyncio.Redis, namespace: str) -> UpdatesPart | None:
    """The part for this process' settings (None: ``COUNCIL_REPORTS_WEBHOOK_SECRET`` unset)."""
    secret = settings.current().reports_webhook_secret
    return UpdatesPart(client, namespace, secret) if secret else None
