"""The reports' outbox: confirmed reports reach the back office once, whatever it does.

:meth:`ReportOutbox.enqueue` appends a report to the stream ``{ns}:reports:outbox`` and writes
its record in one Lua step, once per ``report_id`` (a repeat returns the first entry's id).
:class:`ReportWorker` reads the stream as a consumer of the group ``submitters``
(:mod:`bot.channels.stream`: a restarted or another worker takes pending reports over), each
report in a lane of its own, and delivers it through the profile's
:class:`~bot.reports.backoffice.BackOffice`:

- delivered: the record says ``submitted`` with the reference; the resident is told the
  reference once (:class:`~bot.reports.notify.ResidentNotifier`, through ``{ns}:outbox``) and,
  for Open311, subscribed to the request's updates; email/webhook councils' agents get a
  console case;
- no answer, 5xx, 401/403, 429, garbage, a token without its id yet: tried again after a
  backoff (1 s doubling to ``max_delay``), the schedule kept in Redis (:class:`Retries`), for
  ``give_up_after`` seconds (6 hours by default: an hour-long outage loses nothing). Before
  any POST after the first, the Open311 back office looks for the report's marker, so an
  ambiguous failure never submits twice. A report that gets through wakes the others
  waiting out a backoff (spread over ``recovery_spread`` seconds). After
  ``delayed_after`` (10 minutes) the resident is told once that it is taking longer;
- refused (a 400 naming what is wrong, 404, 422) or given up: the record says ``failed``,
  the report goes to ``{ns}:reports:failed`` and to a P2 console case (agents record it by
  hand), and the resident is told once that a person has it;
- possibly submitted but not found, the back office not searchable for
  ``unconfirmed_after`` (:class:`~bot.reports.backoffice.Unconfirmed`, or given up while
  searching): the same, except that the record says ``unconfirmed``, the case asks the agent
  to look for it in the council's system before recording it again, and the resident is
  told it may already be there.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio

from bot.channels.stream import Fields, GroupReader, RetryPolicy, StreamWorker, until_saved
from bot.errors import BackOfficeError
from bot.reports.backoffice import BackOffice, Delivered, Unconfirmed, Unsearched
from bot.reports.cases import DELIVERED, FAILED, ReportCases
from bot.reports.model import ProblemReport
from bot.reports.notify import ResidentNotifier
from bot.reports.open311 import marker
from bot.reports.store import ReportRecord, ReportStore, Subscriber, subscribe

__all__ = ["GROUP", "ReportOutbox", "ReportWorker"]

_log = logging.getLogger(__name__)

GROUP = "submitters"

# KEYS: enqueued marker, stream, record, conversation's set, made index.
# ARGV: report id, conversation id, report JSON, created_at, marker ttl.
_ENQUEUE = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
local entry = redis.call('XADD', KEYS[2], '*', 'report_id', ARGV[1], 'conversation_id', ARGV[2])
redis.call('SET', KEYS[1], entry, 'EX', ARGV[5])
redis.call('HSET', KEYS[3], 'report', ARGV[3], 'conversation_id', ARGV[2], 'status', 'queued',
  'created_at', ARGV[4])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
return entry
"""


class ReportOutbox:
    """Queues confirmed reports for the :class:`ReportWorker`.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        keep_days: How long a report's record is kept (``retention.problem_reports``).
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str = "cr", *, keep_days: int = 365
    ) -> None:
        self.store = ReportStore(client, namespace)
        self.stream = self.store.key("outbox")
        self.keep_seconds = keep_days * 86400
        self._enqueue = client.register_script(_ENQUEUE)

    async def enqueue(self, report: ProblemReport) -> str:
        """Queue ``report`` once; return its stream id (the first one's, for a repeat)."""
        store = self.store
        entry = await self._enqueue(
            keys=[
                store.key("enqueued", report.report_id),
                self.stream,
                store.key("report", report.report_id),
                store.key("conversation", report.conversation_id),
                store.key("made"),
            ],
            args=[
                report.report_id,
                report.conversation_id,
                report.to_json(),
                repr(report.created_at),
                self.keep_seconds,
            ],
        )
        return str(entry)


@dataclass(frozen=True)
class Outcome:
    """How one report ended: delivered (with what) or failed (why)."""

    delivered: Delivered | None
    error: str = ""
    unconfirmed: bool = False  # it may have been created: check before recording it again


class ReportWorker(StreamWorker):
    """Delivers queued reports (see the module docstring).

    Args:
        client: Asyncio Redis client (decoded strings).
        back_office: Where reports go.
        notifier: Tells residents.
        cases: Opens console cases (email/webhook reports, failures).
        namespace: Key namespace.
        consumer: This worker's name (:func:`bot.channels.stream.consumer_name`).
        give_up_after: Seconds after a report's first failure with no further attempt.
        delayed_after: Seconds after a report's first failure when its resident is told
            (once) that it is taking longer, and that nothing is lost.
        recovery_spread: When a report gets through, the others waiting out a
            backoff are tried again within this many seconds instead (spread at random).
        base_delay: First backoff in seconds (doubles, with jitter).
        max_delay: Longest wait between attempts.
        claim_idle_ms: Reports any consumer left unacknowledged this long are taken over.
        block_ms: How long one read waits for new reports.
        batch: Reports read at a time.
        dead_after: Seconds without a heartbeat after which a consumer is taken over.
        max_in_flight: Reports held at most.
        sleep: Waits between attempts (tests pass a fake).
        clock: Unix seconds.
    """

    role = "reports"

    def __init__(
        self,
        client: redis.asyncio.Redis,
        back_office: BackOffice,
        notifier: ResidentNotifier,
        cases: ReportCases,
        namespace: str = "cr",
        *,
        consumer: str = "submitter",
        give_up_after: float = 6 * 3600.0,
        delayed_after: float = 600.0,
        recovery_spread: float = 5.0,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        claim_idle_ms: int = 60_000,
        block_ms: int = 1000,
        batch: int = 32,
        dead_after: float = 30.0,
        max_in_flight: int = 10_000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.back_office = back_office
        self.notifier = notifier
        self.cases = cases
        self.namespace = namespace
        self.store = ReportStore(client, namespace)
        self.policy = RetryPolicy(
            base_delay=base_delay, max_delay=max_delay, give_up_after=give_up_after
        )
        self.delayed_after = delayed_after
        self.recovery_spread = recovery_spread
        self._answering = asyncio.Event()
        self.sleep = sleep
        self.clock = clock
        self.stream = self.store.key("outbox")
        reader = GroupReader(
            client,
            self.stream,
            GROUP,
            consumer,
            claim_idle_ms=claim_idle_ms,
            block_ms=block_ms,
            batch=batch,
            dead_after=dead_after,
        )
        super().__init__(reader, "report_id", max_in_flight=max_in_flight)

    async def process(self, entry_id: str, fields: Fields) -> None:
        """Deliver one report with retries, tell the resident, acknowledge the entry."""
        report_id = fields.get("report_id", "")
        record = await self.store.get(report_id)
        if record is None:  # erased (or swept) while queued: nothing to send
            await self._ack(entry_id)
            return
        if record.status in ("submitted", "failed"):  # finished before a crash: finish again
            outcome = Outcome(
                Delivered(record.reference or None, record.notice)
                if record.status == "submitted"
                else None,
                record.error,
                record.unconfirmed,
            )
        else:
            outcome = await self._deliver(entry_id, record)
        await until_saved(lambda: self._finish(entry_id, record.report, outcome), "reports")

    async def _deliver(self, entry_id: str, record: ReportRecord) -> Outcome:
        state = await self.retry_state(entry_id)
        if state.due > self.clock():  # scheduled before a restart or by another worker
            await self.sleep(state.due - self.clock())
        while True:
            current = await self.store.get(record.report.report_id) or record
            try:
                delivered = await self.back_office.deliver(current)
                # the back office answers: the reports waiting out a backoff need not wait
                self._answering.set()
                self._answering = asyncio.Event()
                return Outcome(delivered)
            except (asyncio.CancelledError, redis.RedisError):
                raise
            except BackOfficeError as exc:
                error, retryable = str(exc), exc.retryable
                unsure = isinstance(exc, Unconfirmed | Unsearched)
            except Exception as exc:  # a value no check foresaw must not stop the worker
                _log.exception("report %s made the worker raise", record.report.report_id)
                error, retryable, unsure = f"worker error: {type(exc).__name__}", True, False
            if not retryable:
                return Outcome(None, error, unsure)
            state = await self.retries.failed(entry_id, state, self.clock())
            # agents see it while it is retried (bot.reports.waiting)
            await self.store.update(record.report.report_id, last_error=error[:300])
            if self.policy.exhausted(state, self.clock()):
                return Outcome(None, f"gave up after {state.attempts} attempts: {error}", unsure)
            if self.clock() - state.first_failed_at >= self.delayed_after:
                # once: nothing is lost, the reference comes later
                await self.notifier.tell(
                    record.report,
                    f"report:{record.report.report_id}:delayed",
                    "utter_report_delayed",
                    service_name=record.report.service_name,
                )
            delay = self.policy.delay(state.attempts)
            await self.retries.schedule(entry_id, self.clock() + delay)
            _log.info(
                "report %s: %s (attempt %d); again in %.1f s",
                record.report.report_id,
                error,
                state.attempts,
                delay,
            )
            await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds, or less once the back office answers again.

        When another report got through after failures, wait at most ``recovery_spread``
        seconds more (at random), so the waiting reports do not all arrive at once.
        """
        started = asyncio.get_running_loop().time()
        woken = asyncio.ensure_future(self._answering.wait())
        slept = asyncio.ensure_future(self.sleep(delay))
        try:
            await asyncio.wait({woken, slept}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, slept):
                task.cancel()
        if woken.done() and not woken.cancelled() and not slept.done():
            left = delay - (asyncio.get_running_loop().time() - started)
            spread = random.uniform(0, self.recovery_spread)  # noqa: S311 - jitter
            await self.sleep(max(0.0, min(left, spread)))  # never later than planned

    async def _finish(self, entry_id: str, report: ProblemReport, outcome: Outcome) -> None:
        # every step may run again after a crash: the record's status, the subscription, the
        # told marker and the case id make each one happen once
        now = self.clock()
        values = {"service_name": report.service_name}
        if outcome.delivered is not None:
            reference = outcome.delivered.reference or ""
            await self.store.update(
                report.report_id,
                status="submitted",
                reference=reference,
                notice=outcome.delivered.notice,
                updated_at=now,
            )
            if self.back_office.opens_case:
                await self.cases.open(
                    report,
                    reason=DELIVERED,
                    reference=reference,
                    note=f"Report sent by {self.back_office.name} to the council's team.",
                )
                response = "utter_report_reference_team"
            elif reference:
                await subscribe(
                    self.redis, self.namespace, reference, Subscriber.of(report, reference, now)
                )
                response = "utter_report_reference"
            else:
                response = "utter_report_reference_none"
            await self.notifier.tell(
                report, f"report:{report.report_id}:done", response, reference=reference, **values
            )
        else:
            await self.store.update(
                report.report_id,
                status="failed",
                error=outcome.error,
                unconfirmed="1" if outcome.unconfirmed else "",
                updated_at=now,
            )
            record_key = self.store.key("report", report.report_id)
            if await self.redis.hsetnx(record_key, "failed_at", now):
                await self.redis.xadd(
                    self.store.key("failed"),
                    {
                        "report_id": report.report_id,
                        "conversation_id": report.conversation_id,
                        "service": report.service_name,
                        "target": self.back_office.target,
                        "error": outcome.error,
                        "failed_at": str(now),
                    },
                )
            if outcome.unconfirmed:
                note = (
                    f"May have been submitted to the back office ({outcome.error}): look for "
                    f"'{marker(report.report_id)}' in the council's system before recording it"
                    " again, then tell the resident the reference."
                )
                response = "utter_report_unconfirmed"
            else:
                note = f"Not delivered to the back office ({outcome.error}): record it by hand."
                response = "utter_report_not_delivered"
            await self.cases.open(report, reason=FAILED, reference=report.report_id, note=note)
            await self.notifier.tell(report, f"report:{report.report_id}:done", response, **values)
            _log.warning("report %s not delivered: %s", report.report_id, outcome.error)
        await self._ack(entry_id)

    async def _ack(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, entry_id)
            pipe.xdel(self.stream, entry_id)
            self.retries.forget(pipe, entry_id)
            await pipe.execute()
