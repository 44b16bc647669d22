"""The web console application and the API its sections build on.

:func:`create_app` builds the Starlette application (served by uvicorn, see
:mod:`bot.web.__main__`): sign-in and sign-out, sessions, CSRF checks, security headers, error
pages, static files and the sections listed in :data:`SECTION_MODULES`. A section is a module
with ``setup(app: ConsoleApp) -> None`` that adds its routes (``app.add_route``, guarded with
:func:`require_role`) and its navigation links (:func:`add_nav`), and renders pages with
:func:`render`. See docs/architecture.md, "Web console".
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, unquote, urlsplit

import jinja2
import redis.asyncio
from argon2 import PasswordHasher
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.datastructures import FormData, Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bot.errors import AccountError, ConfigError, MissingSecretError
from bot.settings import Settings as ProcessSettings
from bot.settings import current as process_settings
from bot.web.accounts import AccountStore, LoginThrottle, User
from bot.web.appkey import AppKey
from bot.web.audit import AUDIT, AuditLog, client_ip
from bot.web.audit import record as audit_record
from bot.web.csrf import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    MAX_FORM_FIELDS,
    REFUSAL,
    csrf_token,
    request_passes,
    set_login_cookie,
)
from bot.web.sessions import BACKGROUND_HEADER, SESSION_COOKIE, Session, SessionStore

__all__ = [
    "ACCOUNTS",
    "AUDIT",
    "NAMESPACE",
    "NAV",
    "NOTICE_CODES",
    "REDIS",
    "SECTION_MODULES",
    "SESSIONS",
    "SETTINGS",
    "TEMPLATES",
    "THROTTLE",
    "AppKey",
    "ConsoleApp",
    "Handler",
    "NavItem",
    "Refused",
    "Settings",
    "add_nav",
    "app_of",
    "create_app",
    "current_session",
    "current_user",
    "read_form",
    "render",
    "require_role",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
"""A console route handler: ``async def page(request: Request) -> Response``."""
Lifespan = Callable[["ConsoleApp"], AbstractAsyncContextManager[None]]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body the console reads (forms are a few kilobytes); larger ones get 413."""

SECTION_MODULES: tuple[str, ...] = (
    "bot.web.admin",
    "bot.web.residents",
    "bot.web.editor",
    "bot.web.review",
    "bot.web.responses_editor",
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
    "Too many failed sign-in attempts. Wait {wait} and try again, "
    "or ask an administrator to unlock your account."
)
PASSWORD_PAGE = "/account/password"  # noqa: S105 (a path, not a password)
BAD_CREDENTIALS_MESSAGE = "The username or password is not right."
SERVER_ERROR_MESSAGE = (
    "Something went wrong on our side and nothing was changed. Try again in a minute; "
    "if it keeps happening, tell your administrator the time and the page."
)
TOO_LARGE_MESSAGE = "That was more than the console accepts at once. Shorten it and try again."
NOTICE_CODES = frozenset(
    {
        # editor
        "saved",
        "published",
        "archived",
        "rolled-back",
        "approval-requested",
        "rolled-back-approval-requested",
        # review queue
        "reviewed",
        # agent
        "claimed",
        "released",
        "sent",
        "noted",
        "resolved",
        "returned-to-bot",
        "reassigned",
        "added",
        "deleted",
        # admin
        "created",
        "roles",
        "status",
        "password",
        "unlocked",
        "name",
    }
)
"""Values of ``?done=`` a page may show after an action (add a section's new ones here)."""
_MAX_NEXT = 2048
_PLAIN_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*")  # printable ASCII, no space or backslash
_PATH = re.compile(r"/[^\\\x00-\x20\x7f]*")  # decoded: still no backslash or control character


@dataclass(frozen=True)
class Settings:
    """Console settings.

    Attributes:
        secret_key: Key for session id digests (``COUNCIL_SECRET_KEY``, at least 32 bytes).
        secure_cookies: Send cookies only over HTTPS (off only for local development).
        idle_seconds: Session idle expiry.
        absolute_seconds: Session absolute expiry.
        max_failures_per_user: Failed sign-ins per username before delays start.
        max_failures_per_ip: Failed sign-ins per client address before it is refused.
        throttle_seconds: How long failures are remembered (see ``LoginThrottle``).
        trusted_proxies: Addresses and CIDR ranges of reverse proxies whose
            ``X-Forwarded-For`` names the client (``COUNCIL_TRUSTED_PROXIES``); empty: the
            client is the TCP peer.
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
    trusted_proxies: tuple[str, ...] = ()
    audit_retention_days: int = 365
    clock: Callable[[], float] = time.time
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The console's settings from ``environ`` (default: this process' settings).

        ``COUNCIL_SECRET_KEY`` is required; ``COUNCIL_COOKIE_SECURE`` (``1``/``0``, default
        ``1``), ``COUNCIL_AUDIT_RETENTION_DAYS`` (default 365) and
        ``COUNCIL_TRUSTED_PROXIES`` (addresses or CIDR ranges, separated by commas or spaces)
        are optional.

        Raises:
            MissingSecretError: ``COUNCIL_SECRET_KEY`` is not set.
            ConfigError: A variable has a bad value.
        """
        shared = process_settings() if environ is None else ProcessSettings.from_env(environ)
        return cls.from_settings(shared)

    @classmethod
    def from_settings(cls, shared: ProcessSettings) -> Settings:
        """The console's part of the process' settings (:class:`bot.settings.Settings`).

        Raises:
            MissingSecretError: ``COUNCIL_SECRET_KEY`` is not set.
            ConfigError: It is shorter than 32 characters.
        """
        secret = shared.secret_key
        if not secret:
            raise MissingSecretError("COUNCIL_SECRET_KEY", "signs web console sessions")
        if len(secret) < 32:
            raise ConfigError("environment", "COUNCIL_SECRET_KEY", "must be at least 32 characters")
        return cls(
            secret_key=secret.encode(),
            secure_cookies=shared.cookie_secure,
            audit_retention_days=shared.audit_retention_days,
            trusted_proxies=shared.trusted_proxies,
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


REDIS = AppKey[redis.asyncio.Redis]("redis")
NAMESPACE = AppKey[str]("namespace")
SETTINGS = AppKey[Settings]("settings")
ACCOUNTS = AppKey[AccountStore]("accounts")
SESSIONS = AppKey[SessionStore]("sessions")
THROTTLE = AppKey[LoginThrottle]("throttle")
TEMPLATES = AppKey[jinja2.Environment]("templates")
NAV = AppKey[list[NavItem]]("nav")


class Refused(HTTPException):
    """A refused request (401 or 403): an error page for the user, an entry in the audit log.

    Any 401/403 ``HTTPException`` is audited; this subclass names what was refused.

    Args:
        status_code: 401 or 403.
        message: What the user reads.
        action: The audit action (``access.denied``, ``csrf.refused``...).
        object_type: Kind of object refused (default: the request path).
        object_id: Which object (default: the request path).
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        action: str = "access.denied",
        object_type: str = "path",
        object_id: str = "",
    ) -> None:
        super().__init__(status_code, message)
        self.action = action
        self.object_type = object_type
        self.object_id = object_id


class ConsoleApp(Starlette):
    """The console: a Starlette application holding typed values (``app[KEY]``).

    Routes added with :meth:`add_route` (the only way sections add them) are CSRF-checked
    before their handler runs. :meth:`add_lifespan` registers work that runs while the
    server runs (entered at start-up, left at shutdown).
    """

    def __init__(self) -> None:
        self._values: dict[AppKey[Any], Any] = {}
        self._lifespans: list[Lifespan] = []
        super().__init__(
            middleware=[
                Middleware(_SecurityHeaders),
                Middleware(_ServerErrors),
                Middleware(_BodyLimit),
                Middleware(_Authenticate),
            ],
            exception_handlers={HTTPException: _http_error},
            lifespan=_run_lifespans,
        )

    def __getitem__(self, key: AppKey[T]) -> T:
        return cast(T, self._values[key])

    def __setitem__(self, key: AppKey[T], value: T) -> None:
        self._values[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def add_route(
        self,
        path: str,
        route: Callable[[Request], Awaitable[Response] | Response],
        methods: list[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None:
        """Add an ``async`` handler at ``path`` (``/agent/cases/{case_id}``) for ``methods``.

        ``methods`` defaults to ``["GET"]`` (HEAD is added by Starlette). Unsafe methods are
        refused with 403 before the handler runs unless the request carries the CSRF token.
        """
        if not inspect.iscoroutinefunction(route):
            raise ConfigError(str(path), "handler", "console handlers must be async functions")
        self.router.routes.append(
            Route(path, _csrf_checked(cast(Handler, route)), methods=methods or ["GET"], name=name)
        )

    def add_lifespan(self, context: Lifespan) -> None:
        """Run ``context(app)`` (an async context manager) for as long as the server runs."""
        self._lifespans.append(context)


@asynccontextmanager
async def _run_lifespans(app: ConsoleApp) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for context in app._lifespans:
            await stack.enter_async_context(context(app))
        yield


def app_of(request: Request) -> ConsoleApp:
    """The console application serving ``request`` (typed, unlike ``request.app``)."""
    app: ConsoleApp = request.app
    return app


def add_nav(app: ConsoleApp, label: str, path: str, *roles: str) -> None:
    """Add a navigation link shown to users holding any of ``roles``."""
    app[NAV].append(NavItem(label, path, roles))


def current_user(request: Request) -> User | None:
    """Return the signed-in user of a request, or None."""
    user: User | None = getattr(request.state, "user", None)
    return user


def current_session(request: Request) -> Session | None:
    """Return the session of a request, or None."""
    session: Session | None = getattr(request.state, "session", None)
    return session


async def read_form(request: Request) -> FormData:
    """The request's form (parsed once; the CSRF check has usually parsed it already).

    Values are ``str`` (or ``UploadFile``, never accepted by the console); use
    ``.getlist(name)`` for repeated fields.
    """
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _path_qs(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Guard a handler: the user must be signed in and hold any of ``roles``.

    With no roles any signed-in user passes; admins always pass. Without a session, pages
    redirect to ``/login`` and ``/api/`` routes answer 401 JSON; a missing role is 403. A user
    whose password was reset by an administrator is sent to the change-password page first.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            user = current_user(request)
            if user is None:
                if _is_api(request):
                    raise HTTPException(401, "Sign in first.")
                await audit_record(
                    request,
                    "access.unauthenticated",
                    "path",
                    request.url.path,
                    outcome="refused",
                )
                return RedirectResponse(
                    f"/login?next={quote(_path_qs(request), safe='/')}", status_code=302
                )
            if user.must_change_password:
                # after an administrator's reset the user can do nothing else
                if _is_api(request):
                    raise HTTPException(403, "Choose a new password first.")
                return RedirectResponse(
                    f"{PASSWORD_PAGE}?next={quote(_path_qs(request), safe='/')}", status_code=303
                )
            if roles and not user.has_role(*roles):
                raise HTTPException(403, "Your account does not have access to this page.")
            return await handler(request)

        return guarded

    return decorate


def _csrf_checked(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def checked(request: Request) -> Response:
        if not await request_passes(request):
            raise Refused(403, REFUSAL, action="csrf.refused")
        return await handler(request)

    return checked


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> HTMLResponse:
    """Render a template under ``bot/web/templates`` to an HTML response.

    The template also sees ``user`` (or None), ``nav`` (links the user may see),
    ``csrf_token``, ``request`` and ``done`` (the ``?done=`` notice code when it is one of
    :data:`NOTICE_CODES`, else empty; never other text from the URL);
    ``{{ csrf_field() }}`` writes the hidden CSRF input.
    """
    app = app_of(request)
    user = current_user(request)
    nav = [
        item
        for item in app[NAV]
        if user is not None and (not item.roles or user.has_role(*item.roles))
    ]
    values = {
        **(context or {}),
        "done": _notice(request, (context or {}).get("done")),
        "user": user,
        "nav": nav,
        "csrf_token": csrf_token(request),
        "request": request,
    }
    body = app[TEMPLATES].get_template(template).render(values)
    response = HTMLResponse(body, status_code=status)
    set_login_cookie(request, response, app[SETTINGS].secure_cookies)
    return response


def _notice(request: Request, given: object) -> object:
    # A page shows "Done: <code>" after an action; a code outside the fixed list could put a
    # stranger's words on the council's page (a True/False flag passes through).
    code = given if given is not None else request.query_params.get("done", "")
    if isinstance(code, str) and code not in NOTICE_CODES:
        return ""
    return code


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


def _error_response(request: Request, status: int, message: str) -> Response:
    reason = HTTPStatus(status).phrase
    if _is_api(request):
        return JSONResponse({"error": reason, "message": message}, status_code=status)
    return render(request, "error.html", {"title": reason, "message": message}, status=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Client errors become a page (or JSON under /api/) instead of Starlette's plain text;
    # every 401 and 403 is a refusal in the audit log, named by path (never the query string).
    assert isinstance(exc, HTTPException)
    if isinstance(exc, Refused):
        await audit_record(
            request,
            exc.action,
            exc.object_type,
            exc.object_id or request.url.path,
            outcome="refused",
        )
    elif exc.status_code in {401, 403}:
        action = "access.unauthenticated" if exc.status_code == 401 else "access.denied"
        await audit_record(request, action, "path", request.url.path, outcome="refused")
    response = _error_response(request, exc.status_code, exc.detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


class _SecurityHeaders:
    """Add the console's security headers to every response, error pages included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        secure = scope["app"][SETTINGS].secure_cookies

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if secure:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
                if not static and "cache-control" not in headers:
                    # Console pages carry residents' data: never keep them in a browser or proxy
                    # cache (a public route, such as a bin calendar, sets its own policy).
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


class _ServerErrors:
    """Turn an unexpected exception into the console's own 500 page (JSON under ``/api/``).

    The page names no exception, file or line; the log gets the traceback with the method and
    path (never the query string, which can hold residents' words).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching)
        except Exception:
            logger.exception("console error: %s %s", scope["method"], scope["path"])
            if started:
                raise  # too late for a page: the server closes the connection
            page = _error_response(Request(scope), 500, SERVER_ERROR_MESSAGE)
            await page(scope, receive, send)


class _BodyLimit:
    """Refuse request bodies over :data:`MAX_BODY_BYTES` with a 413 page, before parsing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            page = _error_response(Request(scope), 413, TOO_LARGE_MESSAGE)
            await page(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            # raised inside the handler's form parsing, so the error handler renders the page
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise HTTPException(413, TOO_LARGE_MESSAGE)
            return message

        await self.app(scope, limited, send)


class _Authenticate:
    """Load the session and user named by the session cookie into ``request.state``.

    A cookie naming no live session (expired, signed out, user disabled) is deleted on the
    response, whatever the response is.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        request.state.session = None
        request.state.user = None
        sid = request.cookies.get(SESSION_COOKIE, "")
        if not sid or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        app: ConsoleApp = scope["app"]
        sessions = app[SESSIONS]
        session = await sessions.load(sid, activity=request.headers.get(BACKGROUND_HEADER) != "1")
        user = await app[ACCOUNTS].get(session.username) if session else None
        if session is not None and user is not None and not user.disabled:
            request.state.session = session
            request.state.user = user
            await self.app(scope, receive, send)
            return
        await sessions.delete(sid)
        removal = Response()
        removal.delete_cookie(SESSION_COOKIE, path="/")
        cookie = removal.headers["set-cookie"]

        async def dropping_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        await self.app(scope, receive, dropping_cookie)


def _safe_next(value: object) -> str:
    """``value`` if it is a path on this site, else ``/``.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so a tab
    between two slashes, or a backslash after one, leads to another host: only printable ASCII
    without backslashes is accepted, and the path must not start with two slashes, before or
    after percent-decoding.
    """
    if not isinstance(value, str) or len(value) > _MAX_NEXT or not _PLAIN_PATH.fullmatch(value):
        return "/"
    parts = urlsplit(value)
    decoded = unquote(parts.path)
    if parts.scheme or parts.netloc or decoded.startswith("//") or not _PATH.fullmatch(decoded):
        return "/"
    return value


async def _login_page(request: Request) -> Response:
    if current_user(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=302)
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next"))})


def _wait_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


async def _login(request: Request) -> Response:
    app = app_of(request)
    fields = await read_form(request)
    username = str(fields.get("username", "")).strip()[:64]
    password = str(fields.get("password", ""))
    target = _safe_next(fields.get("next"))
    ip = client_ip(request)
    throttle = app[THROTTLE]
    audit = app[AUDIT]

    def again(error: str, status: int) -> Response:
        return render(
            request,
            "login.html",
            {"next": target, "error": error, "username": username},
            status=status,
        )

    async def throttled(wait: int) -> Response:
        # a guesser keeps posting while throttled: the same per-address cap as other refusals
        if await audit.admit_anonymous(ip):
            await audit.record(
                username,
                "login.throttled",
                "user",
                username,
                {"wait": wait},
                ip=ip,
                outcome="refused",
            )
        response = again(LOCKED_MESSAGE.format(wait=_wait_words(wait)), 429)
        response.headers["Retry-After"] = str(wait)
        return response

    if wait := await throttle.wait_seconds(username, ip):
        return await throttled(wait)  # not checked, not counted: waiting cannot grow
    user = await app[ACCOUNTS].authenticate(username, password) if username else None
    if user is None:
        await throttle.failure(username, ip)
        await audit.record(username, "login.failure", "user", username, ip=ip, outcome="failed")
        return again(BAD_CREDENTIALS_MESSAGE, 401)
    await throttle.success(user.username, ip)
    old = current_session(request)
    if old is not None:
        await app[SESSIONS].delete(old.sid)
    session = await app[SESSIONS].create(user.username)
    await audit.record(user.username, "login.success", "user", user.username, ip=ip)
    if user.must_change_password:
        target = f"{PASSWORD_PAGE}?next={quote(target, safe='/')}"
    done = RedirectResponse(target, status_code=302)
    done.set_cookie(
        SESSION_COOKIE,
        session.sid,
        httponly=True,
        samesite="lax",
        secure=app[SETTINGS].secure_cookies,
        path="/",
    )
    done.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return done


async def _password_page(request: Request) -> Response:
    if current_user(request) is None:
        return RedirectResponse(f"/login?next={quote(PASSWORD_PAGE, safe='/')}", status_code=302)
    return render(
        request,
        "account/password.html",
        {
            "next": _safe_next(request.query_params.get("next")),
            "done": "done" in request.query_params,
        },
    )


async def _change_password(request: Request) -> Response:
    """A user changes their own password (current one, new one twice)."""
    app = app_of(request)
    user = current_user(request)
    session = current_session(request)
    if user is None or session is None:
        raise HTTPException(401, "Sign in first.")
    fields = await read_form(request)
    target = _safe_next(fields.get("next"))
    ip = client_ip(request)
    new = str(fields.get("new_password", ""))

    def again(error: str, status: int) -> Response:
        context = {"next": target, "error": error, "done": False}
        return render(request, "account/password.html", context, status=status)

    if wait := await app[THROTTLE].wait_seconds(user.username, ip):
        await app[AUDIT].record(
            user.username, "password.throttled", "user", user.username, {"wait": wait}, ip=ip
        )
        return again(LOCKED_MESSAGE.format(wait=_wait_words(wait)), 429)
    if new != str(fields.get("confirm_password", "")):
        return again("The two new passwords are not the same.", 400)
    try:
        await app[ACCOUNTS].change_password(
            user.username, str(fields.get("current_password", "")), new
        )
    except AccountError as exc:
        if "current password" in exc.reason:
            # a stolen session must not become a way to guess the password
            await app[THROTTLE].failure(user.username, ip)
            await app[AUDIT].record(user.username, "password.failure", "user", user.username, ip=ip)
        return again(exc.reason[:1].upper() + exc.reason[1:] + ".", 400)
    # other sessions (perhaps someone else's) end; this one carries on
    await app[SESSIONS].delete_user(user.username)
    fresh = await app[SESSIONS].create(user.username)
    await app[AUDIT].record(user.username, "password.change", "user", user.username, ip=ip)
    done = RedirectResponse(
        f"{PASSWORD_PAGE}?done=1&next={quote(target, safe='/')}", status_code=303
    )
    done.set_cookie(
        SESSION_COOKIE,
        fresh.sid,
        httponly=True,
        samesite="lax",
        secure=app[SETTINGS].secure_cookies,
        path="/",
    )
    return done


async def _logout(request: Request) -> Response:
    session = current_session(request)
    if session is not None:
        await app_of(request)[SESSIONS].delete(session.sid)
        await app_of(request)[AUDIT].record(
            session.username, "logout", "user", session.username, ip=client_ip(request)
        )
    done = RedirectResponse("/login", status_code=302)
    done.delete_cookie(SESSION_COOKIE, path="/")
    return done


@require_role()
async def _home(request: Request) -> Response:
    return render(request, "home.html")


def _load_sections(app: ConsoleApp, modules: Sequence[str]) -> None:
    for name in modules:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        setup: Callable[[ConsoleApp], None] | None = getattr(module, "setup", None)
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
) -> ConsoleApp:
    """Build the console application (an ASGI app; ``python -m bot.web`` serves it).

    Args:
        redis: Asyncio client with ``decode_responses=True`` (the caller closes it).
        namespace: Key namespace (``"cr"`` in production, unique per test).
        settings: Console settings.
        sections: Section modules to load (default :data:`SECTION_MODULES`).

    Raises:
        ConfigError: A section module has no ``setup``.
    """
    app = ConsoleApp()
    if settings.trusted_proxies:
        # uvicorn's maintained X-Forwarded-For handling, believed only from these proxies
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
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
        clock=settings.clock,
    )
    app[AUDIT] = AuditLog(
        redis, namespace, retention_days=settings.audit_retention_days, clock=settings.clock
    )
    app[TEMPLATES] = _templates()
    app[NAV] = []
    app.add_route("/", _home)
    app.add_route("/login", _login_page)
    app.add_route("/login", _login, methods=["POST"])
    app.add_route("/logout", _logout, methods=["POST"])
    app.add_route(PASSWORD_PAGE, _password_page)
    app.add_route(PASSWORD_PAGE, _change_password, methods=["POST"])
    app.router.routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    _load_sections(app, sections)
    return app
