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

from starlette.requests import Request
from starlette.responses import Response

from bot.web.sessions import Session

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "LOGIN_CSRF_COOKIE",
    "MAX_FORM_FIELDS",
    "REFUSAL",
    "UNSAFE_METHODS",
    "csrf_token",
    "request_passes",
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
MAX_FORM_FIELDS = 200
"""Most fields a console form may have (a knowledge-base entry has about 20); no files."""


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Compare two tokens in constant time; a missing or empty one never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def _expected(request: Request) -> str | None:
    session: Session | None = getattr(request.state, "session", None)
    if session is not None:
        return session.csrf_token
    return request.cookies.get(LOGIN_CSRF_COOKIE)


def csrf_token(request: Request) -> str:
    """Return the token forms on this page must carry.

    For a request without a session a new sign-in token is made when the browser has none;
    :func:`bot.web.app.render` then sets its cookie on the response.
    """
    expected = _expected(request)
    if expected:
        return expected
    token: str | None = getattr(request.state, _NEW_LOGIN_TOKEN, None)
    if token is None:
        token = secrets.token_urlsafe(32)
        setattr(request.state, _NEW_LOGIN_TOKEN, token)
    return token


def set_login_cookie(request: Request, response: Response, secure: bool) -> None:
    """Set the sign-in token cookie when :func:`csrf_token` made a new one."""
    token: str | None = getattr(request.state, _NEW_LOGIN_TOKEN, None)
    if token is not None:
        response.set_cookie(
            LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/"
        )


async def request_passes(request: Request) -> bool:
    """Whether a request may go on: safe methods always, unsafe ones with the right token.

    The form is parsed here (with the console's limits) and cached on the request, so the
    handler reads the same form without parsing the body twice.
    """
    if request.method not in UNSAFE_METHODS:
        return True
    given = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given is None and content_type in _FORM_TYPES:
        field = (await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)).get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    return tokens_match(_expected(request), given)
