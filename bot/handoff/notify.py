"""Notices about handoff cases for outside hooks: service-level breaches and alerts.

A notice is a small JSON object that names a case but carries nothing a resident said (no
message text, no contact details): hooks post it to chat rooms, pagers and email.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime

import aiohttp

__all__ = ["Breach", "Notifier", "WebhookNotifier"]


@dataclass(frozen=True)
class Breach:
    """A missed target, as sent to the team's hook.

    Attributes:
        case_id: The case.
        team: Its team.
        priority: Its priority.
        kind: ``first_response`` or ``resolution``; ``safeguarding_out_of_hours`` for alerts.
        due: When the target ran out (the case's opening time for alerts).
    """

    case_id: str
    team: str
    priority: str
    kind: str
    due: datetime

    def to_json(self) -> dict[str, str]:
        """The webhook body."""
        body = asdict(self)
        return {name: _text(value) for name, value in body.items()}


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


Notifier = Callable[[Breach], Awaitable[None]]
"""A hook told about a breach or an alert (a webhook, an email sender, a test's list)."""


class WebhookNotifier:
    """POSTs a breach (or an alert) as JSON to a URL.

    Args:
        url: Where to post.
        timeout_seconds: Give up after this long.
    """

    def __init__(self, url: str, timeout_seconds: float = 10) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def __call__(self, breach: Breach) -> None:
        """Post ``breach``.

        Raises:
            aiohttp.ClientError: The hook did not answer with a 2xx status.
            TimeoutError: The hook did not answer within the timeout.
        """
        async with (
            aiohttp.ClientSession(timeout=self.timeout) as session,
            session.post(self.url, json=breach.to_json()) as response,
        ):
            response.raise_for_status()
