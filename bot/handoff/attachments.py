"""How a resident's message with attachments reads in a handoff case: "[photo]", "[contact]"...

The channel workers put what a resident sent besides words in ``UserMessage.metadata``
(``attachments``: ``[{"kind", "url", "content_type"}]``, ``contact``), and a message with only
such things reaches Rasa as :data:`bot.channels.rasa.CANNOT_READ`. :func:`resident_text` turns a
stored user event back into what an agent should read: the resident's words (never the
``/attachment`` payload), then a label per attachment.

A label carries the attachment's address only when it is safe to show (:func:`safe_url`): an
``https`` address with no user name, password, query or fragment. Telegram's ``tg-file:`` ids
(fetching one needs the bot token), Meta's signed CDN addresses (their query is the access
grant) and anything with credentials in it are labelled without an address. The address is
shown as text, never as a link the console makes clickable, so a resident cannot plant a link
that looks like the council's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["INTENT_PAYLOAD", "label", "resident_text", "safe_url"]

INTENT_PAYLOAD = "/attachment"
"""The text Rasa reads for a message the bot cannot use (see ``bot.channels.rasa``)."""

_LABELS = {
    "image": "photo",
    "photo": "photo",
    "animated_gif": "animation",
    "audio": "audio",
    "voice": "voice message",
    "video": "video",
    "file": "document",
    "document": "document",
    "sticker": "sticker",
}


def safe_url(url: str) -> str:
    """``url`` when it may be shown to agents, else ''."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    has_credentials = parts.username is not None or parts.password is not None
    if parts.scheme != "https" or not parts.hostname or has_credentials:
        return ""
    if parts.query or parts.fragment or any(ch.isspace() for ch in url):
        return ""
    return url


def label(attachment: Mapping[str, Any]) -> str:
    """``[photo]``, or ``[photo https://...]`` when its address is safe to show."""
    kind = str(attachment.get("kind") or "file")
    content_type = str(attachment.get("content_type") or "")
    name = _LABELS.get(kind, kind.replace("_", " "))
    if content_type == "audio/ogg":  # WhatsApp and Telegram voice notes
        name = "voice message"
    url = safe_url(str(attachment.get("url") or ""))
    return f"[{name} {url}]" if url else f"[{name}]"


def resident_text(event: Mapping[str, Any]) -> str:
    """What an agent reads for a stored Rasa ``user`` event: words, then attachment labels."""
    text = str(event.get("text") or "")
    if text.strip() == INTENT_PAYLOAD:
        text = ""
    metadata = event.get("metadata")
    if not isinstance(metadata, Mapping):
        return text
    labels = [
        label(item) for item in metadata.get("attachments") or () if isinstance(item, Mapping)
    ]
    contact = metadata.get("contact")
    if isinstance(contact, Mapping):  # shared on purpose: the agent may need to call it
        details = ", ".join(str(contact.get(f) or "") for f in ("name", "phone") if contact.get(f))
        labels.append(f"[contact: {details}]" if details else "[contact]")
    return " ".join(part for part in (text.strip(), *labels) if part)
