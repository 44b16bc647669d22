"""Reports shown to agents as console cases.

Those delivered to a council without Open311, and those not deliverable at all.

:func:`report_record` builds the :class:`~bot.handoff.record.HandoffRecord` of a report: the
owning team (the profile's ``reports.services`` team of its service code, else the routing
default), the description as the resident's message, and entities the case page shows as a
map link and a photo link (``report_location`` ``"lat,long"``, ``report_photo``,
``report_reference``, ``report_service``, ``report_address``, ``report_answers``). Its case id
is made from the report id and the reason, so opening it again after a crash changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import redis.asyncio

from bot.channels.window import window_state
from bot.handoff.queue import HandoffQueue
from bot.handoff.record import HandoffRecord
from bot.profile import CouncilProfile
from bot.reports.model import ProblemReport

__all__ = ["DELIVERED", "FAILED", "ReportCases", "report_record"]

DELIVERED = "problem_report"
"""Reason of the case of a report delivered by e-mail or webhook (the team records it)."""
FAILED = "problem_report_failed"
"""Reason of the case of a report the back office did not take (an agent records it)."""


def report_record(
    report: ProblemReport,
    *,
    reason: str,
    reference: str,
    team: str,
    note: str,
    window: dict[str, object] | None = None,
) -> HandoffRecord:
    """The console case of ``report`` (see the module docstring)."""
    made = datetime.fromtimestamp(report.created_at, UTC).isoformat()
    entities: dict[str, list[str]] = {
        "report_service": [f"{report.service_name} ({report.service_code})"],
        "report_reference": [reference],
    }
    if report.lat is not None and report.long is not None:
        entities["report_location"] = [f"{report.lat},{report.long}"]
    if report.address_string:
        entities["report_address"] = [report.address_string]
    if report.media_url:
        entities["report_photo"] = [report.media_url]
    if report.attributes:
        entities["report_answers"] = [
            f"{k}: {', '.join(v) if isinstance(v, list) else v}"
            for k, v in sorted(report.attributes.items())
        ]
    digest = hashlib.sha256(f"{report.report_id}|{reason}".encode()).hexdigest()[:16]
    return HandoffRecord(
        conversation_id=report.conversation_id,
        channel=report.channel,
        account=report.account,
        sender=report.sender,
        reason=reason,
        topic=f"report: {report.service_name}",
        priority="P2" if reason == FAILED else "P3",
        team=team,
        created_at=datetime.now(UTC).isoformat(),
        transcript=[
            {"role": "resident", "text": report.description, "at": made},
            {"role": "bot", "text": note, "at": datetime.now(UTC).isoformat()},
        ],
        entities=entities,
        window=window,
        language=report.language,
        case_id=digest,
    )


class ReportCases:
    """Opens report cases in the agent console.

    Args:
        client: Asyncio Redis client (decoded strings).
        namespace: Key namespace.
        profile: The council profile (teams, routing, ``reports.services``).
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str, profile: CouncilProfile
    ) -> None:
        self.redis = client
        self.namespace = namespace
        self.profile = profile
        self.queue = HandoffQueue(client, namespace)

    def team_for(self, report: ProblemReport) -> str:
        """The team whose agents see the report."""
        default = self.profile.routing.default
        reports = self.profile.reports
        return reports.team_for(report.service_code, default) if reports else default

    async def open(self, report: ProblemReport, *, reason: str, reference: str, note: str) -> str:
        """Open (once) the case of ``report``; return its id."""
        window = await window_state(self.redis, report.conversation_id, namespace=self.namespace)
        record = report_record(
            report,
            reason=reason,
            reference=reference,
            team=self.team_for(report),
            note=note,
            window=window,
        )
        return await self.queue.open(record)
