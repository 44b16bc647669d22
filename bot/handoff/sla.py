"""Service levels: first-response and resolution targets counted in business hours.

Targets are set per priority, optionally overridden per team, and counted only while the
contact centre is open (:class:`~bot.handoff.hours.OpeningHours`, bank holidays included), so a
case opened on Friday evening is not late on Saturday. :class:`SlaMonitor` checks the open
cases, notifies each breach once (the notice is recorded in Redis, so several console processes
never repeat it) and alerts the safeguarding hook about safeguarding cases opened while nobody
is on duty (through :class:`~bot.handoff.alerts.SafeguardingAlerts`, which the handoff action
uses too: a case is alerted once, and failed alerts are retried here).

:class:`Breach`, :data:`Notifier` and :class:`WebhookNotifier` live in :mod:`bot.handoff.notify`
and are re-exported here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import settings
from bot.errors import ConfigError
from bot.handoff.alerts import SafeguardingAlert, SafeguardingAlerts
from bot.handoff.hours import OpeningHours
from bot.handoff.notify import Breach, Notifier, WebhookNotifier
from bot.handoff.queue import OP_SECONDS, HandoffQueue, op_key
from bot.handoff.record import HandoffRecord
from bot.profile import current as council_profile

__all__ = [
    "DEFAULT_TARGETS",
    "Breach",
    "Notifier",
    "SlaMonitor",
    "SlaPolicy",
    "SlaStatus",
    "Target",
    "WebhookNotifier",
    "add_business_time",
    "business_seconds",
    "evaluate",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """How long a case may wait, in business hours.

    Attributes:
        first_response: Until an agent's first reply.
        resolution: Until the case is closed.
    """

    first_response: timedelta
    resolution: timedelta


DEFAULT_TARGETS: Mapping[str, Target] = {
    "P1": Target(timedelta(minutes=30), timedelta(hours=4)),
    "P2": Target(timedelta(hours=2), timedelta(hours=16)),
    "P3": Target(timedelta(hours=8), timedelta(hours=40)),
}


def business_seconds(hours: OpeningHours, start: datetime, end: datetime) -> float:
    """Seconds between ``start`` and ``end`` during which the contact centre is open."""
    if end <= start:
        return 0.0
    total = 0.0
    day = start.astimezone(hours.zone).date()
    last = end.astimezone(hours.zone).date()
    while day <= last:
        if hours.is_working_day(day):
            opens = datetime.combine(day, hours.open_at, hours.zone)
            closes = datetime.combine(day, hours.close_at, hours.zone)
            overlap = (min(closes, end) - max(opens, start)).total_seconds()
            total += max(overlap, 0.0)
        day += timedelta(days=1)
    return total


def add_business_time(hours: OpeningHours, start: datetime, seconds: float) -> datetime:
    """The moment ``seconds`` of opening hours after ``start`` (UTC)."""
    moment = hours.next_opening(start)
    remaining = seconds
    while True:
        local = moment.astimezone(hours.zone)
        closes = datetime.combine(local.date(), hours.close_at, hours.zone)
        available = (closes - local).total_seconds()
        if remaining <= available:
            return (local + timedelta(seconds=remaining)).astimezone(UTC)
        remaining -= available
        moment = hours.next_opening(closes)


@dataclass(frozen=True)
class SlaPolicy:
    """Targets per priority (and per team) and the hours they are counted in.

    Attributes:
        targets: Target per priority.
        team_targets: Overrides per ``(team, priority)``.
        hours: Opening hours and bank holidays.
    """

    targets: Mapping[str, Target] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    team_targets: Mapping[tuple[str, str], Target] = field(default_factory=dict)
    hours: OpeningHours = field(default_factory=OpeningHours)

    def target(self, priority: str, team: str) -> Target:
        """The target for a case of ``priority`` in ``team``."""
        return self.team_targets.get((team, priority)) or self.targets.get(
            priority, DEFAULT_TARGETS["P3"]
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], hours: OpeningHours | None = None) -> SlaPolicy:
        """Read a policy from configuration (minutes of business time).

        ``{"P1": {"first_response": 30, "resolution": 240}, ..., "teams": {"housing":
        {"P2": {"first_response": 60, "resolution": 480}}}, "hours": {...}}``; priorities left
        out keep the defaults; ``hours`` (optional) is read by :meth:`OpeningHours.from_mapping`
        on top of ``hours`` given here (default: weekdays 9am to 5pm, no closed days).

        Raises:
            ConfigError: A target or the hours are wrong (``path`` is left empty for the
                caller to fill in; ``key`` names the setting).
        """

        def target(where: str, values: Any) -> Target:
            try:
                return Target(
                    timedelta(minutes=float(values["first_response"])),
                    timedelta(minutes=float(values["resolution"])),
                )
            except (KeyError, TypeError, ValueError):
                raise ConfigError(
                    "", where, "needs first_response and resolution in minutes"
                ) from None

        targets = dict(DEFAULT_TARGETS)
        targets.update({p: target(p, v) for p, v in data.items() if p not in ("teams", "hours")})
        teams = data.get("teams") or {}
        if not isinstance(teams, Mapping):
            raise ConfigError("", "teams", "must map team names to targets per priority")
        team_targets = {
            (team, priority): target(f"teams.{team}.{priority}", values)
            for team, by_priority in teams.items()
            for priority, values in (by_priority or {}).items()
        }
        base = hours or OpeningHours()
        try:
            counted = OpeningHours.from_mapping(data["hours"], base) if "hours" in data else base
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError("", "hours", str(exc.args[0])) from None
        return cls(targets, team_targets, counted)

    @classmethod
    def from_env(cls) -> SlaPolicy:
        """This deployment's policy: ``service_levels`` of the council profile.

        ``COUNCIL_SLA_FILE`` (deprecated: a warning is logged) still names a JSON file of
        targets and ``hours`` that replaces them; its hours start from the profile's.

        Raises:
            ConfigError: The profile or the file is wrong; the error names the file and key.
        """
        profile = council_profile()
        sla_file = settings.current().sla_file
        if sla_file is None:
            return profile.service_levels
        path = str(sla_file)
        logger.warning(
            "COUNCIL_SLA_FILE is deprecated: move its targets to service_levels and its hours "
            "to opening_hours in the council profile (%s), then unset it",
            profile.path,
        )
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(path, "COUNCIL_SLA_FILE", f"cannot be read: {error}") from None
        except json.JSONDecodeError as error:
            raise ConfigError(path, f"line {error.lineno}", f"not JSON: {error.msg}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(path, "", "must be a JSON object of targets")
        try:
            return cls.from_mapping(data, hours=profile.hours)
        except ConfigError as error:
            raise ConfigError(path, error.key, error.reason) from None


@dataclass(frozen=True)
class SlaStatus:
    """Where a case stands against one target.

    Attributes:
        kind: ``first_response`` or ``resolution``.
        due: When the target runs out.
        met_at: When it was met (None: not yet).
        left_seconds: Business seconds left (negative: how far over).
        breached: The target was or is missed.
    """

    kind: str
    due: datetime
    met_at: datetime | None
    left_seconds: float
    breached: bool

    @property
    def left_text(self) -> str:
        """Time left (or over) in words, e.g. ``"1h 20m left"``, ``"35m over"``."""
        if self.met_at is not None:
            return "met" if not self.breached else "met late"
        minutes = int(abs(self.left_seconds) // 60)
        words = f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"
        return f"{words} {'over' if self.left_seconds < 0 else 'left'}"


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def evaluate(
    policy: SlaPolicy, record: HandoffRecord, meta: Mapping[str, str], now: datetime
) -> list[SlaStatus]:
    """Both targets of a case, given its timings (:meth:`HandoffQueue.meta`)."""
    opened = datetime.fromisoformat(record.created_at)
    target = policy.target(record.priority, record.team)
    found = []
    for kind, allowed, met_at in (
        ("first_response", target.first_response, _parse(meta.get("first_response_at"))),
        ("resolution", target.resolution, _parse(meta.get("closed_at"))),
    ):
        due = add_business_time(policy.hours, opened, allowed.total_seconds())
        until = met_at or now
        if until <= due:
            left = business_seconds(policy.hours, until, due)
        else:
            left = -business_seconds(policy.hours, due, until)
        found.append(SlaStatus(kind, due, met_at, left, breached=until > due))
    return found


# Notify once: only the call that adds the breach notifies. The call's marker (KEYS[2]) lets a
# repeated run of this script (the client repeats a command whose reply was lost) know that the
# breach was added by its own first run, rather than by another process, so it is not skipped.
_ONCE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
return 1
"""


class SlaMonitor:
    """Finds breaches among open cases and tells the hooks, each breach once.

    Args:
        queue: The handoff queue.
        policy: Targets and hours.
        notify: Told about each breach once.
        alert: Told about each safeguarding case opened while the centre is closed (optional):
            once per case, shared with the handoff action's alerts; failures are retried.
        clock: Returns the current time.
    """

    def __init__(
        self,
        queue: HandoffQueue,
        policy: SlaPolicy,
        *,
        notify: Notifier,
        alert: Notifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.queue = queue
        self.policy = policy
        self.notify = notify
        self.alert = alert
        self.clock = clock
        self.alerts = (
            SafeguardingAlerts(queue.redis, queue.namespace, hook=alert, clock=clock)
            if alert is not None
            else None
        )
        self._once_script = queue.redis.register_script(_ONCE)

    def _key(self, *parts: str) -> str:
        return ":".join((self.queue.prefix, "sla", *parts))

    @property
    def breaches_key(self) -> str:
        """Sorted set of notified breaches (``{case_id}:{kind}``, scored by due time in ms)."""
        return self._key("breaches")

    async def status(self, record: HandoffRecord) -> list[SlaStatus]:
        """Both targets of a case, now."""
        return evaluate(self.policy, record, await self.queue.meta(record.case_id), self.clock())

    async def check(self, batch: int = 500) -> list[Breach]:
        """Notify new breaches and out-of-hours safeguarding cases; return what was notified.

        Alerts that failed before and are due again are retried first. Returned: the breaches
        and alerts posted in this check, whether the hook accepted them or not.
        """
        notified: list[Breach] = []
        if self.alerts is not None:
            for alert, outcome in await self.alerts.retry_due():
                if outcome in ("sent", "failed"):
                    notified.append(alert)
        offset = 0
        while records := await self.queue.list_open(offset=offset, limit=batch):
            offset += batch
            for record in records:
                if record.priority == "P1":
                    alerted = await self.safeguarding_alert(record)
                    if alerted is not None:
                        notified.append(alerted)
                for state in await self.status(record):
                    if state.breached:
                        breach = Breach(
                            record.case_id, record.team, record.priority, state.kind, state.due
                        )
                        if await self._once(breach, self.notify):
                            notified.append(breach)
        return notified

    async def safeguarding_alert(self, record: HandoffRecord) -> SafeguardingAlert | None:
        """Alert the hook (once per case) about a safeguarding case opened out of hours.

        Returns:
            The alert when this call posted it (whether the hook accepted it or not).
        """
        opened = datetime.fromisoformat(record.created_at)
        if self.alerts is None or record.priority != "P1" or self.policy.hours.is_open(opened):
            return None
        alert = SafeguardingAlert.for_record(record)
        return alert if await self.alerts.send(alert) in ("sent", "failed") else None

    async def _once(self, breach: Breach, hook: Notifier) -> bool:
        member = f"{breach.case_id}:{breach.kind}"
        added = await self._once_script(
            keys=[self.breaches_key, op_key(self.queue.namespace)],
            args=[breach.due.timestamp() * 1000, member, OP_SECONDS],
        )
        if not added:
            return False
        try:
            await hook(breach)
        except Exception:
            # A failed hook must not stop the checks; the breach stays recorded for reports.
            logger.exception("could not notify %s for case %s", breach.kind, breach.case_id)
        return True

    async def run(self, interval_seconds: float = 60) -> None:
        """Check every ``interval_seconds`` until cancelled."""
        while True:
            try:
                await self.check()
            except Exception:
                logger.exception("service level check failed")
            await asyncio.sleep(interval_seconds)
