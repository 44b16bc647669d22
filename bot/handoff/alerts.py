"""Out-of-hours safeguarding alerts: sent by the handoff at once, retried until delivered, once.

A safeguarding case opened while no agent is on duty must reach someone who is (the council's
out-of-hours team) through ``COUNCIL_SAFEGUARDING_WEBHOOK``. The handoff action posts the alert
the moment it opens the case; the agent console's minute monitor (:class:`bot.handoff.sla.
SlaMonitor`) posts alerts for out-of-hours safeguarding cases that have none yet and retries the
ones that failed. Both go through :class:`SafeguardingAlerts`, so a case is alerted once however
many processes look at it, and a failed alert is recorded and retried, never dropped.

The alert names the case (id, team, priority, channel, time opened) and nothing the resident
said: it goes to a pager or a chat room.

Keys under ``{ns}:handoff:alerts:``:

* ``case:{id}``: a hash per alerted case: ``payload`` (the alert's JSON), ``sent_at`` once
  delivered, ``failures``, ``last_error`` and ``last_attempt_at`` after failed attempts.
* ``lock:{id}``: the process posting the alert right now (``SET NX PX`` with a random token),
  so the handoff and a monitor never post the same alert at the same time. It expires, so an
  alert whose poster died is posted again by the next monitor.
* ``pending``: sorted set of the cases whose alert is owed, scored by the time (ms) of the next
  attempt (now at first, then backing off after each failure).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import redis.asyncio

from bot.handoff.notify import Breach, Notifier
from bot.handoff.record import HandoffRecord
from bot.keys import key

__all__ = ["ALERT_KIND", "AlertOutcome", "SafeguardingAlert", "SafeguardingAlerts"]

logger = logging.getLogger(__name__)

ALERT_KIND = "safeguarding_out_of_hours"

AlertOutcome = Literal["sent", "failed", "already_sent", "in_progress", "not_yet"]
"""What :meth:`SafeguardingAlerts.send` did: posted it, tried and failed (recorded, retried
later), nothing (delivered before / another process is posting it / a failed alert whose next
attempt is not due yet)."""

# Every script is safe to run twice (the Redis client repeats a command whose reply was lost,
# see bot.redis_conn): a second BEGIN finds our own lock and says "go" again; SENT only sets
# fields that stay the same; FAILED counts a failure only while we hold the lock and drops the
# lock in the same step, so a repeat finds no lock of ours and counts nothing.
_BEGIN = """
if redis.call('HEXISTS', KEYS[1], 'sent_at') == 1 then return 'already_sent' end
local holder = redis.call('GET', KEYS[2])
if holder then
  if holder == ARGV[1] then return 'go' end
  return 'in_progress'
end
local due = redis.call('ZSCORE', KEYS[3], ARGV[5])
if due and tonumber(due) > tonumber(ARGV[4]) then return 'not_yet' end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('HSETNX', KEYS[1], 'payload', ARGV[3])
redis.call('ZADD', KEYS[3], 'NX', ARGV[4], ARGV[5])
return 'go'
"""
_SENT = """
redis.call('HSETNX', KEYS[1], 'sent_at', ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""
_FAILED = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[4], 'last_attempt_at', ARGV[2])
local delay = math.min(tonumber(ARGV[7]), tonumber(ARGV[6]) * 2 ^ (failures - 1))
redis.call('ZADD', KEYS[3], math.floor(tonumber(ARGV[3]) + delay), ARGV[5])
redis.call('DEL', KEYS[2])
return failures
"""


@dataclass(frozen=True)
class SafeguardingAlert(Breach):
    """The alert about a safeguarding case opened out of hours (the webhook body's fields).

    Attributes:
        channel: The resident's channel (``whatsapp``, ``sms``...), so the on-call team knows
            how the resident can be reached.
        created_at: When the case was opened (also in ``due``, the field breaches share).
    """

    channel: str
    created_at: datetime

    @classmethod
    def for_record(cls, record: HandoffRecord) -> SafeguardingAlert:
        """The alert for ``record`` (none of the resident's words or contact details)."""
        opened = datetime.fromisoformat(record.created_at)
        return cls(
            record.case_id, record.team, record.priority, ALERT_KIND, opened, record.channel, opened
        )

    @classmethod
    def from_json(cls, body: dict[str, str]) -> SafeguardingAlert:
        """Read an alert back from :meth:`to_json`."""
        return cls(
            body["case_id"],
            body["team"],
            body["priority"],
            body["kind"],
            datetime.fromisoformat(body["due"]),
            body["channel"],
            datetime.fromisoformat(body["created_at"]),
        )


class SafeguardingAlerts:
    """Posts out-of-hours safeguarding alerts once per case, recording and retrying failures.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        hook: Posts an alert (:class:`~bot.handoff.notify.WebhookNotifier`); raises on failure.
        clock: Returns the current time.
        lease_seconds: How long a poster holds an alert; longer than the hook's timeout.
        retry_seconds: Wait before the first retry; doubled after each further failure.
        max_retry_seconds: Longest wait between retries.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        hook: Notifier,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease_seconds: float = 60,
        retry_seconds: float = 60,
        max_retry_seconds: float = 900,
    ) -> None:
        self.redis = client
        self.prefix = key(namespace, "handoff", "alerts")
        self.hook = hook
        self.clock = clock
        self.lease_ms = int(lease_seconds * 1000)
        self.retry_ms = int(retry_seconds * 1000)
        self.max_retry_ms = int(max_retry_seconds * 1000)
        self._begin = client.register_script(_BEGIN)
        self._sent = client.register_script(_SENT)
        self._failed = client.register_script(_FAILED)

    def _keys(self, case_id: str) -> list[str]:
        return [f"{self.prefix}:case:{case_id}", f"{self.prefix}:lock:{case_id}", self.pending_key]

    @property
    def pending_key(self) -> str:
        """Sorted set of cases whose alert is owed, scored by the next attempt's time (ms)."""
        return f"{self.prefix}:pending"

    async def send(self, alert: SafeguardingAlert) -> AlertOutcome:
        """Post ``alert`` unless it was delivered, is being posted, or waits for its retry time.

        A failure of the hook is logged and recorded on the alert (``failures``,
        ``last_error``) and the alert stays pending for :meth:`retry_due`; it never raises.

        Raises:
            redis.RedisError: Redis failed (after the client's own retries).
        """
        keys = self._keys(alert.case_id)
        token = uuid.uuid4().hex
        now = self.clock()
        started = await self._begin(
            keys=keys,
            args=[
                token,
                self.lease_ms,
                json.dumps(alert.to_json()),
                int(now.timestamp() * 1000),
                alert.case_id,
            ],
        )
        if started != "go":
            outcome: AlertOutcome = started
            return outcome
        try:
            await self.hook(alert)
        except Exception as error:  # any failure of the hook: record it and retry later
            failures = await self._failed(
                keys=keys,
                args=[
                    token,
                    self.clock().isoformat(),
                    int(self.clock().timestamp() * 1000),
                    f"{type(error).__name__}: {error}"[:500],
                    alert.case_id,
                    self.retry_ms,
                    self.max_retry_ms,
                ],
            )
            logger.warning(
                "safeguarding alert for case %s failed (%s failure(s)); it will be retried",
                alert.case_id,
                failures,
                exc_info=True,
            )
            return "failed"
        await self._sent(keys=keys, args=[token, self.clock().isoformat(), alert.case_id])
        logger.info("safeguarding alert sent for case %s", alert.case_id)
        return "sent"

    async def retry_due(self, limit: int = 100) -> list[tuple[SafeguardingAlert, AlertOutcome]]:
        """Post again the pending alerts whose next attempt is due; return what was tried."""
        now_ms = int(self.clock().timestamp() * 1000)
        due: list[str] = await self.redis.zrangebyscore(
            self.pending_key, "-inf", now_ms, start=0, num=limit
        )
        tried: list[tuple[SafeguardingAlert, AlertOutcome]] = []
        for case_id in due:
            payload = await self.redis.hget(self._keys(case_id)[0], "payload")
            if payload is None:  # cannot happen: BEGIN writes both in one step
                logger.error("pending safeguarding alert for case %s has no payload", case_id)
                continue
            alert = SafeguardingAlert.from_json(json.loads(payload))
            tried.append((alert, await self.send(alert)))
        return tried

    async def state(self, case_id: str) -> dict[str, str]:
        """What happened to a case's alert (``sent_at``, ``failures``, ``last_error``...)."""
        found: dict[str, str] = await self.redis.hgetall(self._keys(case_id)[0])
        return found

    async def pending(self) -> list[str]:
        """Cases whose alert has not been delivered yet, next attempt first."""
        found: list[str] = await self.redis.zrange(self.pending_key, 0, -1)
        return found
