"""OAuth 1.0a signing checked against published examples (tests/data/oauth1/SOURCE.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from bot.channels.oauth1 import (
    authorization_header,
    parse_authorization,
    percent_encode,
    signature,
    signature_base_string,
)

DATA = Path(__file__).parent.parent / "data" / "oauth1"


def vector(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DATA / name).read_text())
    return result


def test_rfc5849_signature_base_string_example() -> None:
    example = vector("rfc5849_3_4_1.json")
    body = parse_qsl(example["body"], keep_blank_values=True)
    params = [*body, *example["oauth"].items(), ("oauth_signature", "left out")]
    assert (
        signature_base_string(example["method"], example["url"], params) == (example["base_string"])
    )


def test_x_creating_a_signature_example() -> None:
    example = vector("x_creating_a_signature.json")
    body = parse_qsl(example["body"], keep_blank_values=True)
    header = authorization_header(
        example["method"],
        example["url"],
        consumer_key=example["consumer_key"],
        consumer_secret=example["consumer_secret"],
        token=example["token"],
        token_secret=example["token_secret"],
        nonce=example["nonce"],
        timestamp=example["timestamp"],
        params=body,
    )
    fields = parse_authorization(header)
    assert fields["oauth_signature"] == example["signature"]
    assert fields["oauth_token"] == example["token"]
    assert fields["oauth_signature_method"] == "HMAC-SHA1" and fields["oauth_version"] == "1.0"
    assert 'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D"' in header


def test_a_changed_secret_or_url_changes_the_signature() -> None:
    base = signature_base_string("GET", "https://ton.twitter.com/1.1/ton/data/dm/1/2/a.jpg")
    assert signature(base, "c", "t") != signature(base, "c", "u")
    other = signature_base_string("GET", "https://ton.twitter.com/1.1/ton/data/dm/1/2/b.jpg")
    assert signature(base, "c", "t") != signature(other, "c", "t")


def test_percent_encoding_is_rfc3986_over_utf8() -> None:
    assert percent_encode("a-._~ +*/%") == "a-._~%20%2B%2A%2F%25"
    assert percent_encode("Llandudno ŵ") == "Llandudno%20%C5%B5"
    assert signature_base_string("get", "HTTPS://Ton.Twitter.com:443/a?b=1").startswith(
        "GET&https%3A%2F%2Fton.twitter.com%2Fa&b%3D1"
    )
    assert parse_authorization("Bearer abc") == {}
