"""Administration pages: users (``/admin/users``) and the audit log (``/admin/audit``).

Display names (the name residents see in the web chat) are set by an admin on the user page,
and by any signed-in user for their own account on ``/account/name``.

Every change is CSRF-checked by the middleware and audited. Admins cannot disable themselves or
drop their own admin role, so a console always keeps a way in besides the CLI.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.errors import AccountError
from bot.web import audit
from bot.web.accounts import MAX_DISPLAY_NAME_LENGTH, ROLES, User
from bot.web.app import (
    ACCOUNTS,
    AUDIT,
    SESSIONS,
    THROTTLE,
    ConsoleApp,
    add_nav,
    app_of,
    current_user,
    read_form,
    render,
    require_role,
)
from bot.web.audit import OUTCOMES

__all__ = ["setup"]


def _roles(fields: FormData) -> list[str]:
    return [value for value in fields.getlist("roles") if isinstance(value, str)]


def _teams(fields: FormData) -> list[str]:
    return str(fields.get("teams", "")).replace(",", " ").split()


async def _target(request: Request) -> User:
    user = await app_of(request)[ACCOUNTS].get(str(request.path_params["username"]))
    if user is None:
        raise HTTPException(404, "There is no such user.")
    return user


def _me(request: Request) -> User:
    user = current_user(request)
    assert user is not None  # require_role guarantees it
    return user


@require_role("admin")
async def users_page(request: Request) -> Response:
    """List users, with a form to add one."""
    return await _users(request)


async def _users(request: Request, error: str = "", status: int = 200) -> Response:
    users = await app_of(request)[ACCOUNTS].all()
    done = request.query_params.get("done", "")
    return render(
        request,
        "admin/users.html",
        {"users": users, "roles": ROLES, "error": error, "done": done},
        status=status,
    )


@require_role("admin")
async def add_user(request: Request) -> Response:
    """Create a user from the form."""
    form = await read_form(request)
    try:
        user = await app_of(request)[ACCOUNTS].create(
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
    return RedirectResponse("/admin/users?done=created", status_code=303)


@require_role("admin")
async def user_page(request: Request) -> Response:
    """Show one user's roles, teams and status, with forms to change them."""
    return await _user(request, await _target(request))


async def _user(request: Request, user: User, error: str = "", status: int = 200) -> Response:
    failures = await app_of(request)[THROTTLE].failures(user.username)
    return render(
        request,
        "admin/user.html",
        {
            "account": user,
            "roles": ROLES,
            "error": error,
            "done": request.query_params.get("done", ""),
            "failures": failures,
            "max_name": MAX_DISPLAY_NAME_LENGTH,
        },
        status=status,
    )


@require_role("admin")
async def set_roles(request: Request) -> Response:
    """Replace a user's roles and teams."""
    user = await _target(request)
    form = await read_form(request)
    roles = _roles(form)
    if user.username == _me(request).username and "admin" not in roles:
        return await _user(request, user, "You cannot remove your own admin role.", 400)
    try:
        changed = await app_of(request)[ACCOUNTS].set_roles(user.username, roles, _teams(form))
    except AccountError as exc:
        return await _user(request, user, str(exc), 400)
    await audit.record(
        request,
        "user.roles",
        "user",
        user.username,
        {"roles": sorted(changed.roles), "teams": list(changed.teams)},
    )
    return RedirectResponse(f"/admin/users/{user.username}?done=roles", status_code=303)


@require_role("admin")
async def set_display_name(request: Request) -> Response:
    """Set or clear a user's display name (the name residents see in the web chat)."""
    user = await _target(request)
    form = await read_form(request)
    try:
        changed = await app_of(request)[ACCOUNTS].set_display_name(
            user.username, str(form.get("display_name", ""))
        )
    except AccountError as exc:
        await audit.record(
            request,
            "user.display_name",
            "user",
            user.username,
            {"error": exc.reason},
            outcome="refused",
        )
        return await _user(request, user, str(exc), 400)
    detail = {"display_name": changed.display_name}
    await audit.record(request, "user.display_name", "user", user.username, detail)
    return RedirectResponse(f"/admin/users/{user.username}?done=name", status_code=303)


@require_role()
async def own_name_page(request: Request) -> Response:
    """A signed-in user's own display name, with a form to change it."""
    return _own_name(request)


def _own_name(
    request: Request, error: str = "", value: str | None = None, status: int = 200
) -> Response:
    context = {
        "error": error,
        "value": _me(request).display_name if value is None else value,
        "max_name": MAX_DISPLAY_NAME_LENGTH,
    }
    return render(request, "account/name.html", context, status=status)


@require_role()
async def set_own_name(request: Request) -> Response:
    """A signed-in user sets or clears their own display name."""
    me = _me(request)
    form = await read_form(request)
    given = str(form.get("display_name", ""))
    try:
        changed = await app_of(request)[ACCOUNTS].set_display_name(me.username, given)
    except AccountError as exc:
        await audit.record(
            request,
            "user.display_name",
            "user",
            me.username,
            {"error": exc.reason},
            outcome="refused",
        )
        return _own_name(request, str(exc), given, 400)
    detail = {"display_name": changed.display_name}
    await audit.record(request, "user.display_name", "user", me.username, detail)
    return RedirectResponse("/account/name?done=name", status_code=303)


@require_role("admin")
async def set_status(request: Request) -> Response:
    """Disable (ending every session) or re-enable a user."""
    user = await _target(request)
    form = await read_form(request)
    disable = form.get("disabled") == "1"
    if disable and user.username == _me(request).username:
        return await _user(request, user, "You cannot disable your own account.", 400)
    await app_of(request)[ACCOUNTS].set_disabled(user.username, disable)
    if disable:
        await app_of(request)[SESSIONS].delete_user(user.username)
    await audit.record(request, "user.disable" if disable else "user.enable", "user", user.username)
    return RedirectResponse(f"/admin/users/{user.username}?done=status", status_code=303)


@require_role("admin")
async def reset_password(request: Request) -> Response:
    """Set a new password the user must change at next sign-in; end sessions, lift the lock."""
    user = await _target(request)
    form = await read_form(request)
    try:
        await app_of(request)[ACCOUNTS].set_password(
            user.username, str(form.get("password", "")), must_change=True
        )
    except AccountError as exc:
        return await _user(request, user, str(exc), 400)
    ended = await app_of(request)[SESSIONS].delete_user(user.username)
    unlocked = await app_of(request)[THROTTLE].unlock(user.username)
    detail = {"sessions": ended, "unlocked": unlocked}
    await audit.record(request, "user.password_reset", "user", user.username, detail)
    return RedirectResponse(f"/admin/users/{user.username}?done=password", status_code=303)


@require_role("admin")
async def unlock(request: Request) -> Response:
    """Forget a user's failed sign-ins, so they can sign in again at once."""
    user = await _target(request)
    throttle = app_of(request)[THROTTLE]
    failures = await throttle.failures(user.username)
    await throttle.unlock(user.username)
    await audit.record(request, "user.unlock", "user", user.username, {"failures": failures})
    return RedirectResponse(f"/admin/users/{user.username}?done=unlocked", status_code=303)


def _day(request: Request, name: str) -> datetime | None:
    """A ``YYYY-MM-DD`` query parameter as the start of that day (UTC); 400 when malformed."""
    value = request.query_params.get(name, "").strip()
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), UTC)
    except ValueError:
        raise HTTPException(400, f"Give the date as YYYY-MM-DD ({name}).") from None


@require_role("supervisor")
async def audit_page(request: Request) -> Response:
    """Recent audit entries, filtered by actor, action, outcome, object and dates (inclusive)."""
    filters = {
        name: request.query_params.get(name, "").strip()
        for name in ("actor", "action", "outcome", "object_type", "object_id", "since", "until")
    }
    if filters["outcome"] not in {"", *OUTCOMES}:
        raise HTTPException(400, f"Choose an outcome: {', '.join(OUTCOMES)}.")
    since, until = _day(request, "since"), _day(request, "until")
    entries = await app_of(request)[AUDIT].recent(
        limit=200,
        actor=filters["actor"],
        action=filters["action"],
        outcome=filters["outcome"],
        object_type=filters["object_type"],
        object_id=filters["object_id"],
        since=since,
        until=until + timedelta(days=1) if until else None,
    )
    context = {"entries": entries, "filters": filters, "outcomes": OUTCOMES}
    return render(request, "admin/audit.html", context)


def setup(app: ConsoleApp) -> None:
    """Add the administration routes and navigation."""
    app.add_route("/admin/users", users_page)
    app.add_route("/admin/users", add_user, methods=["POST"])
    app.add_route("/admin/users/{username}", user_page)
    app.add_route("/admin/users/{username}/roles", set_roles, methods=["POST"])
    app.add_route("/admin/users/{username}/name", set_display_name, methods=["POST"])
    app.add_route("/admin/users/{username}/status", set_status, methods=["POST"])
    app.add_route("/admin/users/{username}/password", reset_password, methods=["POST"])
    app.add_route("/admin/users/{username}/unlock", unlock, methods=["POST"])
    app.add_route("/admin/audit", audit_page)
    app.add_route("/account/name", own_name_page)
    app.add_route("/account/name", set_own_name, methods=["POST"])
    add_nav(app, "Users", "/admin/users", "admin")
    add_nav(app, "Audit log", "/admin/audit", "supervisor")
