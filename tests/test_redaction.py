"""Redaction of residents' messages kept for reports (bot/redaction.py).

Examples are written the way residents write to a council: phone numbers from Ofcom's ranges
reserved for drama (07700 900xxx, 0117 496 0xxx, 020 7946 0xxx), postcodes in the formats
Royal Mail lists, and e-mail addresses on example domains.
"""

from __future__ import annotations

import pytest

from bot.redaction import redact


@pytest.mark.parametrize(
    ("message", "redacted"),
    [
        # names
        (
            "Hi my name is Jo Bloggs, my bin wasn't emptied",
            "Hi my name is [name], my bin wasn't emptied",
        ),
        ("my name is jo and my bin is missing", "my name is [name] and my bin is missing"),
        (
            "Name: Priya Shah. Where do I pay council tax?",
            "Name: [name]. Where do I pay council tax?",
        ),
        ("I'm Dave and I need a new recycling box", "I'm [name] and I need a new recycling box"),
        ("I\u2019m Siân Evans, can I talk to someone", "I\u2019m [name], can I talk to someone"),
        ("this is Sam from number 4", "this is [name] from number 4"),
        ("My mum Mrs Patel can't get her bin out", "My mum Mrs [name] can't get her bin out"),
        (
            "who do I ask about parking fines? Thanks, Dave",
            "who do I ask about parking fines? Thanks, [name]",
        ),
        (
            "Missed collection again!!\nRegards\nMary Smith",
            "Missed collection again!!\nRegards\n[name]",
        ),
        ("Fly tipping behind the shops - Ann", "Fly tipping behind the shops - [name]"),
        # addresses and postcodes
        (
            "bin not collected at 12 High Street, AB1 2CD",
            "bin not collected at [address], [postcode]",
        ),
        ("Flat 3, 45 Mill Lane has rats", "[address] has rats"),
        ("when is bin day for sw1a1aa", "when is bin day for [postcode]"),
        ("my postcode is M1 1AE", "my postcode is [postcode]"),
        ("EC1A 1BB and CR2 6XH", "[postcode] and [postcode]"),
        # phones, e-mails, numbers
        ("ring me on 07700 900123", "ring me on [phone]"),
        ("call +44 7700 900 123 after 5", "call [phone] after 5"),
        ("my number is (0117) 496 0123", "my number is [phone]"),
        ("landline 020 7946 0958 please", "landline [phone] please"),
        ("email me at jo.bloggs+council@example.co.uk", "email me at [email]"),
        ("council tax account 31234567", "council tax account [number]"),
        ("reference 1234-5678-90", "reference [number]"),
        ("born 01/02/1950, need assisted collection", "born [number], need assisted collection"),
    ],
)
def test_personal_data_is_replaced(message: str, redacted: str) -> None:
    assert redact(message) == redacted


@pytest.mark.parametrize(
    "message",
    [
        "where is the tip",
        "when is the green bin collected",
        "I'm worried about my neighbour",
        "this is ridiculous, third time this month",
        "can I pay £35 for 3 items?",
        "is the tip open on 25 December",
        "I am not happy",
    ],
)
def test_questions_without_personal_data_are_kept(message: str) -> None:
    assert redact(message) == message
