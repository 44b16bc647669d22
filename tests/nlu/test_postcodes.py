import pytest

from bot.nlu.postcodes import PostcodeMatch, find_postcodes, normalise_postcode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("M1 1AE", "M1 1AE"),  # A9 9AA
        ("B33 8TH", "B33 8TH"),  # A99 9AA
        ("CR2 6XH", "CR2 6XH"),  # AA9 9AA
        ("DN55 1PT", "DN55 1PT"),  # AA99 9AA
        ("W1A 0AX", "W1A 0AX"),  # A9A 9AA
        ("EC1A 1BB", "EC1A 1BB"),  # AA9A 9AA
        ("GIR 0AA", "GIR 0AA"),
        ("sw1a1aa", "SW1A 1AA"),
        ("SW1A  1AA", "SW1A 1AA"),
        (" ls1 4ap ", "LS1 4AP"),
        ("gir0aa", "GIR 0AA"),
    ],
)
def test_valid_postcodes_are_normalised(text: str, expected: str) -> None:
    assert normalise_postcode(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "SW1A 1A",  # inward code too short
        "ZZ99 9ZZZ",  # Z cannot be second, inward code too long
        "QA1 1AA",  # Q never first
        "M1 1CA",  # C never in the inward code
        "W1I 0AX",  # I not allowed in the A9A form
        "EC1 1BB 2",
        "12 High Street",
        "",
    ],
)
def test_invalid_postcodes_are_rejected(text: str) -> None:
    assert normalise_postcode(text) is None


def test_find_postcodes_reports_valid_and_malformed_spans() -> None:
    text = "bins at sw1a1aa not collected, or was it SW1A 1A? ask GIR 0AA."
    assert find_postcodes(text) == [
        PostcodeMatch("sw1a1aa", 8, 15, "SW1A 1AA"),
        PostcodeMatch("SW1A 1A", 41, 48, None),
        PostcodeMatch("GIR 0AA", 54, 61, "GIR 0AA"),
    ]


@pytest.mark.parametrize(
    "text", ["when is my bin day", "flat 3b is noisy", "call 0800 123 456", "covid19 2nd jab"]
)
def test_no_postcode_in_ordinary_text(text: str) -> None:
    assert find_postcodes(text) == []
