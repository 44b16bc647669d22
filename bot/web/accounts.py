"""Console accounts: users, roles, teams, argon2 password hashes and login throttling.

Redis layout (``ns`` is the namespace):

- ``{ns}:user:{username}``: hash with ``password_hash``, ``roles`` and ``teams`` (comma-separated),
  ``disabled`` (``"0"``/``"1"``), ``created_at`` (epoch seconds), ``must_change`` (``"1"``
  after an administrator's reset, until the user has chosen a new password), and optionally
  ``display_name`` (the name residents see in the web chat; absent when not set).
- ``{ns}:users``: set of usernames.
- ``{ns}:login_failures:user:{username}``: hash of failed sign-ins for the username: ``first``,
  ``n``, ``last`` (from anywhere) and ``n:{ip}``, ``last:{ip}`` (from one address);
  ``{ns}:login_failures:ip:{ip}``: ``first``, ``n``, ``last`` for one address. Both expire
  after the throttling window.

Only what sign-in needs is kept, and the optional display name an agent chooses to show
residents (:func:`check_display_name`): no e-mail addresses or other personal data.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis.asyncio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.errors import AccountError
from bot.keys import key
from bot.web import passwords

__all__ = [
    "MAX_DISPLAY_NAME_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "AccountStore",
    "LoginThrottle",
    "User",
    "backoff_seconds",
    "check_display_name",
    "normalise_username",
]

ROLES: tuple[str, ...] = ("agent", "editor", "supervisor", "admin")
MIN_PASSWORD_LENGTH = passwords.MIN_LENGTH
MAX_PASSWORD_LENGTH = passwords.MAX_LENGTH
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_TEAM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_DISPLAY_NAME_LENGTH = 40
_NOT_PLAIN = re.compile(r"[<>{}\\@\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def normalise_username(username: str) -> str:
    """Return the canonical (trimmed, lower-case) form of a username."""
    return username.strip().lower()


@dataclass(frozen=True)
class User:
    """A console user.

    Attributes:
        username: Canonical lower-case login name.
        roles: Any of :data:`ROLES`.
        teams: Team names (the agent console shows only these teams' cases).
        disabled: A disabled user cannot sign in and loses open sessions.
        created_at: Epoch seconds.
        must_change_password: Set by an administrator's reset: the user can do nothing but
            choose a new password until they have.
        display_name: The name residents see in the web chat ('' when none is set: residents
            then see neutral wording, never any part of the username).
    """

    username: str
    roles: frozenset[str]
    teams: tuple[str, ...]
    disabled: bool = False
    created_at: float = 0.0
    must_change_password: bool = False
    display_name: str = ""

    def has_role(self, *roles: str) -> bool:
        """Return whether the user holds any of ``roles``; admins hold every role."""
        return "admin" in self.roles or not self.roles.isdisjoint(roles)


def check_display_name(username: str, value: str) -> str:
    """Return the tidy form of a display name ('' clears it).

    Spaces are trimmed and runs of them made one. A display name is plain text of at most
    :data:`MAX_DISPLAY_NAME_LENGTH` characters: no ``@`` (it is not an e-mail address), no
    markup characters (``<``, ``>``, braces, backslash), no control or direction characters,
    and not only digits.

    Raises:
        AccountError: The name breaks one of these rules.
    """
    name = " ".join(value.split())
    if not name:
        return ""
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise AccountError(
            username, f"a display name is at most {MAX_DISPLAY_NAME_LENGTH} characters"
        )
    if _NOT_PLAIN.search(name):
        raise AccountError(
            username, "a display name is plain text: no @, <, >, {, }, \\ or control characters"
        )
    if name.replace(" ", "").isdigit():
        raise AccountError(username, "a display name cannot be only digits")
    return name


def _check_roles(username: str, roles: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(roles)
    unknown = sorted(chosen - set(ROLES))
    if unknown:
        raise AccountError(
            username, f"unknown role(s) {', '.join(unknown)}; use {', '.join(ROLES)}"
        )
    if not chosen:
        raise AccountError(username, "a user needs at least one role")
    return chosen


def _check_teams(username: str, teams: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(sorted({team.strip().lower() for team in teams if team.strip()}))
    bad = [team for team in chosen if not _TEAM.match(team)]
    if bad:
        raise AccountError(username, f"bad team name(s) {', '.join(bad)}: use a-z, 0-9, _ and -")
    return chosen


class AccountStore:
    """Users in Redis.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace (``"cr"`` in production).
        hasher: Argon2 hasher; its parameters are the current policy (older hashes are rehashed
            at the next successful sign-in).
        clock: Returns epoch seconds.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        self._dummy_hash: str | None = None

    def _key(self, username: str) -> str:
        return key(self._ns, "user", username)

    async def create(
        self, username: str, password: str, roles: Iterable[str], teams: Iterable[str] = ()
    ) -> User:
        """Create a user.

        Raises:
            AccountError: Bad username, role, team or password, or the user exists.
        """
        name = normalise_username(username)
        if not _USERNAME.match(name):
            raise AccountError(name, "usernames are 2-64 characters: a-z, 0-9, '.', '_' and '-'")
        chosen_roles = _check_roles(name, roles)
        chosen_teams = _check_teams(name, teams)
        passwords.check_password(name, password)
        user = User(name, chosen_roles, chosen_teams, created_at=self._clock())
        fields = {
            "password_hash": self._hasher.hash(password),
            "roles": ",".join(sorted(user.roles)),
            "teams": ",".join(user.teams),
            "disabled": "0",
            "created_at": repr(user.created_at),
        }
        # HSETNX on one field makes creation atomic against a concurrent create.
        if not await self._redis.hsetnx(self._key(name), "password_hash", fields["password_hash"]):
            raise AccountError(name, "already exists")
        await self._redis.hset(self._key(name), mapping=fields)
        await self._redis.sadd(key(self._ns, "users"), name)
        return user

    async def get(self, username: str) -> User | None:
        """Return the user, or None when there is none."""
        name = normalise_username(username)
        data = await self._redis.hgetall(self._key(name))
        if not data:
            return None
        return User(
            username=name,
            roles=frozenset(filter(None, data.get("roles", "").split(","))),
            teams=tuple(filter(None, data.get("teams", "").split(","))),
            disabled=data.get("disabled") == "1",
            created_at=float(data.get("created_at", "0")),
            must_change_password=data.get("must_change") == "1",
            display_name=data.get("display_name", ""),
        )

    async def all(self) -> list[User]:
        """Return every user, sorted by username."""
        names = sorted(await self._redis.smembers(key(self._ns, "users")))
        users = [await self.get(name) for name in names]
        return [user for user in users if user is not None]

    async def authenticate(self, username: str, password: str) -> User | None:
        """Return the user when the password is right and the account enabled, else None.

        Unknown users cost the same hashing time as known ones, so timing does not reveal
        which usernames exist.
        """
        name = normalise_username(username)
        if len(password) > MAX_PASSWORD_LENGTH:
            return None  # no account has one; hashing megabytes would be a denial of service
        stored = await self._redis.hget(self._key(name), "password_hash")
        if stored is None:
            self._verify(self._dummy(), password)
            return None
        if not self._verify(stored, password):
            return None
        if self._hasher.check_needs_rehash(stored):
            await self._redis.hset(self._key(name), "password_hash", self._hasher.hash(password))
        user = await self.get(name)
        return None if user is None or user.disabled else user

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    async def _require(self, username: str) -> str:
        name = normalise_username(username)
        if not await self._redis.exists(self._key(name)):
            raise AccountError(name, "no such user")
        return name

    async def set_roles(self, username: str, roles: Iterable[str], teams: Iterable[str]) -> User:
        """Replace a user's roles and teams.

        Raises:
            AccountError: No such user, or a bad role or team.
        """
        name = await self._require(username)
        chosen_roles = _check_roles(name, roles)
        chosen_teams = _check_teams(name, teams)
        await self._redis.hset(
            self._key(name),
            mapping={"roles": ",".join(sorted(chosen_roles)), "teams": ",".join(chosen_teams)},
        )
        user = await self.get(name)
        assert user is not None  # just written
        return user

    async def set_display_name(self, username: str, display_name: str) -> User:
        """Set (or, with an empty or blank value, clear) the name residents see.

        Raises:
            AccountError: No such user, or the name breaks :func:`check_display_name`.
        """
        name = await self._require(username)
        chosen = check_display_name(name, display_name)
        if chosen:
            await self._redis.hset(self._key(name), "display_name", chosen)
        else:
            await self._redis.hdel(self._key(name), "display_name")
        user = await self.get(name)
        assert user is not None  # just written
        return user

    async def display_name(self, username: str) -> str:
        """Return the user's display name ('' when none is set or there is no such user)."""
        value = await self._redis.hget(self._key(normalise_username(username)), "display_name")
        return value or ""

    async def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable or re-enable a user.

        Raises:
            AccountError: No such user.
        """
        name = await self._require(username)
        await self._redis.hset(self._key(name), "disabled", "1" if disabled else "0")

    async def set_password(
        self, username: str, password: str, *, must_change: bool = False
    ) -> None:
        """Set a new password (an administrator's reset passes ``must_change=True``).

        Raises:
            AccountError: No such user, or the password breaks the policy
                (:mod:`bot.web.passwords`).
        """
        name = await self._require(username)
        passwords.check_password(name, password)
        await self._redis.hset(
            self._key(name),
            mapping={
                "password_hash": self._hasher.hash(password),
                "must_change": "1" if must_change else "0",
            },
        )

    async def change_password(self, username: str, current: str, new: str) -> User:
        """Let a user replace their own password; this ends a forced change.

        Raises:
            AccountError: The current password is not right (or the account is disabled),
                the new one is the same, or it breaks the policy.
        """
        name = normalise_username(username)
        if await self.authenticate(name, current) is None:
            raise AccountError(name, "the current password is not right")
        if new == current:
            raise AccountError(name, "the new password must differ from the current one")
        await self.set_password(name, new)
        user = await self.get(name)
        assert user is not None  # just written
        return user


def backoff_seconds(failures: int, free: int, cap: int) -> int:
    """Return the delay in seconds after ``failures`` failed sign-ins.

    None before the ``free``-th failure, then 1 s doubling with each failure, at most ``cap``.
    """
    if failures < free:
        return 0
    return min(1 << min(failures - free, 30), cap)


# One script, no command newer than Redis 2.6 (EXPIRE NX, Redis 7 only, made every failure an
# error on the embedded Redis 6.2). A username's failures are forgotten after a window without
# any (so delays keep growing while guessing goes on); an address's after a fixed window from
# its first failure. KEYS[1] per-username hash, KEYS[2] per-address hash; ARGV: now, window,
# address.
_COUNT_FAILURE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local function count(counter, since)
  local start = tonumber(redis.call('HGET', counter, since))
  if start == nil or now - start >= window then
    redis.call('DEL', counter)
    redis.call('HSET', counter, 'first', ARGV[1])
  end
  redis.call('EXPIRE', counter, math.ceil(window + 1))
  redis.call('HINCRBY', counter, 'n', 1)
  redis.call('HSET', counter, 'last', ARGV[1])
end
count(KEYS[1], 'last')
count(KEYS[2], 'first')
redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[3], 1)
redis.call('HSET', KEYS[1], 'last:' .. ARGV[3], ARGV[1])
return 1
"""


class LoginThrottle:
    """Slows down password guessing without letting anyone lock a user out.

    Three counters of failed sign-ins:

    - per username, from anywhere: after ``max_per_user`` failures each further attempt waits
      a delay that doubles per failure up to ``max_user_delay`` seconds (a minute by default),
      so a user can always sign in after a short wait, whoever else is guessing;
    - per username and address: the same from one address, up to ``max_pair_delay`` (the
      guesser's own address waits up to 15 minutes);
    - per address: ``max_per_ip`` failures (whatever the usernames) refuse that address until
      the window ends. The address is the real client's (see :mod:`bot.web.proxies`).

    Attempts refused while waiting are not verified and not counted, so they do not make the
    wait longer. An administrator can :meth:`unlock` a user.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace.
        max_per_user: Failures per username (and per username and address) before delays start.
        max_per_ip: Failures per client address before that address is refused.
        window_seconds: A username's failures are forgotten after this long without one; an
            address's this long after its first.
        max_user_delay: Longest wait for a username, from any address.
        max_pair_delay: Longest wait for a username from one address.
        clock: Returns epoch seconds.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        max_per_user: int = 5,
        max_per_ip: int = 20,
        window_seconds: int = 15 * 60,
        max_user_delay: int = 60,
        max_pair_delay: int = 15 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._max_user = max_per_user
        self._max_ip = max_per_ip
        self.window_seconds = window_seconds
        self._user_cap = max_user_delay
        self._pair_cap = max_pair_delay
        self._clock = clock
        self._count = redis.register_script(_COUNT_FAILURE)

    def _user_key(self, username: str) -> str:
        return key(self._ns, "login_failures", "user", normalise_username(username)[:64])

    def _ip_key(self, ip: str) -> str:
        return key(self._ns, "login_failures", "ip", ip)

    async def wait_seconds(self, username: str, ip: str) -> int:
        """Return how many seconds this username must wait before trying from ``ip`` (0: go)."""
        now = self._clock()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._user_key(username), ["n", "last", f"n:{ip}", f"last:{ip}"])
            pipe.hmget(self._ip_key(ip), ["first", "n"])
            (n, last, pair_n, pair_last), (ip_first, ip_n) = await pipe.execute()
        waits = [0.0]
        if last is not None and now - float(last) < self.window_seconds:
            user_delay = backoff_seconds(int(n or 0), self._max_user, self._user_cap)
            pair_delay = backoff_seconds(int(pair_n or 0), self._max_user, self._pair_cap)
            waits.append(float(last or 0) + user_delay - now)
            waits.append(float(pair_last or 0) + pair_delay - now)
        if ip_first is not None and int(ip_n or 0) >= self._max_ip:
            waits.append(float(ip_first) + self.window_seconds - now)
        return math.ceil(max(waits))

    async def locked(self, username: str, ip: str) -> bool:
        """Return whether sign-in is refused right now for this username from ``ip``."""
        return await self.wait_seconds(username, ip) > 0

    async def failure(self, username: str, ip: str) -> None:
        """Count a failed sign-in (one atomic script, on any Redis from 2.6 or Valkey)."""
        await self._count(
            keys=[self._user_key(username), self._ip_key(ip)],
            args=[repr(self._clock()), self.window_seconds, ip],
        )

    async def success(self, username: str, ip: str = "") -> None:
        """Forget the username's failures, and those from ``ip``, after a successful sign-in.

        Failures from other addresses are kept: a guesser's delay does not start again because
        the real user signed in.
        """
        await self._redis.hdel(self._user_key(username), "n", f"n:{ip}", f"last:{ip}")

    async def unlock(self, username: str) -> bool:
        """Forget the username's failures (an administrator's unlock); True if there were any."""
        return bool(await self._redis.delete(self._user_key(username)))

    async def failures(self, username: str) -> int:
        """Return the username's failures in the current window (for the admin page)."""
        n, last = await self._redis.hmget(self._user_key(username), ["n", "last"])
        if last is None or self._clock() - float(last) >= self.window_seconds:
            return 0
        return int(n or 0)
