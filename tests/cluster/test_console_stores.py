"""The console's stores on a Redis Cluster: sessions, sign-in throttling, audit, accounts.

Their transactions (a session and its user's index; a counter and its expiry) and Lua scripts
keep their keys in the namespace's slot; on three primaries they behave as on one server.
"""

from __future__ import annotations

import secrets

import redis.asyncio
from argon2 import PasswordHasher

from bot.keys import key
from bot.testing.console import FakeClock
from bot.web.accounts import AccountStore, LoginThrottle
from bot.web.audit import AuditLog
from bot.web.sessions import SessionStore

CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


async def test_sessions_are_made_kept_and_ended(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    clock = FakeClock()
    store = SessionStore(
        async_redis, namespace, secrets.token_bytes(32), idle_seconds=1800,
        absolute_seconds=12 * 3600, clock=clock,
    )  # fmt: skip
    first, second = await store.create("alice"), await store.create("alice")
    clock.advance(60)
    loaded = await store.load(first.sid)
    assert loaded is not None and loaded.last_seen == clock.now
    await store.delete(first.sid)
    assert await store.load(first.sid) is None
    assert await store.delete_user("alice") == 1
    assert await store.load(second.sid) is None


async def test_sign_in_throttle_counts_and_forgets(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    throttle = LoginThrottle(async_redis, namespace, max_per_user=3, max_per_ip=100)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        await throttle.failure("alice", address)
    assert await throttle.locked("alice", "10.0.0.9")
    assert await async_redis.ttl(key(namespace, "login_failures", "user", "alice")) > 0
    await throttle.success("alice", "10.0.0.9")
    assert not await throttle.locked("alice", "10.0.0.9")


async def test_audit_records_and_limits_anonymous_refusals(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    log = AuditLog(async_redis, namespace, clock=FakeClock(), anonymous_refusals_per_minute=2)
    await log.record("alice", "user.create", "user", "bob")
    admitted = [await log.admit_anonymous("203.0.113.9") for _ in range(4)]
    assert admitted == [True, True, False, False]
    actions = sorted(entry.action for entry in await log.recent())
    assert actions == ["audit.limited", "user.create"]


async def test_accounts_are_created_and_authenticated(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    accounts = AccountStore(async_redis, namespace, hasher=CHEAP)
    await accounts.create("alice", "correct horse battery", ["agent"], ["customer_services"])
    assert await accounts.authenticate("alice", "correct horse battery") is not None
    assert await accounts.authenticate("alice", "wrong") is None
    assert [user.username for user in await accounts.all()] == ["alice"]
