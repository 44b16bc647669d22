"""Administration pages: users (``/admin/users``) and the audit log (``/admin/audit``).

Every change is CSRF-checked by the middleware and audited. Admins cannot disable themselves or
drop their own admin role, so a console always keeps a way in besides the CLI.
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy

from bot.errors import AccountError
from bot.web import audit
from bot.web.accounts import ROLES, User
from bot.web.app import ACCOUNTS, AUDIT, SESSIONS, add_nav, current_user, render, require_role

__all__ = ["setup"]


def _roles(form: MultiDictProxy[str | bytes | web.FileField]) -> list[str]:
    return [value for value in form.getall("roles", []) if isinstance(value, str)]


def _teams(form: MultiDictProxy[str | bytes | web.FileField]) -> list[str]:
    return str(form.get("teams", "")).replace(",", " ").split()


async def _target(request: web.Request) -> User:
    user = await request.app[ACCOUNTS].get(request.match_info["username"])
    if user is None:
        raise web.HTTPNotFound(text="There is no such user.")
    return user


def _me(request: web.Request) -> User:
    user = current_user(request)
    assert user is not None  # require_role guarantees it
    return user


@require_role("admin")
async def users_page(request: web.Request) -> web.StreamResponse:
    """List users, with a form to add one."""
    return await _users(request)


async def _users(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    users = await request.app[ACCOUNTS].all()
    done = request.query.get("done", "")
    return render(
        request,
        "admin/users.html",
        {"users": users, "roles": ROLES, "error": error, "done": done},
        status=status,
    )


@require_role("admin")
async def add_user(request: web.Request) -> web.StreamResponse:
    """Create a user from the form."""
    form = await request.post()
    try:
        user = await request.app[ACCOUNTS].create(
            str(form.get("username", "")), str(form.get("password", "")), _roles(form), _teams(form)
        )
    except AccountError as exc:
        return await _users(request, str(exc), 400)
    await audit.record(
        request,
        "user.create",
        "user",
        user.username,
        {"roles": sorted(user.roles), "teams": list(user.teams)},
    )
    raise web.HTTPSeeOther(f"/admin/users?done=created+{user.username}")


@require_role("admin")
async def user_page(request: web.Request) -> web.StreamResponse:
    """Show one user's roles, teams and status, with forms to change them."""
    return await _user(request, await _target(request))


async def _user(
    request: web.Request, user: User, error: str = "", status: int = 200
) -> web.Response:
    return render(
        request,
        "admin/user.html",
        {"account": user, "roles": ROLES, "error": error, "done": request.query.get("done", "")},
        status=status,
    )


@require_role("admin")
async def set_roles(request: web.Request) -> web.StreamResponse:
    """Replace a user's roles and teams."""
    user = await _target(request)
    form = await request.post()
    roles = _roles(form)
    if user.username == _me(request).username and "admin" not in roles:
        return await _user(request, user, "You cannot remove your own admin role.", 400)
    try:
        changed = await request.app[ACCOUNTS].set_roles(user.username, roles, _teams(form))
    except AccountError as exc:
        return await _user(request, user, str(exc), 400)
    await audit.record(
        request,
        "user.roles",
        "user",
        user.username,
        {"roles": sorted(changed.roles), "teams": list(changed.teams)},
    )
    raise web.HTTPSeeOther(f"/admin/users/{user.username}?done=roles")


@require_role("admin")
async def set_status(request: web.Request) -> web.StreamResponse:
    """Disable (ending every session) or re-enable a user."""
    user = await _target(request)
    form = await request.post()
    disable = form.get("disabled") == "1"
    if disable and user.username == _me(request).username:
        return await _user(request, user, "You cannot disable your own account.", 400)
    await request.app[ACCOUNTS].set_disabled(user.username, disable)
    if disable:
        await request.app[SESSIONS].delete_user(user.username)
    await audit.record(request, "user.disable" if disable else "user.enable", "user", user.username)
    raise web.HTTPSeeOther(f"/admin/users/{user.username}?done=status")


@require_role("admin")
async def reset_password(request: web.Request) -> web.StreamResponse:
    """Set a new password and end the user's sessions."""
    user = await _target(request)
    form = await request.post()
    try:
        await request.app[ACCOUNTS].set_password(user.username, str(form.get("password", "")))
    except AccountError as exc:
        return await _user(request, user, str(exc), 400)
    ended = await request.app[SESSIONS].delete_user(user.username)
    await audit.record(request, "user.password_reset", "user", user.username, {"sessions": ended})
    raise web.HTTPSeeOther(f"/admin/users/{user.username}?done=password")


@require_role("admin")
async def audit_page(request: web.Request) -> web.StreamResponse:
    """List recent audit entries, filtered by actor and object."""
    filters = {
        name: request.query.get(name, "").strip() for name in ("actor", "object_type", "object_id")
    }
    entries = await request.app[AUDIT].recent(
        limit=200,
        actor=filters["actor"],
        object_type=filters["object_type"],
        object_id=filters["object_id"],
    )
    return render(request, "admin/audit.html", {"entries": entries, "filters": filters})


def setup(app: web.Application) -> None:
    """Add the administration routes and navigation."""
    app.router.add_get("/admin/users", users_page)
    app.router.add_post("/admin/users", add_user)
    app.router.add_get("/admin/users/{username}", user_page)
    app.router.add_post("/admin/users/{username}/roles", set_roles)
    app.router.add_post("/admin/users/{username}/status", set_status)
    app.router.add_post("/admin/users/{username}/password", reset_password)
    app.router.add_get("/admin/audit", audit_page)
    add_nav(app, "Users", "/admin/users", "admin")
    add_nav(app, "Audit log", "/admin/audit", "admin")
