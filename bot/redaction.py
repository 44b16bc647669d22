"""Personal data out of texts kept for reporting: names, addresses, postcodes, numbers.

Reports (the supervisors' "top unanswered questions" and their exports) need what residents
ask about, not who asked. :func:`redact` replaces what identifies a person with a placeholder:

- ``[email]``: e-mail addresses;
- ``[phone]``: UK phone numbers (``07700 900123``, ``+44 7700 900123``, ``(0117) 496 0123``);
- ``[postcode]``: anything shaped like a UK postcode, valid or mistyped
  (:func:`bot.nlu.postcodes.find_postcodes`);
- ``[address]``: a house number and street (:func:`bot.nlu.addresses.find_addresses`);
- ``[number]``: any other run of five or more digits (account, case or reference numbers)
  and dates written with digits (a date of birth identifies);
- ``[name]``: a name the resident gives ("my name is Jo Bloggs", "I'm Priya", "this is Sam",
  "Mrs Patel", and a sign-off such as "Thanks, Dave" or "Regards, Ann Lee").

Rules are deliberately broad: redacting a harmless word costs a report little; keeping a name
is a breach. It is not a guarantee (a name mentioned in passing can survive), so reports stay
behind the supervisor role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.nlu.addresses import find_addresses
from bot.nlu.postcodes import find_postcodes

__all__ = ["PLACEHOLDERS", "redact"]

PLACEHOLDERS = ("[email]", "[phone]", "[postcode]", "[address]", "[number]", "[name]")

_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# +44 or 0, then 9-10 more digits, allowing spaces, dots, hyphens and brackets between them
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\s?44\s?(?:\(0\)\s?)?|\(?0)\d(?:[\s.()-]{0,2}\d){8,9}(?!\d)",
)
_DIGITS = re.compile(r"\d(?:[\s-]?\d){4,}")
_DATE = re.compile(r"(?<!\d)\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?!\d)")
_WORD = r"[^\W\d_](?:[^\W\d_]|['\u2019-])*"
_NAME = rf"{_WORD}(?:\s+{_WORD}){{0,2}}"
# (pattern, whether the name may be written in lower case)
_NAME_PATTERNS = (
    # said outright, so trusted in any case: "my name is jo bloggs", "name: Jo", "call me Al"
    (re.compile(rf"\b(?:name\s*(?:is|:|-)|call\s+me)\s*(?P<name>{_NAME})", re.I), True),
    # "I'm Priya", "I am Sam", "this is Dave": only capitalised ("i'm worried" is no name)
    (re.compile(rf"\b(?:i\s*['\u2019]?\s*a?m|this\s+is)\s+(?P<name>{_NAME})", re.I), False),
    # titles: "Mrs Patel", "Dr. A Jones"
    (re.compile(rf"\b(?i:mr|mrs|ms|miss|mx|dr|prof)\.?\s+(?P<name>{_NAME})"), False),
    # sign-offs at the end: "Thanks, Dave", "Regards Ann Lee", "- Jo"
    (
        re.compile(
            r"(?:\b(?:thanks|thank\s+you|cheers|regards|best\s+wishes|many\s+thanks|from|love"
            r"|yours(?:\s+(?:sincerely|faithfully|truly))?)[,.!]?|(?:^|\s)[-\u2013\u2014~])\s*"
            rf"(?P<name>{_NAME})\W*$",
            re.I,
        ),
        False,
    ),
)
# words that end a name ("my name is jo and ...") or describe rather than name ("I'm Worried")
_NOT_NAMES = frozenset(
    [
        "a",
        "an",
        "and",
        "or",
        "but",
        "the",
        "not",
        "so",
        "very",
        "really",
        "just",
        "still",
        "also",
        "here",
        "there",
        "please",
        "sorry",
        "worried",
        "afraid",
        "unable",
        "trying",
        "looking",
        "writing",
        "calling",
        "asking",
        "disabled",
        "elderly",
        "pregnant",
        "homeless",
        "new",
        "moving",
        "going",
        "getting",
        "having",
        "waiting",
        "living",
        "renting",
        "disappointed",
        "fed",
        "upset",
        "confused",
        "concerned",
        "interested",
        "i",
        "im",
        "my",
        "me",
        "we",
        "our",
        "from",
        "at",
        "in",
        "on",
        "of",
        "to",
        "is",
        "was",
        "for",
        "with",
        "about",
        "who",
        "can",
        "could",
        "would",
        "will",
        "live",
        "lives",
    ]
)


def _spans(text: str) -> Iterable[tuple[int, int, str]]:
    for match in _EMAIL.finditer(text):
        yield match.start(), match.end(), "[email]"
    for match in _PHONE.finditer(text):
        yield match.start(), match.end(), "[phone]"
    for postcode in find_postcodes(text):
        yield postcode.start, postcode.end, "[postcode]"
    for address in find_addresses(text):
        yield address.start, address.end, "[address]"
    for match in _DIGITS.finditer(text):
        yield match.start(), match.end(), "[number]"
    for match in _DATE.finditer(text):
        yield match.start(), match.end(), "[number]"
    for pattern, any_case in _NAME_PATTERNS:
        for match in pattern.finditer(text):
            kept = []
            for word in match.group("name").split():
                initial = len(word) == 1 and word.isupper()  # "Dr A Jones"
                if not initial and (
                    word.lower() in _NOT_NAMES or not (any_case or word[0].isupper())
                ):
                    break
                kept.append(word)
            if kept:
                start = match.start("name")
                yield start, text.index(kept[-1], start) + len(kept[-1]), "[name]"


def redact(text: str) -> str:
    """Return ``text`` with personal data replaced by placeholders (see the module doc).

    Earlier kinds win where spans overlap (an e-mail address is not also a name).
    """
    taken: list[tuple[int, int, str]] = []
    for start, end, label in _spans(text):
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, label))
    out, position = [], 0
    for start, end, label in sorted(taken):
        out.append(text[position:start])
        out.append(label)
        position = end
    out.append(text[position:])
    return "".join(out)
