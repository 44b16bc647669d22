from dataclasses import replace

import pytest
import redis.asyncio
from argon2 import PasswordHasher
from httpx import AsyncClient, Response
from playwright.async_api import Page, expect

from bot.errors import AccountError, ConfigError
from bot.testing.accessibility import axe_violations, describe
from bot.testing.browser import LocalServer, asgi_client
from bot.testing.console import fill_sign_in
from bot.web.accounts import AccountStore, LoginThrottle, User
from bot.web.app import ACCOUNTS, AUDIT, THROTTLE, Settings, create_app

CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
PASSWORD = "correct horse battery"
TEMPORARY = "temporary violet kettle"


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


async def test_login_slowed_after_five_failures(
    client: AsyncClient, make_user, sign_in, console_app, clock
) -> None:
    user, password = await make_user("agent")
    statuses = [
        (await sign_in(client, user.username, "wrong password")).status_code for _ in range(5)
    ]
    assert statuses == [401] * 5
    slowed = await sign_in(client, user.username, password)  # even the right password waits
    assert slowed.status_code == 429
    assert "Wait 1 second and try again" in slowed.text
    assert slowed.headers["Retry-After"] == "1"
    home = await client.get("/", follow_redirects=False)
    assert home.status_code == 302
    clock.advance(1)
    assert (await sign_in(client, user.username, password)).status_code == 200
    actions = [e.action for e in await console_app[AUDIT].recent(actor=user.username)]
    assert actions == ["login.success", "login.throttled"] + ["login.failure"] * 5


async def test_forced_change_after_an_admin_reset(
    client: AsyncClient, make_user, sign_in, csrf, console_app
) -> None:
    user, _ = await make_user("agent")
    await console_app[ACCOUNTS].set_password(user.username, TEMPORARY, must_change=True)
    page = await sign_in(client, user.username, TEMPORARY)
    assert page.url.path == "/account/password"
    assert "Choose your own password to continue" in page.text
    for path in ("/", "/admin/users"):
        blocked = await client.get(path, follow_redirects=False)
        assert blocked.status_code == 303
        assert blocked.headers["location"].startswith("/account/password?next=")
    form = {
        "current_password": TEMPORARY,
        "new_password": "pebble orchard violin",
        "confirm_password": "pebble orchard violin",
        "csrf_token": await csrf(client),
        "next": "/",
    }
    changed = await client.post("/account/password", data=form)
    assert changed.status_code == 200 and "Your password has been changed" in changed.text
    assert (await client.get("/")).status_code == 200  # the session carries on
    assert (await console_app[ACCOUNTS].get(user.username)).must_change_password is False


async def test_change_own_password(
    client: AsyncClient, make_user, sign_in, csrf, console_app
) -> None:
    user, password = await make_user("editor")
    other = asgi_client(console_app)
    assert (await sign_in(other, user.username, password)).status_code == 200
    await sign_in(client, user.username, password)

    async def change(current: str, new: str, again: str) -> Response:
        form = {
            "current_password": current,
            "new_password": new,
            "confirm_password": again,
            "csrf_token": await csrf(client),
        }
        return await client.post("/account/password", data=form)

    differ = await change(password, "pebble orchard violin", "pebble orchard viola")
    assert differ.status_code == 400 and "not the same" in differ.text
    weak = await change(password, "password1234", "password1234")
    assert weak.status_code == 400 and "too common" in weak.text
    wrong = await change("not my password", "pebble orchard violin", "pebble orchard violin")
    assert wrong.status_code == 400 and "current password is not right" in wrong.text
    done = await change(password, "pebble orchard violin", "pebble orchard violin")
    assert done.status_code == 200 and "Your password has been changed" in done.text
    assert (await client.get("/")).status_code == 200
    # the other session (perhaps on a shared computer) was signed out
    assert (await other.get("/", follow_redirects=False)).status_code == 302
    await other.aclose()
    actions = [e.action for e in await console_app[AUDIT].recent(actor=user.username)]
    assert actions[0] == "password.change" and "password.failure" in actions
    assert await console_app[ACCOUNTS].authenticate(user.username, "pebble orchard violin")


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


async def test_admin_unlocks_and_reset_lifts_the_slowdown(
    client: AsyncClient, make_user, sign_in, csrf, login, console_app
) -> None:
    admin = await login("admin")
    user, password = await make_user("agent")
    for _ in range(8):
        await console_app[THROTTLE].failure(user.username, "203.0.113.66")
    assert (await sign_in(client, user.username, password)).status_code == 429
    page = await admin.get(f"/admin/users/{user.username}")
    assert "8 failed sign-ins recently" in page.text
    unlocked = await admin.post(
        f"/admin/users/{user.username}/unlock", data={"csrf_token": await csrf(admin)}
    )
    assert unlocked.status_code == 200 and "No recent failed sign-ins" in unlocked.text
    assert (await sign_in(client, user.username, password)).status_code == 200
    # an administrator's reset lifts it too
    for _ in range(8):
        await console_app[THROTTLE].failure(user.username, "203.0.113.66")
    reset = await admin.post(
        f"/admin/users/{user.username}/password",
        data={"password": TEMPORARY, "csrf_token": await csrf(admin)},
    )
    assert reset.status_code == 200
    assert (await sign_in(client, user.username, TEMPORARY)).url.path == "/account/password"
    entries = await console_app[AUDIT].recent(object_id=user.username)
    by_action = {e.action: e for e in entries}
    assert by_action["user.unlock"].detail == {"failures": 8}
    assert by_action["user.password_reset"].detail["unlocked"] is True


async def test_client_address_from_a_trusted_proxy_only(
    async_redis: redis.asyncio.Redis, namespace: str, console_settings, make_user, sign_in
) -> None:
    # the test client connects from 127.0.0.1: here that is the council's reverse proxy
    settings = Settings.from_env(
        {"COUNCIL_SECRET_KEY": "k" * 32, "COUNCIL_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"}
    )
    assert settings.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8")
    behind_proxy = replace(console_settings, trusted_proxies=settings.trusted_proxies)
    app = create_app(async_redis, namespace=namespace, settings=behind_proxy, sections=())
    await app[ACCOUNTS].create("alice", PASSWORD, ["agent"])

    def from_address(address: str) -> AsyncClient:
        client = asgi_client(app)
        client.headers["X-Forwarded-For"] = address
        return client

    guesser, office = from_address("203.0.113.66"), from_address("198.51.100.10")
    for n in range(20):
        assert (await sign_in(guesser, f"user{n}", "wrong password")).status_code == 401
    assert (await sign_in(guesser, "alice", PASSWORD)).status_code == 429
    assert (await sign_in(office, "alice", PASSWORD)).status_code == 200  # not the whole office
    [failure, *_] = await app[AUDIT].recent(actor="user19")
    assert failure.ip == "203.0.113.66"
    await guesser.aclose()
    await office.aclose()
    with pytest.raises(ConfigError, match="COUNCIL_TRUSTED_PROXIES"):
        Settings.from_env({"COUNCIL_SECRET_KEY": "k" * 32, "COUNCIL_TRUSTED_PROXIES": "proxy"})


async def test_forwarded_for_ignored_without_trusted_proxies(
    client: AsyncClient, console_app, make_user, sign_in
) -> None:
    client.headers["X-Forwarded-For"] = "198.51.100.10"
    await sign_in(client, "nobody", "wrong password")
    [failure] = await console_app[AUDIT].recent(actor="nobody")
    assert failure.ip == "127.0.0.1"


@pytest.mark.browser
async def test_browser_forced_password_change_keyboard_and_axe(
    console_server: LocalServer, console_app, make_user, page: Page
) -> None:
    user, _ = await make_user("agent")
    await console_app[ACCOUNTS].set_password(user.username, TEMPORARY, must_change=True)
    await page.goto(str(console_server.make_url("/login")))
    await fill_sign_in(page, user.username, TEMPORARY, by_keyboard=True)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label("Current password").fill(TEMPORARY)
    await page.get_by_label("New password", exact=True).fill("password1234")
    await page.get_by_label("New password again").fill("password1234")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("too common")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label("Current password").fill(TEMPORARY)
    await page.get_by_label("New password", exact=True).fill("pebble orchard violin")
    await page.get_by_label("New password again").fill("pebble orchard violin")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Your password has been changed")
    await page.get_by_role("link", name="Continue").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {user.username}")


async def test_display_name_is_optional_stored_and_cleared(store: AccountStore) -> None:
    await store.create("sam.jones", PASSWORD, ["agent"])
    assert (await store.get("sam.jones")).display_name == ""
    assert await store.display_name("sam.jones") == ""
    changed = await store.set_display_name("Sam.Jones", "  Sam   J  ")
    assert changed.display_name == "Sam J" == await store.display_name("sam.jones")
    assert (await store.set_display_name("sam.jones", "Siân Ó Ceallaigh-Jones")).display_name == (
        "Siân Ó Ceallaigh-Jones"
    )
    assert (await store.set_display_name("sam.jones", "   ")).display_name == ""
    assert await store.display_name("sam.jones") == ""
    assert await store.display_name("nobody") == ""


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("x" * 41, "at most 40 characters"),
        ("sam@ashvale.gov.uk", "plain text"),
        ("<b>Sam</b>", "plain text"),
        ("Sam\u202eevil", "plain text"),
        ("Sam\x07", "plain text"),
        ("0123 456", "only digits"),
    ],
)
async def test_bad_display_names_are_refused_and_nothing_changes(
    store: AccountStore, given: str, reason: str
) -> None:
    await store.create("sam.jones", PASSWORD, ["agent"])
    await store.set_display_name("sam.jones", "Sam")
    with pytest.raises(AccountError, match=reason):
        await store.set_display_name("sam.jones", given)
    assert await store.display_name("sam.jones") == "Sam"
    assert (await store.set_display_name("sam.jones", "x" * 40)).display_name == "x" * 40


async def test_display_name_of_an_unknown_user_is_refused(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="no such user"):
        await store.set_display_name("nobody", "Sam")


@pytest.mark.browser
async def test_browser_display_name_forms_are_labelled_keyboard_only_and_axe_clean(
    console_server: LocalServer, make_user, console_app, page: Page
) -> None:
    await make_user("agent", username="sam.jones")
    admin, password = await make_user("admin")
    await page.goto(str(console_server.make_url("/login?next=/admin/users/sam.jones")))
    await fill_sign_in(page, admin.username, password, by_keyboard=True)
    await expect(page.get_by_role("heading", level=1)).to_contain_text("sam.jones")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label("Display name (optional)").fill("Sam")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    assert (await console_app[ACCOUNTS].get("sam.jones")).display_name == "Sam"
    assert not (violations := await axe_violations(page)), describe(violations)

    await page.goto(str(console_server.make_url("/account/name")))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your display name")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label("Display name (optional)").fill("<b>Admin</b>")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("plain text")
    assert not (violations := await axe_violations(page)), describe(violations)
    await page.get_by_label("Display name (optional)").fill("Alex")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("saved")
    assert (await console_app[ACCOUNTS].get(admin.username)).display_name == "Alex"
