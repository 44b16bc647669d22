"""What a resident's problem report is.

Shared by the conversation (the form in ``actions/``) and the back-office side (submission
outbox, Open311 client, updates back to the resident).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Contact", "ProblemReport"]


@dataclass(frozen=True)
class Contact:
    """A resident's contact details, passed to the back office only when they agreed."""

    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True)
class ProblemReport:
    """A confirmed report, ready to submit (Open311 GeoReport v2 ``POST requests`` fields).

    ``report_id`` is ours (unique, also the idempotency key of the submission);
    ``conversation_id``/``channel``/``account``/``sender`` say where updates go back to.
    Either ``lat``/``long`` or ``address_string`` is set. ``attributes`` are the answers to the
    service definition's questions (``attribute[code]``; a list for a ``multivaluelist``
    question, posted as repeated ``attribute[code][]``; records written before lists were
    allowed read back unchanged). ``media_url`` is the stored photo's
    unguessable, expiring URL. ``language`` is the conversation's (``en`` | ``cy``).
    """

    report_id: str
    conversation_id: str
    channel: str
    account: str
    sender: str
    service_code: str
    service_name: str
    description: str
    created_at: float
    lat: float | None = None
    long: float | None = None
    address_string: str = ""
    attributes: dict[str, str | list[str]] = field(default_factory=dict)
    media_url: str = ""
    contact: Contact | None = None
    language: str = "en"

    def to_json(self) -> str:
        """Serialise for a Redis stream field."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProblemReport:
        """Read back what :meth:`to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        contact = data.pop("contact", None)
        return cls(**data, contact=Contact(**contact) if contact else None)
