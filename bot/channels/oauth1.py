"""OAuth 1.0a request signing with HMAC-SHA1 (RFC 5849), for X's direct-message media.

X serves the files of DMs (``https://ton.twitter.com/1.1/ton/data/dm/...``) only to requests
signed with the account user's OAuth 1.0a access token. :func:`authorization_header` builds
the ``Authorization`` header of one request; :func:`signature_base_string` and
:func:`parse_authorization` are public so a test server can recompute a signature.
Percent-encoding is RFC 3986's unreserved set (RFC 5849 section 3.6), over UTF-8.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = [
    "OAuth1Credentials",
    "authorization_header",
    "parse_authorization",
    "percent_encode",
    "signature",
    "signature_base_string",
]

Params = Mapping[str, str] | Iterable[tuple[str, str]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class OAuth1Credentials:
    """The four values a request is signed with (a test server keeps them to check one)."""

    consumer_key: str
    consumer_secret: str = field(repr=False)
    token: str
    token_secret: str = field(repr=False)


def percent_encode(value: str) -> str:
    """RFC 5849 section 3.6: every byte but ``A-Z a-z 0-9 - . _ ~`` as ``%XX`` (upper case)."""
    return quote(value.encode("utf-8"), safe="-._~")


def _pairs(params: Params | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return list(params.items())
    return list(params)


def _base_uri(url: str) -> str:
    """RFC 5849 section 3.4.1.2: lower-case scheme and host, no default port, no query."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def signature_base_string(method: str, url: str, params: Params | None = None) -> str:
    """RFC 5849 section 3.4.1: method, base URI and the normalised parameters.

    Args:
        method: The HTTP method.
        url: The request URL; its query's parameters are included.
        params: Form-body and ``oauth_*`` parameters, decoded (``oauth_signature`` excluded).
    """
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    pairs = sorted(
        (percent_encode(name), percent_encode(value))
        for name, value in [*query, *_pairs(params)]
        if name != "oauth_signature"
    )
    normalised = "&".join(f"{name}={value}" for name, value in pairs)
    return "&".join(percent_encode(part) for part in (method.upper(), _base_uri(url), normalised))


def signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """RFC 5849 section 3.4.2: base64 HMAC-SHA1 of ``base_string`` with the two secrets."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def authorization_header(
    method: str,
    url: str,
    *,
    consumer_key: str,
    consumer_secret: str,
    token: str,
    token_secret: str,
    nonce: str,
    timestamp: str,
    params: Params | None = None,
) -> str:
    """The ``Authorization: OAuth ...`` value for one request.

    Args:
        method: The HTTP method.
        url: The request URL (its query is signed).
        consumer_key: The app's API key.
        consumer_secret: The app's API key secret.
        token: The user's access token.
        token_secret: The user's access token secret.
        nonce: A value never used twice (e.g. ``secrets.token_hex(16)``).
        timestamp: Seconds since the epoch, as text.
        params: Form-body parameters, decoded, if the body is form-encoded.
    """
    oauth = {
        "oauth_consumer_key": consumer_key,
        "oauth_nonce": nonce,
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_timestamp": timestamp,
        "oauth_token": token,
        "oauth_version": "1.0",
    }
    base = signature_base_string(method, url, [*_pairs(params), *oauth.items()])
    oauth["oauth_signature"] = signature(base, consumer_secret, token_secret)
    fields = ", ".join(
        f'{percent_encode(name)}="{percent_encode(value)}"' for name, value in sorted(oauth.items())
    )
    return f"OAuth {fields}"


def parse_authorization(value: str) -> dict[str, str]:
    """The decoded parameters of an ``Authorization: OAuth ...`` header ({} if not OAuth)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "oauth":
        return {}
    found: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, quoted = item.strip().partition("=")
        if sep and len(quoted) >= 2 and quoted[0] == quoted[-1] == '"':
            found[unquote(name)] = unquote(quoted[1:-1])
    return found
