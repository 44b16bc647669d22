"""Web chat conversation tokens: opaque to the widget, signed, one council only.

A token is ``wc1.<council id>.<conversation>.<issued>.<signature>``: the conversation is 128
random bits (hex), ``issued`` the Unix second it was made (base 36), the signature an
HMAC-SHA256 (base64url) over the rest under a key derived from ``COUNCIL_WEBCHAT_SECRET`` and
the council id, so a token made for one council never verifies for another even with the same
secret. It names no person and carries nothing the resident typed. Ended conversations are
revoked in Redis (:mod:`bot.webchat.events`); this module only signs and checks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import CouncilError

__all__ = ["MAX_AGE_SECONDS", "MIN_SECRET_LENGTH", "Conversation", "TokenError", "TokenSigner"]

MAX_AGE_SECONDS = 24 * 3600
"""A token older than this is refused (the tab's ``sessionStorage`` rarely lives longer)."""
MIN_SECRET_LENGTH = 32
_VERSION = "wc1"
_SHAPE = re.compile(
    r"wc1\.(?P<council>[a-z0-9-]{2,40})\.(?P<conversation>[0-9a-f]{32})"
    r"\.(?P<issued>[0-9a-z]{1,10})\.(?P<signature>[A-Za-z0-9_-]{43})\Z"
)


class TokenError(CouncilError):
    """A token is malformed, forged, expired or for another council.

    Attributes:
        reason: Why (for the log; the resident is told only that the chat has ended).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Conversation:
    """What a verified token names.

    Attributes:
        council_id: The council it was made for.
        conversation: The random conversation id (the ``sender`` of the channel ``webchat``).
        issued_at: Unix seconds.
    """

    council_id: str
    conversation: str
    issued_at: int


class TokenSigner:
    """Makes and checks the tokens of one council.

    Args:
        secret: ``COUNCIL_WEBCHAT_SECRET`` (at least :data:`MIN_SECRET_LENGTH` characters).
        council_id: The profile's ``webchat.council_id``.
        max_age: Seconds a token stays valid.
        clock: Unix seconds (tests pass a fake).

    Raises:
        ValueError: The secret is too short.
    """

    def __init__(
        self,
        secret: str,
        council_id: str,
        *,
        max_age: int = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the web chat secret needs at least {MIN_SECRET_LENGTH} characters")
        self.council_id = council_id
        self.max_age = max_age
        self.clock = clock
        self._key = hmac.new(
            secret.encode(), f"webchat-token:{council_id}".encode(), hashlib.sha256
        ).digest()

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self) -> tuple[str, Conversation]:
        """A new conversation and its token."""
        issued = int(self.clock())
        conversation = Conversation(self.council_id, secrets.token_hex(16), issued)
        body = f"{_VERSION}.{self.council_id}.{conversation.conversation}.{_base36(issued)}"
        return f"{body}.{self._sign(body)}", conversation

    def verify(self, token: str) -> Conversation:
        """The conversation a token names.

        Raises:
            TokenError: Malformed, bad signature, another council's, or expired.
        """
        match = _SHAPE.match(token)
        if match is None:
            raise TokenError("malformed token")
        body = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(self._sign(body).encode(), match["signature"].encode()):
            raise TokenError("bad signature")
        if match["council"] != self.council_id:  # signed for this council's key: cannot happen
            raise TokenError("another council's token")
        issued = int(match["issued"], 36)
        age = self.clock() - issued
        if age > self.max_age or age < -60:
            raise TokenError("expired token")
        return Conversation(self.council_id, match["conversation"], issued)


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text
