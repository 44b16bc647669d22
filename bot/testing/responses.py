"""What a resident would read from an action's messages, rendered as the Rasa server would.

Actions name responses (``dispatcher.utter_message(response="utter_x", value=...)``); the Rasa
server fills them in with :class:`bot.responses.CouncilResponses`. Unit tests of actions call
:func:`rendered` to see the same text without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.profile import CouncilProfile
from bot.responses import CouncilResponses, load_responses

__all__ = ["rendered", "rendered_messages"]

_MESSAGE_KEYS = ("text", "buttons", "image", "json_message", "attachment", "elements")


def rendered_messages(
    messages: Iterable[Mapping[str, Any]],
    channel: str,
    *,
    profile: CouncilProfile | None = None,
    slots: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each collected message as sent: named responses filled in, buttons kept.

    Raises:
        AssertionError: A message names a response the domain does not have, or a value the
            response uses was not given (Rasa would then send the raw ``{placeholders}``).
    """
    responses = CouncilResponses(responses=load_responses(), profile=profile)
    out = []
    for message in messages:
        name = message.get("response")
        if not name:
            out.append(dict(message))
            continue
        values = {k: v for k, v in message.items() if k not in (*_MESSAGE_KEYS, "response")}
        filled = responses.render(str(name), channel, slots, **values)
        assert filled is not None, f"no response {name!r} in responses/*.yml"
        assert "{" not in str(filled.get("text")), f"{name}: a value is missing: {filled['text']}"
        filled["buttons"] = [*(filled.get("buttons") or []), *(message.get("buttons") or [])]
        out.append(filled)
    return out


def rendered(
    messages: Iterable[Mapping[str, Any]],
    channel: str = "whatsapp",
    *,
    profile: CouncilProfile | None = None,
) -> list[str]:
    """The texts of the collected messages as the resident reads them."""
    return [str(m.get("text") or "") for m in rendered_messages(messages, channel, profile=profile)]
