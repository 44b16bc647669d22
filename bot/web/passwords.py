"""The console's password policy: long enough, not common, not guessable from the username.

A password must have at least :data:`MIN_LENGTH` characters (at most :data:`MAX_LENGTH`, so
hashing stays cheap), must not contain the username, must not be one of the common passwords
shipped in ``bot/web/data/common-passwords.txt`` (also with digits or symbols added before or
after: ``password1234``), must not repeat a short pattern (``aaaaaaaaaaaa``,
``abcabcabcabc``) and must not be a run of the alphabet, digits or keyboard
(``qwertyuiopas``). The check follows NCSC and NIST SP 800-63B guidance: length and a deny
list, no composition rules.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from bot.errors import AccountError

__all__ = [
    "COMMON_PASSWORDS_FILE",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "check_password",
    "common_passwords",
    "password_problems",
]

MIN_LENGTH = 12
MAX_LENGTH = 1024
COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt"
_AFFIXES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_REPEATS = re.compile(r"(.+?)\1+", re.DOTALL)
_RUNS = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890123456789",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm",
)


@functools.cache
def common_passwords() -> frozenset[str]:
    """Return the shipped list of common passwords (lower-case), read once."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _is_run(text: str) -> bool:
    return any(text in run or text in run[::-1] for run in _RUNS)


def password_problems(username: str, password: str) -> list[str]:
    """Return what is wrong with ``password`` for ``username`` (empty when it is acceptable).

    The sentences never repeat the password.
    """
    if len(password) < MIN_LENGTH:
        return [f"password must have at least {MIN_LENGTH} characters"]
    if len(password) > MAX_LENGTH:
        return [f"password must have at most {MAX_LENGTH} characters"]
    lowered = password.lower()
    squeezed = "".join(lowered.split())
    core = _AFFIXES.sub("", squeezed)
    name = username.strip().lower()
    problems = []
    if name and lowered.strip() == name:
        problems.append("password must not be the username")
    elif len(name) >= 3 and name in squeezed:
        problems.append("password must not contain the username")
    common = common_passwords()
    if squeezed in common or core in common:
        problems.append("password is too common: it is on a list of passwords people often use")
    elif _REPEATS.fullmatch(squeezed) or _REPEATS.fullmatch(core or squeezed):
        problems.append("password must not repeat a short pattern")
    elif _is_run(squeezed) or (len(core) >= 4 and _is_run(core)):
        problems.append("password must not be a run of letters, digits or keyboard keys")
    return problems


def check_password(username: str, password: str) -> None:
    """Refuse a password that breaks the policy.

    Raises:
        AccountError: With every problem found (never the password itself).
    """
    problems = password_problems(username, password)
    if problems:
        raise AccountError(username, "; ".join(problems))
