import pytest

from bot.web.app import ACCOUNTS, AUDIT


@pytest.fixture
async def admin(login):
    return await login("admin", username="root")


async def test_add_user(admin, csrf, console_app, client, sign_in) -> None:
    token = await csrf(admin)
    response = await admin.post(
        "/admin/users",
        data={
            "username": "Erin",
            "password": "a long enough password",
            "roles": ["agent", "editor"],
            "teams": "customer_services, waste",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert "Done: created" in response.text
    erin = await console_app[ACCOUNTS].get("erin")
    assert erin.roles == {"agent", "editor"} and erin.teams == ("customer_services", "waste")
    [entry] = await console_app[AUDIT].recent(actor="root", object_id="erin")
    assert entry.action == "user.create" and entry.detail["roles"] == ["agent", "editor"]
    assert "a long enough password" not in str(entry.detail)
    assert (await sign_in(client, "erin", "a long enough password")).status_code == 200


async def test_add_user_errors_are_shown(admin, csrf, console_app) -> None:
    response = await admin.post(
        "/admin/users",
        data={
            "username": "erin",
            "password": "short",
            "roles": ["agent"],
            "csrf_token": await csrf(admin),
        },
    )
    assert response.status_code == 400
    assert "at least 12 characters" in response.text
    assert await console_app[ACCOUNTS].get("erin") is None


async def test_set_roles_and_teams(admin, csrf, make_user, console_app) -> None:
    await make_user("agent", username="frank")
    response = await admin.post(
        "/admin/users/frank/roles",
        data={"roles": ["supervisor"], "teams": "planning", "csrf_token": await csrf(admin)},
    )
    assert response.status_code == 200
    frank = await console_app[ACCOUNTS].get("frank")
    assert frank.roles == {"supervisor"} and frank.teams == ("planning",)
    [entry] = await console_app[AUDIT].recent(object_id="frank")
    assert entry.action == "user.roles"


async def test_disable_ends_sessions_and_enable(admin, csrf, login, console_app) -> None:
    grace = await login("agent", username="grace")
    assert (await grace.get("/", follow_redirects=False)).status_code == 200
    token = await csrf(admin)
    await admin.post("/admin/users/grace/status", data={"disabled": "1", "csrf_token": token})
    assert (await console_app[ACCOUNTS].get("grace")).disabled
    assert (await grace.get("/", follow_redirects=False)).status_code == 302
    await admin.post("/admin/users/grace/status", data={"disabled": "0", "csrf_token": token})
    assert not (await console_app[ACCOUNTS].get("grace")).disabled
    actions = [e.action for e in await console_app[AUDIT].recent(actor="root", object_id="grace")]
    assert actions == ["user.enable", "user.disable"]


async def test_reset_password(admin, csrf, login, console_app, client, sign_in) -> None:
    heidi = await login("agent", username="heidi")
    response = await admin.post(
        "/admin/users/heidi/password",
        data={"password": "the replacement password", "csrf_token": await csrf(admin)},
    )
    assert response.status_code == 200
    assert (await heidi.get("/", follow_redirects=False)).status_code == 302
    assert (await sign_in(client, "heidi", "the replacement password")).status_code == 200
    [entry] = await console_app[AUDIT].recent(actor="root", object_id="heidi")
    assert entry.action == "user.password_reset"
    assert entry.detail == {"sessions": 1, "unlocked": False}


async def test_admin_cannot_lock_themselves_out(admin, csrf, console_app) -> None:
    token = await csrf(admin)
    disable = await admin.post(
        "/admin/users/root/status", data={"disabled": "1", "csrf_token": token}
    )
    assert disable.status_code == 400 and "cannot disable your own" in disable.text
    demote = await admin.post(
        "/admin/users/root/roles", data={"roles": ["agent"], "csrf_token": token}
    )
    assert demote.status_code == 400
    root = await console_app[ACCOUNTS].get("root")
    assert root.roles == {"admin"} and not root.disabled


async def test_unknown_user_is_404(admin, csrf) -> None:
    assert (await admin.get("/admin/users/nobody")).status_code == 404
    response = await admin.post(
        "/admin/users/nobody/password",
        data={"password": "the replacement password", "csrf_token": await csrf(admin)},
    )
    assert response.status_code == 404


async def test_admin_pages_need_admin_and_csrf(login, csrf, console_app) -> None:
    editor = await login("editor", "supervisor")
    assert (await editor.get("/admin/users")).status_code == 403
    response = await editor.post(
        "/admin/users",
        data={
            "username": "mallory",
            "password": "a long enough password",
            "roles": ["admin"],
            "csrf_token": await csrf(editor),
        },
    )
    assert response.status_code == 403
    admin = await login("admin")
    forged = await admin.post(
        "/admin/users",
        data={"username": "mallory", "password": "a long enough password", "roles": ["admin"]},
    )
    assert forged.status_code == 403
    assert await console_app[ACCOUNTS].get("mallory") is None


async def test_admin_sets_and_clears_a_display_name(admin, csrf, make_user, console_app) -> None:
    await make_user("agent", username="sam.jones")
    token = await csrf(admin)
    page = await admin.get("/admin/users/sam.jones")
    assert '<label for="display_name">' in page.text
    response = await admin.post(
        "/admin/users/sam.jones/name", data={"display_name": " Sam ", "csrf_token": token}
    )
    assert response.status_code == 200
    assert "Saved: name" in response.text and 'value="Sam"' in response.text
    assert (await console_app[ACCOUNTS].get("sam.jones")).display_name == "Sam"
    await admin.post("/admin/users/sam.jones/name", data={"display_name": "", "csrf_token": token})
    assert (await console_app[ACCOUNTS].get("sam.jones")).display_name == ""
    entries = await console_app[AUDIT].recent(actor="root", action="user.display_name")
    assert [(e.object_id, e.detail["display_name"], e.outcome) for e in entries] == [
        ("sam.jones", "", "ok"),
        ("sam.jones", "Sam", "ok"),
    ]


async def test_a_bad_display_name_is_shown_refused_and_audited(
    admin, csrf, make_user, console_app
) -> None:
    await make_user("agent", username="sam.jones")
    await console_app[ACCOUNTS].set_display_name("sam.jones", "Sam")
    response = await admin.post(
        "/admin/users/sam.jones/name",
        data={"display_name": "sam@ashvale.gov.uk", "csrf_token": await csrf(admin)},
    )
    assert response.status_code == 400 and "plain text" in response.text
    assert (await console_app[ACCOUNTS].get("sam.jones")).display_name == "Sam"
    [entry] = await console_app[AUDIT].recent(action="user.display_name")
    assert entry.outcome == "refused" and "sam@ashvale" not in str(entry.detail)


async def test_only_admins_set_others_display_names_and_csrf_is_checked(
    login, csrf, make_user, console_app
) -> None:
    await make_user("agent", username="sam.jones")
    agent = await login("agent", username="priya")
    refused = await agent.post(
        "/admin/users/sam.jones/name", data={"display_name": "X", "csrf_token": await csrf(agent)}
    )
    assert refused.status_code == 403
    admin = await login("admin")
    forged = await admin.post("/admin/users/sam.jones/name", data={"display_name": "X"})
    assert forged.status_code == 403
    assert (await console_app[ACCOUNTS].get("sam.jones")).display_name == ""


async def test_an_agent_sets_their_own_display_name(login, csrf, console_app) -> None:
    agent = await login("agent", username="sam.jones")
    page = await agent.get("/account/name")
    assert page.status_code == 200 and '<label for="display_name">' in page.text
    token = await csrf(agent)
    done = await agent.post("/account/name", data={"display_name": "Sam", "csrf_token": token})
    assert done.status_code == 200 and "Your display name has been saved." in done.text
    assert (await console_app[ACCOUNTS].get("sam.jones")).display_name == "Sam"
    bad = await agent.post("/account/name", data={"display_name": "12345", "csrf_token": token})
    assert bad.status_code == 400 and "only digits" in bad.text and 'value="12345"' in bad.text
    assert (await console_app[ACCOUNTS].get("sam.jones")).display_name == "Sam"
    forged = await agent.post("/account/name", data={"display_name": "Mallory"})
    assert forged.status_code == 403
    entries = await console_app[AUDIT].recent(actor="sam.jones", action="user.display_name")
    assert [e.outcome for e in entries] == ["refused", "ok"]
