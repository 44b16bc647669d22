"""Where confirmed reports are delivered: an Open311 server, an e-mail inbox or a webhook.

Each :class:`BackOffice` delivers one report and answers :class:`Delivered` (the reference
the resident is told) or raises :class:`~bot.errors.BackOfficeError`. The outbox worker
(:mod:`bot.reports.outbox`) retries what is worth retrying and calls ``deliver`` again with
the report's record, so a back office can go on where it was:

- :class:`Open311BackOffice` posts ``requests.json``. Before its first POST the record gets
  ``attempted_at``; any later attempt first looks for the report's marker line among the
  service's requests since then (:meth:`Open311Client.find_marked`), so a POST that reached
  the server before a timeout, a 5xx, garbage or a crash is adopted, never made twice. While
  the server cannot be searched (any failure of the search), nothing is posted: the search
  is asked again (:class:`Unsearched`, retried with the worker's backoff) and after
  ``unconfirmed_after`` seconds the report goes to agents as possibly submitted
  (:class:`Unconfirmed`). A token answer is saved and exchanged (``tokens/<token>``) on
  later attempts until the id comes.
- :class:`EmailBackOffice` sends the report as JSON (``application/json`` attachment and in the
  body) through the council's SMTP relay, with a ``Message-ID`` made from the report id so a
  mail system can drop a repeat.
- :class:`WebhookBackOffice` POSTs the JSON signed ``X-Council-Signature: sha256=<hex HMAC of
  the body>`` with ``X-Council-Delivery: <report id>`` (the receiver's idempotency key).

Email and webhook councils also get a case in the agent console (``opens_case``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import redis.asyncio

from bot.errors import BackOfficeError
from bot.reports.config import EmailTarget, ReportsConfig, WebhookTarget, secret
from bot.reports.model import ProblemReport
from bot.reports.open311 import Open311Client, RetryableError, marker
from bot.reports.store import ReportRecord, ReportStore

__all__ = [
    "BackOffice",
    "Delivered",
    "EmailBackOffice",
    "Open311BackOffice",
    "Unconfirmed",
    "Unsearched",
    "WebhookBackOffice",
    "back_office_for",
    "report_document",
    "signature",
]


@dataclass(frozen=True)
class Delivered:
    """A report the back office has.

    Attributes:
        reference: What the resident is told (None: the back office gives none).
        notice: The back office's words about what happens next (may be empty).
    """

    reference: str | None
    notice: str = ""


class Unsearched(RetryableError):
    """A POST may have landed and the server cannot be searched for it yet: ask again."""


class Unconfirmed(BackOfficeError):
    """A POST may have landed and the server could not be searched for it for too long.

    Not tried again: an agent checks the council's system before recording it.
    """

    @property
    def retryable(self) -> bool:
        """Never: posting again could make a duplicate."""
        return False


class BackOffice(ABC):
    """Delivers reports to one council system."""

    name = "back office"
    """``open311`` | ``email`` | ``webhook``."""

    opens_case = False
    """Agents get a console case for each delivered report (no system to track it in)."""

    target = ""
    """Where, for logs and agents (no secrets)."""

    @abstractmethod
    async def deliver(self, record: ReportRecord) -> Delivered:
        """Deliver ``record.report`` (going on from what the record says was done).

        Raises:
            BackOfficeError: It was not delivered (``retryable`` says whether to try again).
        """

    async def aclose(self) -> None:  # noqa: B027 - nothing to close by default
        """Close connections."""


def report_document(report: ProblemReport) -> dict[str, object]:
    """The report as the JSON that email and webhook back offices receive."""
    document: dict[str, object] = {
        "type": "problem_report",
        "version": 1,
        "reference": report.report_id,
        **asdict(report),
        "created_at": datetime.fromtimestamp(report.created_at, UTC).isoformat(),
    }
    if report.lat is not None and report.long is not None:
        document["map_url"] = (
            "https://www.openstreetmap.org/?mlat="
            f"{report.lat}&mlon={report.long}#map=19/{report.lat}/{report.long}"
        )
    return document


def signature(secret_value: str, body: bytes) -> str:
    """The ``X-Council-Signature`` header of a webhook body."""
    return "sha256=" + hmac.new(secret_value.encode(), body, hashlib.sha256).hexdigest()


class Open311BackOffice(BackOffice):
    """Submits to an Open311 GeoReport v2 server (see the module docstring).

    Args:
        client: The server's client.
        store: Where the report's progress is kept.
        clock: Unix seconds.
        unconfirmed_after: Seconds the server may fail to be searched for a report that may
            have been posted before it goes to agents (``open311.unconfirmed_after_minutes``).
    """

    name = "open311"

    def __init__(
        self,
        client: Open311Client,
        store: ReportStore,
        clock: Callable[[], float] = time.time,
        *,
        unconfirmed_after: float = 2 * 3600.0,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.unconfirmed_after = unconfirmed_after
        self.target = client.target

    async def deliver(self, record: ReportRecord) -> Delivered:
        """Find, post or exchange the token of the report (see the module docstring)."""
        report = record.report
        if record.token:
            return await self._exchange(record.token)
        if record.attempted_at:
            since = datetime.fromtimestamp(record.attempted_at, UTC)
            try:
                found = await self.client.find_marked(report, since)
            except BackOfficeError as exc:
                raise await self._unsearched(record, exc) from None
            if found is not None:
                return Delivered(found.service_request_id)
        await self.store.first_attempt(report.report_id, self.clock())
        submitted = await self.client.submit(report)
        if submitted.service_request_id:
            return Delivered(submitted.service_request_id, submitted.service_notice)
        if submitted.token:
            await self.store.update(report.report_id, token=submitted.token)
            return await self._exchange(submitted.token)
        return Delivered(None, submitted.service_notice)

    async def _unsearched(self, record: ReportRecord, exc: BackOfficeError) -> BackOfficeError:
        # whether the last POST created the request cannot be told: posting again could make
        # a duplicate, so ask again later, and after a while let a person look
        now = self.clock()
        since = record.search_failed_at
        if not since:
            since = now
            await self.store.update(record.report.report_id, search_failed_at=now)
        if now - since < self.unconfirmed_after:
            return Unsearched(self.target, exc.status, f"cannot be searched ({exc.reason})", True)
        minutes = round((now - since) / 60)
        return Unconfirmed(
            self.target,
            exc.status,
            f"may have been submitted: not found, the search failing for {minutes} minutes "
            f"({exc.reason}); look for '{marker(record.report.report_id)}'",
            True,
        )

    async def _exchange(self, token: str) -> Delivered:
        request_id = await self.client.token(token)
        if request_id is None:
            raise BackOfficeError(self.target, 200, f"token {token} has no request id yet")
        return Delivered(request_id)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()


class EmailBackOffice(BackOffice):
    """Mails each report as JSON to the council (see the module docstring).

    Args:
        target: The profile's ``reports.email``.
        password: The SMTP password (from the environment; empty: no login).
        timeout: Seconds for the SMTP conversation.
    """

    name = "email"
    opens_case = True

    def __init__(self, target: EmailTarget, password: str = "", timeout: float = 20.0) -> None:
        self.config = target
        self.password = password
        self.timeout = timeout
        self.target = f"email {target.smtp_host}:{target.smtp_port}"

    def message(self, report: ProblemReport) -> EmailMessage:
        """The e-mail of one report."""
        body = json.dumps(report_document(report), indent=2, ensure_ascii=False)
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = self.config.to
        message["Subject"] = f"Problem report {report.report_id}: {report.service_name}"
        domain = self.config.sender.rpartition("@")[2]
        message["Message-ID"] = make_msgid(idstring=f"report.{report.report_id}", domain=domain)
        message["X-Council-Report"] = report.report_id
        message.set_content(body)
        message.add_attachment(
            body.encode(), maintype="application", subtype="json", filename="report.json"
        )
        return message

    async def deliver(self, record: ReportRecord) -> Delivered:
        """Mail the report; its reference is the report id."""
        message = self.message(record.report)
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as exc:
            code = getattr(exc, "smtp_code", 0)
            if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
                code = next(iter(exc.recipients.values()))[0]
            # 4xx: the relay asks us to come back later; 5xx: refused for good
            status = 0 if not code or 400 <= code < 500 else 400
            raise BackOfficeError(self.target, status, f"{type(exc).__name__}: {exc}") from None
        return Delivered(record.report.report_id)

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=self.timeout) as smtp:
            if self.config.starttls:
                smtp.starttls()
            if self.config.username:
                smtp.login(self.config.username, self.password)
            smtp.send_message(message)


class WebhookBackOffice(BackOffice):
    """POSTs each report as signed JSON (see the module docstring).

    Args:
        target: The profile's ``reports.webhook``.
        secret_value: The HMAC secret (from the environment).
        transport: An httpx transport (tests).
        timeout: Seconds per call.
    """

    name = "webhook"
    opens_case = True

    def __init__(
        self,
        target: WebhookTarget,
        secret_value: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.config = target
        self.secret = secret_value
        self.target = f"webhook {target.url}"
        self.http = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def deliver(self, record: ReportRecord) -> Delivered:
        """POST the report; the reference is the answer's ``reference``, else the report id."""
        report = record.report
        body = json.dumps(report_document(report), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Council-Signature": signature(self.secret, body),
            "X-Council-Delivery": report.report_id,
        }
        try:
            response = await self.http.post(self.config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            raise BackOfficeError(self.target, 0, type(exc).__name__, sent) from None
        if response.status_code >= 300:
            raise BackOfficeError(
                self.target,
                response.status_code,
                response.reason_phrase or "refused",
                response.status_code >= 500,
            )
        reference = report.report_id
        try:
            answer = response.json()
            if isinstance(answer, Mapping) and str(answer.get("reference") or "").strip():
                reference = str(answer["reference"]).strip()[:64]
        except ValueError:
            pass  # any 2xx is an acceptance; a body is optional
        return Delivered(reference)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self.http.aclose()


def back_office_for(
    config: ReportsConfig,
    environ: Mapping[str, str],
    client: redis.asyncio.Redis,
    namespace: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> BackOffice:
    """The back office the profile names, its secrets read from ``environ``.

    Raises:
        MissingSecretError: A secret the profile names is not set.
    """
    if config.back_office == "email" and config.email is not None:
        password = ""
        if config.email.password_variable:
            password = secret(environ, config.email.password_variable, "SMTP password")
        return EmailBackOffice(config.email, password)
    if config.back_office == "webhook" and config.webhook is not None:
        value = secret(environ, config.webhook.secret_variable, "reports webhook HMAC secret")
        return WebhookBackOffice(config.webhook, value, transport=transport)
    target = config.open311
    assert target is not None  # the profile reader requires the section of the back office
    api_key = ""
    if target.api_key_variable:
        api_key = secret(environ, target.api_key_variable, "Open311 api_key")
    open311 = Open311Client(
        target.endpoint,
        target.jurisdiction_id,
        api_key,
        transport=transport,
        redis=client,
        namespace=namespace,
        cache_seconds=target.services_cache_minutes * 60,
    )
    return Open311BackOffice(
        open311,
        ReportStore(client, namespace),
        unconfirmed_after=target.unconfirmed_after_minutes * 60.0,
    )
