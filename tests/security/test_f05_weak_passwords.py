"""Finding 5: weak passwords were accepted, and users could not change their own.

The tester's report: ``aaaaaaaaaaaa`` and ``password1234`` were accepted as console passwords;
users could not change their own password; an administrator's reset did not force a change.

Now the policy (:mod:`bot.web.passwords`) refuses short passwords, passwords on the shipped
list of common ones (also with digits or symbols around them), repeated patterns, keyboard
runs and passwords containing the username; a user changes their own password with the
current one; a reset by an administrator forces a change at the next sign-in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio
from argon2 import PasswordHasher
from httpx import AsyncClient, Response

from bot.errors import AccountError
from bot.testing.console import Csrf, Login, MakeUser
from bot.web.accounts import AccountStore
from bot.web.passwords import common_passwords, password_problems

SignIn = Callable[[AsyncClient, str, str], Awaitable[Response]]

CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
GOOD = "mossy gutter lantern"


@pytest.fixture
def store(async_redis: redis.asyncio.Redis, namespace: str) -> AccountStore:
    return AccountStore(async_redis, namespace, hasher=CHEAP)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("aaaaaaaaaaaa", "repeat a short pattern"),  # the tester's first example
        ("password1234", "too common"),  # the tester's second example
        ("Password1234!", "too common"),
        ("!!monkey2024", "too common"),
        ("iloveyou12345", "too common"),
        ("qwertyuiop123", "too common"),
        ("abcabcabcabc", "repeat a short pattern"),
        ("passwordpassword", "repeat a short pattern"),
        ("qwertyuiopas", "run of letters"),
        ("123456789012", "run of letters"),
        ("lkjhgfdsapoi", "run of letters"),
        ("short", "at least 12"),
        ("x" * 1025, "at most 1024"),
        ("council-jsmith-2024", "contain the username"),
        ("JSmith", "at least 12"),
    ],
)
def test_weak_passwords_are_refused(password: str, problem: str) -> None:
    problems = password_problems("jsmith", password)
    assert any(problem in p for p in problems), problems
    assert not any(password in p for p in problems)  # never echoed back


@pytest.mark.parametrize(
    "password", [GOOD, "correct horse battery", "Tr0ub4dor&3-staple", "6pW!x9#qLm2$"]
)
def test_good_passwords_pass(password: str) -> None:
    assert password_problems("jsmith", password) == []


def test_the_shipped_list_is_a_few_thousand_common_passwords() -> None:
    common = common_passwords()
    assert 2000 <= len(common) <= 20000
    assert {"password", "qwerty", "iloveyou", "monkey"} <= common
    assert all(p == p.lower() and not p.startswith("#") for p in common)


async def test_create_and_reset_use_the_policy(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="too common"):
        await store.create("jsmith", "password1234", ["agent"])
    await store.create("jsmith", GOOD, ["agent"])
    with pytest.raises(AccountError, match="repeat a short pattern"):
        await store.set_password("jsmith", "aaaaaaaaaaaa")


async def test_users_change_their_own_password(store: AccountStore) -> None:
    await store.create("jsmith", GOOD, ["agent"])
    with pytest.raises(AccountError, match="current password is not right"):
        await store.change_password("jsmith", "not my password", "pebble orchard violin")
    with pytest.raises(AccountError, match="must differ"):
        await store.change_password("jsmith", GOOD, GOOD)
    with pytest.raises(AccountError, match="too common"):
        await store.change_password("jsmith", GOOD, "password1234")
    await store.change_password("jsmith", GOOD, "pebble orchard violin")
    assert await store.authenticate("jsmith", GOOD) is None
    assert await store.authenticate("jsmith", "pebble orchard violin") is not None


async def test_an_admin_reset_forces_a_change(store: AccountStore) -> None:
    await store.create("jsmith", GOOD, ["agent"])
    assert not (await store.get("jsmith")).must_change_password  # type: ignore[union-attr]
    await store.set_password("jsmith", "temporary violet kettle", must_change=True)
    user = await store.authenticate("jsmith", "temporary violet kettle")
    assert user is not None and user.must_change_password
    changed = await store.change_password(
        "jsmith", "temporary violet kettle", "pebble orchard violin"
    )
    assert not changed.must_change_password


# Over HTTP: the admin pages and the sign-in


async def test_admin_pages_refuse_weak_passwords_and_a_reset_forces_a_change(
    login: Login, make_user: MakeUser, csrf: Csrf, client: AsyncClient, sign_in: SignIn
) -> None:
    admin = await login("admin")
    token = await csrf(admin)
    for weak in ("aaaaaaaaaaaa", "password1234"):
        created = await admin.post(
            "/admin/users",
            data={"username": "jsmith", "password": weak, "roles": "agent", "csrf_token": token},
        )
        assert created.status_code == 400
    user, _ = await make_user("agent")
    reset = await admin.post(
        f"/admin/users/{user.username}/password",
        data={"password": "password1234", "csrf_token": token},
    )
    assert reset.status_code == 400 and "too common" in reset.text
    reset = await admin.post(
        f"/admin/users/{user.username}/password", data={"password": GOOD, "csrf_token": token}
    )
    assert reset.status_code == 200
    signed_in = await sign_in(client, user.username, GOOD)
    assert signed_in.url.path == "/account/password"  # nothing else until it is changed
    assert (await client.get("/", follow_redirects=False)).status_code == 303
