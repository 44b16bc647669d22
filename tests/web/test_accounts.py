import pytest
import redis.asyncio
from argon2 import PasswordHasher
from httpx import AsyncClient

from bot.errors import AccountError
from bot.web.accounts import AccountStore, LoginThrottle, User
from bot.web.app import ACCOUNTS

CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
PASSWORD = "correct horse battery"


@pytest.fixture
def store(async_redis: redis.asyncio.Redis, namespace: str) -> AccountStore:
    return AccountStore(async_redis, namespace, hasher=CHEAP)


async def test_create_and_get(store: AccountStore) -> None:
    created = await store.create(" Alice ", PASSWORD, ["agent", "editor"], ["Customer_Services"])
    assert created.username == "alice"
    got = await store.get("ALICE")
    assert got == User(
        "alice", frozenset({"agent", "editor"}), ("customer_services",), False, created.created_at
    )
    assert [user.username for user in await store.all()] == ["alice"]
    assert await store.get("bob") is None


async def test_password_is_stored_as_argon2_hash(
    store: AccountStore, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    await store.create("alice", PASSWORD, ["agent"])
    stored = await async_redis.hget(f"{namespace}:user:alice", "password_hash")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize(
    ("username", "password", "roles", "teams", "reason"),
    [
        ("a", PASSWORD, ["agent"], [], "usernames"),
        ("bad name", PASSWORD, ["agent"], [], "usernames"),
        ("alice", "short", ["agent"], [], "at least 12"),
        ("alice", "alice", ["agent"], [], "at least 12"),
        ("alicealicealice", "AliceAliceAlice", ["agent"], [], "not be the username"),
        ("alice", PASSWORD, ["root"], [], "unknown role"),
        ("alice", PASSWORD, [], [], "at least one role"),
        ("alice", PASSWORD, ["agent"], ["bad team!"], "bad team"),
    ],
)
async def test_create_refuses_bad_input(
    store: AccountStore,
    username: str,
    password: str,
    roles: list[str],
    teams: list[str],
    reason: str,
) -> None:
    with pytest.raises(AccountError, match=reason):
        await store.create(username, password, roles, teams)
    assert await store.all() == []


async def test_duplicate_user_refused(store: AccountStore) -> None:
    await store.create("alice", PASSWORD, ["agent"])
    with pytest.raises(AccountError, match="already exists") as info:
        await store.create("Alice", "another long password", ["admin"])
    assert info.value.username == "alice"
    user = await store.get("alice")
    assert user is not None and user.roles == {"agent"}
    assert await store.authenticate("alice", PASSWORD) is not None


async def test_authenticate(store: AccountStore) -> None:
    await store.create("alice", PASSWORD, ["agent"])
    user = await store.authenticate("Alice", PASSWORD)
    assert user is not None and user.username == "alice"
    assert await store.authenticate("alice", PASSWORD + "x") is None
    assert await store.authenticate("nobody", PASSWORD) is None
    await store.set_disabled("alice", True)
    assert await store.authenticate("alice", PASSWORD) is None
    await store.set_disabled("alice", False)
    assert await store.authenticate("alice", PASSWORD) is not None


async def test_rehash_when_parameters_change(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    await AccountStore(async_redis, namespace, hasher=CHEAP).create("alice", PASSWORD, ["agent"])
    before = await async_redis.hget(f"{namespace}:user:alice", "password_hash")
    stronger = PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1)
    store = AccountStore(async_redis, namespace, hasher=stronger)
    assert await store.authenticate("alice", "wrong password!") is None
    assert await async_redis.hget(f"{namespace}:user:alice", "password_hash") == before
    assert await store.authenticate("alice", PASSWORD) is not None
    after = await async_redis.hget(f"{namespace}:user:alice", "password_hash")
    assert after != before and "m=16384,t=2" in after
    assert not stronger.check_needs_rehash(after)


async def test_set_roles_and_password(store: AccountStore) -> None:
    await store.create("alice", PASSWORD, ["agent"], ["a"])
    changed = await store.set_roles("alice", ["supervisor", "agent"], ["b", "c"])
    assert changed.roles == {"supervisor", "agent"} and changed.teams == ("b", "c")
    await store.set_password("alice", "a brand new password")
    assert await store.authenticate("alice", PASSWORD) is None
    assert await store.authenticate("alice", "a brand new password") is not None
    with pytest.raises(AccountError, match="no such user"):
        await store.set_password("bob", "a brand new password")
    with pytest.raises(AccountError, match="at least 12"):
        await store.set_password("alice", "short")


def test_admin_holds_every_role() -> None:
    admin = User("root", frozenset({"admin"}), ())
    agent = User("agent", frozenset({"agent"}), ())
    assert admin.has_role("editor") and admin.has_role("supervisor")
    assert agent.has_role("agent", "editor") and not agent.has_role("editor")


async def test_throttle_per_username(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    throttle = LoginThrottle(async_redis, namespace, max_per_user=3, max_per_ip=100)
    for _ in range(2):
        await throttle.failure("alice", "10.0.0.1")
    assert not await throttle.locked("alice", "10.0.0.9")
    await throttle.failure("Alice", "10.0.0.2")
    assert await throttle.locked("alice", "10.0.0.9")  # a delay, from anywhere
    assert not await throttle.locked("bob", "10.0.0.1")
    ttl = await async_redis.ttl(f"{namespace}:login_failures:user:alice")
    assert 0 < ttl <= 15 * 60 + 1
    await throttle.success("alice", "10.0.0.9")
    assert not await throttle.locked("alice", "10.0.0.9")


async def test_throttle_per_ip(async_redis: redis.asyncio.Redis, namespace: str) -> None:
    throttle = LoginThrottle(async_redis, namespace, max_per_user=100, max_per_ip=3)
    for name in ("a1", "a2", "a3"):
        await throttle.failure(name, "10.0.0.1")
    assert await throttle.locked("someone-else", "10.0.0.1")
    assert not await throttle.locked("someone-else", "10.0.0.2")


async def test_login_over_http(client: AsyncClient, make_user, sign_in) -> None:
    user, password = await make_user("editor")
    bad = await sign_in(client, user.username, "not the password")
    assert bad.status_code == 401
    assert "The username or password is not right." in bad.text
    unknown = await sign_in(client, "nobody", password)
    assert unknown.status_code == 401
    good = await sign_in(client, user.username, password)
    assert good.status_code == 200
    assert f"Welcome, {user.username}" in good.text


async def test_login_locked_after_five_failures(client: AsyncClient, make_user, sign_in) -> None:
    user, password = await make_user("agent")
    statuses = [
        (await sign_in(client, user.username, "wrong password")).status_code for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 401, 429]
    locked = await sign_in(client, user.username, password)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.text
    assert "15 minutes" in locked.text
    home = await client.get("/", follow_redirects=False)
    assert home.status_code == 302


async def test_disabled_user_cannot_log_in(
    client: AsyncClient, make_user, sign_in, console_app
) -> None:
    user, password = await make_user("agent")
    await console_app[ACCOUNTS].set_disabled(user.username, True)
    assert (await sign_in(client, user.username, password)).status_code == 401


async def test_oversized_passwords_refused_without_hashing(store: AccountStore) -> None:
    await store.create("alice", PASSWORD, ["agent"])
    with pytest.raises(AccountError, match="at most 1024"):
        await store.set_password("alice", "x" * 1025)
    assert await store.authenticate("alice", PASSWORD + "x" * 2000) is None
