"""Values read from a signed payload are type- and range-checked, never trusted."""

from __future__ import annotations

import pytest

from bot.channels import checks
from bot.errors import PayloadError

NOW = 1732352400.0


def test_json_nested_too_deeply_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="nested too deeply"):
        checks.load_json("x", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(PayloadError, match="not JSON"):
        checks.load_json("x", b"\xff")


def test_lone_surrogates_are_replaced_and_pairs_kept() -> None:
    assert checks.clean("a\ud800b") == "a\ufffdb"
    assert checks.clean("\U0001f600") == "\U0001f600"
    assert checks.text("x", "bin \udfff day", "text").encode("utf-8")


@pytest.mark.parametrize("value", [["a"], 42, {"a": 1}, None, True])
def test_text_must_be_a_string(value: object) -> None:
    with pytest.raises(PayloadError, match="text is not a string"):
        checks.text("x", value, "text")


@pytest.mark.parametrize("value", ["", "  ", None, 1.5, True, "a" * 300, "bad\nid", []])
def test_identifiers(value: object) -> None:
    with pytest.raises(PayloadError):
        checks.identifier("x", value, "sender.id")


def test_identifiers_accept_strings_and_integers() -> None:
    assert checks.identifier("x", 123456789, "id") == "123456789"
    assert checks.identifier("x", "m_abc", "id") == "m_abc"


@pytest.mark.parametrize(
    "value", [None, "soon", 1e308, 10**400, -5, 0, float("nan"), NOW + 3 * 86400, True]
)
def test_timestamps_out_of_range(value: object) -> None:
    with pytest.raises(PayloadError):
        checks.timestamp("x", value, "date", now=NOW)


def test_timestamps_in_seconds_and_milliseconds() -> None:
    assert checks.timestamp("x", 1732352400, "date", now=NOW) == NOW
    assert checks.timestamp("x", "1732352400000", "ts", per_second=1000, now=NOW) == NOW
    assert checks.timestamp("x", 1732352399876, "ts", per_second=1000, now=NOW) == pytest.approx(
        1732352399.876
    )


def test_coordinates() -> None:
    assert checks.coordinate("x", "51.5072", "lat", 90) == 51.5072
    for bad in (91, -181.0, "north", None, float("inf"), True):
        with pytest.raises(PayloadError):
            checks.coordinate("x", bad, "lat", 90 if bad != -181.0 else 180)
