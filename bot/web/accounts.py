"""Console accounts: users, roles, teams, argon2 password hashes and login throttling.

Redis layout (``ns`` is the namespace):

- ``{ns}:user:{username}``: hash with ``password_hash``, ``roles`` and ``teams`` (comma-separated),
  ``disabled`` (``"0"``/``"1"``), ``created_at`` (epoch seconds).
- ``{ns}:users``: set of usernames.
- ``{ns}:login_failures:user:{username}`` / ``{ns}:login_failures:ip:{ip}``: failure counters that
  expire at the end of the throttling window.

Only what sign-in needs is kept: no names, e-mail addresses or other personal data.
"""

from __future__ import annotations

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

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "AccountStore",
    "LoginThrottle",
    "User",
    "normalise_username",
]

ROLES: tuple[str, ...] = ("agent", "editor", "supervisor", "admin")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_TEAM = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


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
    """

    username: str
    roles: frozenset[str]
    teams: tuple[str, ...]
    disabled: bool = False
    created_at: float = 0.0

    def has_role(self, *roles: str) -> bool:
        """Return whether the user holds any of ``roles``; admins hold every role."""
        return "admin" in self.roles or not self.roles.isdisjoint(roles)


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


def _check_password(username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            username, f"password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(username, f"password must have at most {MAX_PASSWORD_LENGTH} characters")
    if normalise_username(password) == username:
        raise AccountError(username, "password must not be the username")


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
        _check_password(name, password)
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

    async def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable or re-enable a user.

        Raises:
            AccountError: No such user.
        """
        name = await self._require(username)
        await self._redis.hset(self._key(name), "disabled", "1" if disabled else "0")

    async def set_password(self, username: str, password: str) -> None:
        """Set a new password.

        Raises:
            AccountError: No such user, or the password is too weak.
        """
        name = await self._require(username)
        _check_password(name, password)
        await self._redis.hset(self._key(name), "password_hash", self._hasher.hash(password))


class LoginThrottle:
    """Counts failed sign-ins per username and per client IP address.

    A fixed window starts at the first failure; when either counter reaches its limit, sign-in
    is refused (even with the right password) until the window ends.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace.
        max_per_user: Failures allowed per username within the window.
        max_per_ip: Failures allowed per client IP (higher: council offices share one address).
        window_seconds: Length of the window.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str = "cr",
        *,
        max_per_user: int = 5,
        max_per_ip: int = 20,
        window_seconds: int = 15 * 60,
    ) -> None:
        self._redis = redis
        self._ns = namespace
        self._max_user = max_per_user
        self._max_ip = max_per_ip
        self.window_seconds = window_seconds

    def _keys(self, username: str, ip: str) -> tuple[str, str]:
        name = normalise_username(username)[:64]
        return (
            key(self._ns, "login_failures", "user", name),
            key(self._ns, "login_failures", "ip", ip),
        )

    async def locked(self, username: str, ip: str) -> bool:
        """Return whether sign-in is currently refused for this username or IP."""
        user_key, ip_key = self._keys(username, ip)
        user_count, ip_count = await self._redis.mget(user_key, ip_key)
        return int(user_count or 0) >= self._max_user or int(ip_count or 0) >= self._max_ip

    async def failure(self, username: str, ip: str) -> None:
        """Count a failed sign-in."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for counter in self._keys(username, ip):
                pipe.incr(counter)
                pipe.expire(counter, self.window_seconds, nx=True)
            await pipe.execute()

    async def success(self, username: str) -> None:
        """Forget the username's failures after a successful sign-in."""
        user_key, _ = self._keys(username, "")
        await self._redis.delete(user_key)
