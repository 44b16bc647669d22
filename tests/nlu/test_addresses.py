import pytest

from bot.nlu.addresses import AddressMatch, find_addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I live at 12 High Street.", "12 High Street"),
        ("Flat 3, 45 Mill Lane, Leeds", "Flat 3, 45 Mill Lane"),
        ("bins missed at 7a st john's road again", "7a st john's road"),
        ("unit 2 10 Station Rd", "unit 2 10 Station Rd"),
    ],
)
def test_addresses_are_found(text: str, expected: str) -> None:
    assert [match.raw for match in find_addresses(text)] == [expected]


def test_spans_point_into_the_text() -> None:
    text = "my address is 9 Elm Grove LS1 4AP"
    assert find_addresses(text) == [AddressMatch("9 Elm Grove", 14, 25)]
    assert text[14:25] == "9 Elm Grove"


@pytest.mark.parametrize(
    "text", ["when is my bin day", "I waited 3 days", "street lights out on 5th"]
)
def test_no_address_in_ordinary_text(text: str) -> None:
    assert find_addresses(text) == []
