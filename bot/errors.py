"""The exceptions Council Responder raises.

Every error is a :class:`CouncilError`, so callers can catch the whole family; each subclass
carries the data a caller needs to react or to tell a person what went wrong.
"""

from __future__ import annotations

import copyreg
from typing import Any

__all__ = [
    "AccountError",
    "ActionServerUnreachableError",
    "BackOfficeError",
    "ConfigError",
    "CouncilError",
    "EntryInvalidError",
    "EntryNotFoundError",
    "MissingSecretError",
    "ModelIntegrityError",
    "PayloadError",
    "PublishBlockedError",
    "RedisUnavailableError",
    "SignatureError",
]


class CouncilError(Exception):
    """Root of every error raised by this project.

    Every subclass survives pickling (errors cross process boundaries: multiprocessing,
    logging queues) with its message and data attributes, whatever its ``__init__`` takes.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's default calls ``cls(*self.args)``, and ``args`` is only the message
        # here; rebuild without ``__init__`` and put the data attributes (and notes) back.
        # (copyreg.__newobj__ is pickle's own ``cls.__new__(cls, *args)``; typeshed omits it)
        rebuild = copyreg.__newobj__  # type: ignore[attr-defined]
        return rebuild, (type(self), *self.args), self.__dict__


class ConfigError(CouncilError):
    """A configuration file is missing, unreadable or has a bad value.

    Args:
        path: The file that holds the problem.
        key: The dotted key inside the file (empty when the whole file is bad).
        reason: What is wrong, in words a council's IT team can act on.
    """

    def __init__(self, path: str, key: str, reason: str) -> None:
        self.path = path
        self.key = key
        self.reason = reason
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {reason}")


class MissingSecretError(CouncilError):
    """A secret that must come from the environment is not set.

    Args:
        variable: The environment variable's name.
        purpose: What the secret is for.
    """

    def __init__(self, variable: str, purpose: str = "") -> None:
        self.variable = variable
        self.purpose = purpose
        detail = f" ({purpose})" if purpose else ""
        super().__init__(f"environment variable {variable} is not set{detail}")


class RedisUnavailableError(CouncilError):
    """The configured Redis server does not answer.

    Args:
        url: The Redis URL with any password masked.
        reason: The underlying failure.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"Redis at {url} is unreachable: {reason}. "
            "Start it, fix REDIS_URL, or unset REDIS_URL to use the embedded Redis."
        )


class SignatureError(CouncilError):
    """A webhook request failed its signature or token check.

    Args:
        channel: The channel whose check failed.
        reason: Why it failed (never includes the request body).
    """

    def __init__(self, channel: str, reason: str) -> None:
        self.channel = channel
        self.reason = reason
        super().__init__(f"{channel}: signature check failed: {reason}")


class PayloadError(CouncilError):
    """A verified webhook body cannot be understood.

    Args:
        channel: The channel that sent it.
        reason: What is malformed.
    """

    def __init__(self, channel: str, reason: str) -> None:
        self.channel = channel
        self.reason = reason
        super().__init__(f"{channel}: malformed payload: {reason}")


class ModelIntegrityError(CouncilError):
    """A model file does not have the checksum we expect.

    Args:
        path: The file checked.
        expected: The sha256 we require.
        actual: The sha256 found (empty when the file is missing).
    """

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        found = actual or "no file"
        super().__init__(f"{path}: expected sha256 {expected}, found {found}")


class AccountError(CouncilError):
    """A console account cannot be created or changed as asked.

    Args:
        username: The account concerned.
        reason: What is wrong (never includes a password).
    """

    def __init__(self, username: str, reason: str) -> None:
        self.username = username
        self.reason = reason
        super().__init__(f"account {username!r}: {reason}")


class EntryNotFoundError(CouncilError):
    """A knowledge-base entry (or one of its versions) does not exist.

    Args:
        entry_id: The entry asked for.
        version: The version asked for (0 when any version was meant).
    """

    def __init__(self, entry_id: str, version: int = 0) -> None:
        self.entry_id = entry_id
        self.version = version
        which = f" version {version}" if version else ""
        super().__init__(f"knowledge entry {entry_id!r}{which} does not exist")


class EntryInvalidError(CouncilError):
    """A knowledge-base entry cannot be saved or published as it is.

    Args:
        entry_id: The entry concerned.
        problems: One sentence per problem, in words an editor can act on.
    """

    def __init__(self, entry_id: str, problems: list[str]) -> None:
        self.entry_id = entry_id
        self.problems = list(problems)
        super().__init__(f"knowledge entry {entry_id!r}: " + "; ".join(self.problems))


class PublishBlockedError(CouncilError):
    """The regression gate refused a publish because test conversations would break.

    Args:
        entry_id: The entry whose publish was refused.
        broken: One line per broken test conversation turn.
    """

    def __init__(self, entry_id: str, broken: list[str]) -> None:
        self.entry_id = entry_id
        self.broken = list(broken)
        super().__init__(
            f"publishing {entry_id!r} would break {len(self.broken)} test conversation(s): "
            + "; ".join(self.broken)
        )


class ActionServerUnreachableError(CouncilError):
    """The action server did not answer a custom action's call, retried for the whole budget.

    Raised out of the Rasa turn (:mod:`bot.rasa_patches`) so the inbox worker retries the
    message later and finally dead-letters it, instead of the turn ending without the action.

    Args:
        action: The custom action's name.
        url: The action server's endpoint.
        reason: The last failure and how long it was tried.
    """

    def __init__(self, action: str, url: str, reason: str) -> None:
        self.action = action
        self.url = url
        self.reason = reason
        super().__init__(f"action server unreachable: {action!r} at {url}: {reason}")


class BackOfficeError(CouncilError):
    """The council's back office (Open311 server, e-mail relay, webhook) did not take a call.

    Args:
        target: Which back office, without secrets (``open311 http://host/open311/v2``).
        status: The HTTP status (0: no answer at all: refused, timed out, cut off; 200 with
            ``reason`` saying so: an answer that could not be read).
        reason: What went wrong, in words for the agents' failed list (never an api key).
        ambiguous: The call may have been carried out although it failed (a timeout after the
            request was sent, a 5xx, an unreadable answer): look before doing it again.
    """

    def __init__(self, target: str, status: int, reason: str, ambiguous: bool = False) -> None:
        self.target = target
        self.status = status
        self.reason = reason
        self.ambiguous = ambiguous
        code = f"HTTP {status}" if status else "no answer"
        super().__init__(f"{target}: {code}: {reason}")

    @property
    def retryable(self) -> bool:
        """Worth trying again later (a 400/404/422 refusal of the report itself is not).

        No answer, garbage, 401/403 (a key being fixed), 408, 429 and 5xx are.
        """
        return self.status in (0, 200, 401, 403, 408, 429) or self.status >= 500
