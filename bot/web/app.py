"""The web console application and the API its sections build on.

:func:`create_app` builds the aiohttp application: sign-in and sign-out, sessions, CSRF checks,
security headers, error pages, static files and the sections listed in
:data:`SECTION_MODULES`. A section is a module with ``setup(app: web.Application) -> None``
that adds its routes (guarded with :func:`require_role`) and its navigation links
(:func:`add_nav`), and renders pages with :func:`render`. See docs/architecture.md, "Web console".
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import redis.asyncio
from aiohttp import web
from aiohttp.typedefs import Handler
from argon2 import PasswordHasher
from markupsafe import Markup

from bot.errors import ConfigError, MissingSecretError
from bot.web.accounts import AccountStore, LoginThrottle, User
from bot.web.audit import AUDIT, AuditLog, client_ip
from bot.web.csrf import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    csrf_middleware,
    csrf_token,
    set_login_cookie,
)
from bot.web.sessions import SESSION_COOKIE, Session, SessionStore

__all__ = [
    "ACCOUNTS",
    "AUDIT",
    "NAMESPACE",
    "NAV",
    "REDIS",
    "SECTION_MODULES",
    "SESSIONS",
    "SETTINGS",
    "TEMPLATES",
    "THROTTLE",
    "NavItem",
    "Settings",
    "add_nav",
    "create_app",
    "current_session",
    "current_user",
    "render",
    "require_role",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

SECTION_MODULES: tuple[str, ...] = (
    "bot.web.admin",
    "bot.web.editor",
    "bot.web.agent",
    "bot.web.reports",
    "bot.web.calendar",
)
"""Modules whose ``setup(app)`` is called by :func:`create_app`, in this order.

A listed module that is not installed is skipped (the console ships in parts); a module that
exists but fails to import, or has no ``setup``, stops start-up.
"""

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
LOCKED_MESSAGE = (
    "Too many failed sign-in attempts. Sign-in is locked for {minutes} minutes; "
    "try again later or ask an administrator to reset your password."
)
BAD_CREDENTIALS_MESSAGE = "The username or password is not right."


@dataclass(frozen=True)
class Settings:
    """Console settings.

    Attributes:
        secret_key: Key for session id digests (``COUNCIL_SECRET_KEY``, at least 32 bytes).
        secure_cookies: Send cookies only over HTTPS (off only for local development).
        idle_seconds: Session idle expiry.
        absolute_seconds: Session absolute expiry.
        max_failures_per_user: Failed sign-ins per username before locking.
        max_failures_per_ip: Failed sign-ins per client address before locking.
        throttle_seconds: Length of the failure-counting window.
        audit_retention_days: How long audit entries are kept.
        clock: Returns epoch seconds (tests inject a fake one).
        password_hasher: Argon2 parameters in force.
    """

    secret_key: bytes
    secure_cookies: bool = True
    idle_seconds: int = 30 * 60
    absolute_seconds: int = 12 * 60 * 60
    max_failures_per_user: int = 5
    max_failures_per_ip: int = 20
    throttle_seconds: int = 15 * 60
    audit_retention_days: int = 365
    clock: Callable[[], float] = time.time
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment.

        ``COUNCIL_SECRET_KEY`` is required; ``COUNCIL_COOKIE_SECURE`` (``1``/``0``, default
        ``1``) and ``COUNCIL_AUDIT_RETENTION_DAYS`` (default 365) are optional.

        Raises:
            MissingSecretError: ``COUNCIL_SECRET_KEY`` is not set.
            ConfigError: A variable has a bad value.
        """
        env = os.environ if environ is None else environ
        secret = env.get("COUNCIL_SECRET_KEY", "")
        if not secret:
            raise MissingSecretError("COUNCIL_SECRET_KEY", "signs web console sessions")
        if len(secret) < 32:
            raise ConfigError("environment", "COUNCIL_SECRET_KEY", "must be at least 32 characters")
        secure = env.get("COUNCIL_COOKIE_SECURE", "1").strip()
        if secure not in {"0", "1"}:
            raise ConfigError("environment", "COUNCIL_COOKIE_SECURE", "must be 1 or 0")
        retention = env.get("COUNCIL_AUDIT_RETENTION_DAYS", "365").strip()
        if not retention.isdigit() or int(retention) < 1:
            raise ConfigError(
                "environment", "COUNCIL_AUDIT_RETENTION_DAYS", "must be a whole number of days"
            )
        return cls(
            secret_key=secret.encode(),
            secure_cookies=secure == "1",
            audit_retention_days=int(retention),
        )


@dataclass(frozen=True)
class NavItem:
    """A navigation link.

    Attributes:
        label: Link text.
        path: Where it goes.
        roles: Roles that see it (any of them; admins see everything; empty: every user).
    """

    label: str
    path: str
    roles: tuple[str, ...]


REDIS = web.AppKey("redis", redis.asyncio.Redis)
NAMESPACE = web.AppKey("namespace", str)
SETTINGS = web.AppKey("settings", Settings)
ACCOUNTS = web.AppKey("accounts", AccountStore)
SESSIONS = web.AppKey("sessions", SessionStore)
THROTTLE = web.AppKey("throttle", LoginThrottle)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
NAV = web.AppKey("nav", list[NavItem])


def add_nav(app: web.Application, label: str, path: str, *roles: str) -> None:
    """Add a navigation link shown to users holding any of ``roles``."""
    app[NAV].append(NavItem(label, path, roles))


def current_user(request: web.Request) -> User | None:
    """Return the signed-in user of a request, or None."""
    user: User | None = request.get("user")
    return user


def current_session(request: web.Request) -> Session | None:
    """Return the session of a request, or None."""
    session: Session | None = request.get("session")
    return session


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Guard a handler: the user must be signed in and hold any of ``roles``.

    With no roles any signed-in user passes; admins always pass. Without a session, pages
    redirect to ``/login`` and ``/api/`` routes answer 401 JSON; a missing role is 403.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            user = current_user(request)
            if user is None:
                if _is_api(request):
                    raise web.HTTPUnauthorized(text="Sign in first.")
                raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
            if roles and not user.has_role(*roles):
                raise web.HTTPForbidden(text="Your account does not have access to this page.")
            return await handler(request)

        return guarded

    return decorate


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    """Render a template under ``bot/web/templates`` to an HTML response.

    The template also sees ``user`` (or None), ``nav`` (links the user may see),
    ``csrf_token`` and ``request``; ``{{ csrf_field() }}`` writes the hidden CSRF input.
    """
    app = request.app
    user = current_user(request)
    nav = [
        item
        for item in app[NAV]
        if user is not None and (not item.roles or user.has_role(*item.roles))
    ]
    values = {
        **(context or {}),
        "user": user,
        "nav": nav,
        "csrf_token": csrf_token(request),
        "request": request,
    }
    body = app[TEMPLATES].get_template(template).render(values)
    response = web.Response(text=body, status=status, content_type="text/html")
    set_login_cookie(request, response, app[SETTINGS].secure_cookies)
    return response


@jinja2.pass_context
def _csrf_field(context: jinja2.runtime.Context) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, context["csrf_token"]
    )


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, trim_blocks=True
    )
    env.globals["csrf_field"] = _csrf_field
    return env


@web.middleware
async def _error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Client errors become a page (or JSON under /api/) instead of aiohttp's plain text.
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.status >= 500:
            raise
        message = exc.text or exc.reason
        if _is_api(request):
            return web.json_response({"error": exc.reason, "message": message}, status=exc.status)
        page = render(
            request, "error.html", {"title": exc.reason, "message": message}, status=exc.status
        )
        page.cookies.update(exc.cookies)  # e.g. the removal of a dead session cookie
        return page


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["session"] = None
    request["user"] = None
    sid = request.cookies.get(SESSION_COOKIE, "")
    stale = False
    if sid and not request.path.startswith("/static/"):
        sessions = request.app[SESSIONS]
        session = await sessions.load(sid)
        user = await request.app[ACCOUNTS].get(session.username) if session else None
        if session is not None and user is not None and not user.disabled:
            request["session"] = session
            request["user"] = user
        else:
            await sessions.delete(sid)
            stale = True
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # Redirects to /login are raised: they must drop the dead cookie too.
        if stale:
            exc.del_cookie(SESSION_COOKIE)
        raise
    if stale:
        response.del_cookie(SESSION_COOKIE)
    return response


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    if request.app[SETTINGS].secure_cookies:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    if not request.path.startswith("/static/"):
        # Console pages carry residents' data: never keep them in a browser or proxy cache
        # (a public route, such as a bin calendar, sets its own policy).
        headers.setdefault("Cache-Control", "no-store")


def _safe_next(value: object) -> str:
    # Only same-site paths: "//host" and backslashes would let a link send users elsewhere.
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        return value
    return "/"


async def _login_page(request: web.Request) -> web.StreamResponse:
    if current_user(request) is not None:
        raise web.HTTPFound(_safe_next(request.query.get("next")))
    return render(request, "login.html", {"next": _safe_next(request.query.get("next"))})


async def _login(request: web.Request) -> web.StreamResponse:
    app = request.app
    form = await request.post()
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = _safe_next(form.get("next"))
    ip = client_ip(request)
    throttle = app[THROTTLE]
    audit = app[AUDIT]
    locked = LOCKED_MESSAGE.format(minutes=throttle.window_seconds // 60)

    def again(error: str, status: int) -> web.Response:
        return render(
            request,
            "login.html",
            {"next": target, "error": error, "username": username},
            status=status,
        )

    if await throttle.locked(username, ip):
        await audit.record(username, "login.locked", "user", username, ip=ip)
        return again(locked, 429)
    user = await app[ACCOUNTS].authenticate(username, password) if username else None
    if user is None:
        await throttle.failure(username, ip)
        await audit.record(username, "login.failure", "user", username, ip=ip)
        if await throttle.locked(username, ip):
            return again(locked, 429)
        return again(BAD_CREDENTIALS_MESSAGE, 401)
    await throttle.success(user.username)
    old = current_session(request)
    if old is not None:
        await app[SESSIONS].delete(old.sid)
    session = await app[SESSIONS].create(user.username)
    await audit.record(user.username, "login.success", "user", user.username, ip=ip)
    done = web.HTTPFound(target)
    done.set_cookie(
        SESSION_COOKIE,
        session.sid,
        httponly=True,
        samesite="Lax",
        secure=app[SETTINGS].secure_cookies,
        path="/",
    )
    done.del_cookie(LOGIN_CSRF_COOKIE)
    raise done


async def _logout(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    if session is not None:
        await request.app[SESSIONS].delete(session.sid)
        await request.app[AUDIT].record(
            session.username, "logout", "user", session.username, ip=client_ip(request)
        )
    done = web.HTTPFound("/login")
    done.del_cookie(SESSION_COOKIE)
    raise done


@require_role()
async def _home(request: web.Request) -> web.StreamResponse:
    return render(request, "home.html")


def _load_sections(app: web.Application, modules: Sequence[str]) -> None:
    for name in modules:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        setup: Callable[[web.Application], None] | None = getattr(module, "setup", None)
        if not callable(setup):
            raise ConfigError(
                getattr(module, "__file__", None) or name,
                "setup",
                "console sections need setup(app)",
            )
        setup(app)


def create_app(
    redis: redis.asyncio.Redis,
    *,
    namespace: str = "cr",
    settings: Settings,
    sections: Sequence[str] = SECTION_MODULES,
) -> web.Application:
    """Build the console application.

    Args:
        redis: Asyncio client with ``decode_responses=True`` (the caller closes it).
        namespace: Key namespace (``"cr"`` in production, unique per test).
        settings: Console settings.
        sections: Section modules to load (default :data:`SECTION_MODULES`).

    Raises:
        ConfigError: A section module has no ``setup``.
    """
    app = web.Application(middlewares=[_error_pages, _authenticate, csrf_middleware])
    app[REDIS] = redis
    app[NAMESPACE] = namespace
    app[SETTINGS] = settings
    app[ACCOUNTS] = AccountStore(
        redis, namespace, hasher=settings.password_hasher, clock=settings.clock
    )
    app[SESSIONS] = SessionStore(
        redis,
        namespace,
        settings.secret_key,
        idle_seconds=settings.idle_seconds,
        absolute_seconds=settings.absolute_seconds,
        clock=settings.clock,
    )
    app[THROTTLE] = LoginThrottle(
        redis,
        namespace,
        max_per_user=settings.max_failures_per_user,
        max_per_ip=settings.max_failures_per_ip,
        window_seconds=settings.throttle_seconds,
    )
    app[AUDIT] = AuditLog(
        redis, namespace, retention_days=settings.audit_retention_days, clock=settings.clock
    )
    app[TEMPLATES] = _templates()
    app[NAV] = []
    # aiosignal 1.4's generic Signal does not match aiohttp 3.9's annotation of this list.
    app.on_response_prepare.append(_security_headers)  # type: ignore[arg-type]
    app.router.add_get("/", _home)
    app.router.add_get("/login", _login_page)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_static("/static/", STATIC_DIR)
    _load_sections(app, sections)
    return app
