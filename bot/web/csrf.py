"""Cross-site request forgery protection for the console.

Every unsafe request (POST, PUT, PATCH, DELETE) must carry the CSRF token, either as the form
field ``csrf_token`` (templates write it with ``{{ csrf_field() }}``) or in the ``X-CSRF-Token``
header (for ``fetch()``). A signed-in request is checked against its session's token; the
sign-in form itself, before any session exists, is checked against a token in a SameSite=Strict
cookie (double submit), so a foreign site cannot sign a browser in to an account of its choice.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.web.sessions import Session

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_CSRF_COOKIE",
    "REFUSAL",
    "UNSAFE_METHODS",
    "csrf_middleware",
    "csrf_token",
    "set_login_cookie",
    "tokens_match",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_CSRF_COOKIE = "cr_login_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSAL = (
    "This form could not be accepted because its security token is missing or out of date. "
    "Go back, reload the page and try again."
)
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_NEW_LOGIN_TOKEN = "csrf_new_login_token"  # noqa: S105 (a request key, not a secret)


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Compare two tokens in constant time; a missing or empty one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def _expected(request: web.Request) -> str | None:
    session: Session | None = request.get("session")
    if session is not None:
        return session.csrf_token
    return request.cookies.get(LOGIN_CSRF_COOKIE)


def csrf_token(request: web.Request) -> str:
    """Return the token forms on this page must carry.

    For a request without a session a new sign-in token is made when the browser has none;
    :func:`bot.web.app.render` then sets its cookie on the response.
    """
    expected = _expected(request)
    if expected:
        return expected
    token: str | None = request.get(_NEW_LOGIN_TOKEN)
    if token is None:
        token = secrets.token_urlsafe(32)
        request[_NEW_LOGIN_TOKEN] = token
    return token


def set_login_cookie(request: web.Request, response: web.StreamResponse, secure: bool) -> None:
    """Set the sign-in token cookie when :func:`csrf_token` made a new one."""
    token: str | None = request.get(_NEW_LOGIN_TOKEN)
    if token is not None:
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/"
        )


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse unsafe requests without the right token (403 via ``HTTPForbidden``)."""
    if request.method in UNSAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.content_type in _FORM_TYPES:
            field = (await request.post()).get(CSRF_FIELD)
            given = field if isinstance(field, str) else None
        if not tokens_match(_expected(request), given):
            raise web.HTTPForbidden(text=REFUSAL)
    return await handler(request)
