"""Which language a resident wrote in: clear Welsh, clear English, or unclear (keep the old one).

Welsh sentences are everyday council questions written for these tests; the Welsh word list
of short replies ("diolch", "ie", "na") is from Gwefan Termau / common usage.
"""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.language import LanguageIdentifier, LanguageTagger, identifier, language_of


@pytest.mark.parametrize(
    "text",
    [
        "Pryd mae'r biniau'n cael eu casglu?",
        "Sut ydw i'n talu treth y cyngor?",
        "Helo, oes rhywun yn siarad Cymraeg?",
        "Dw i eisiau siarad efo rhywun",
        "Mae twll mawr yn y ffordd tu allan i'r tŷ",
        "Diolch yn fawr iawn",
        "diolch",  # very short, but unmistakable
    ],
)
def test_welsh_is_welsh(text: str) -> None:
    assert identifier().identify(text) == "cy"


@pytest.mark.parametrize(
    "text",
    [
        "When is my bin day?",
        "How do I pay my council tax?",
        "there's a pothole on the high street",
        "thanks",
        "yes please",
    ],
)
def test_english_is_english(text: str) -> None:
    assert identifier().identify(text) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "pryd ma bin day fi",  # Welsh with an English word and no mutation
        "Dwi isio talu trath cyngor",  # typo: "trath" for "treth"
        "mae fy min heb ei gasglu ddoe",  # "min" for "bin", no accents
        "Pryd ma'r bins yn cal eu casglu",  # colloquial spelling
    ],
)
def test_welsh_with_typos_and_english_words_is_welsh(text: str) -> None:
    assert identifier().identify(text) == "cy"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "👍",
        "🙏🙏🙏",
        "AV1 2BX",  # a postcode is in no language
        "ok",
        "ie",  # "yes" in Welsh, but also plain letters: too short to tell
        "helo",
        "my bin wasnt collected ddoe",  # half and half
        "\x00\u200b\ufeff",
    ],
)
def test_unclear_messages_say_nothing(text: str) -> None:
    assert identifier().identify(text) is None


def test_a_welsh_street_name_reads_as_welsh() -> None:
    # which is why the slot ignores the language of answers to a form's questions
    # (responses/language.yml: conditions active_loop null); see tests/test_welsh_slot.py
    assert identifier().identify("12 Heol y Bont") == "cy"


def test_long_mixed_message_goes_with_the_language_it_is_mostly_in() -> None:
    mixed = "Helo, dw i angen help gyda'r council tax, dw i wedi symud tŷ mis diwethaf"
    assert identifier().identify(mixed) == "cy"


def test_stricter_settings_need_longer_messages() -> None:
    strict = LanguageIdentifier(short_words=5, short_confidence=1.01)  # short: never sure
    assert strict.identify("Diolch yn fawr iawn") is None
    assert strict.identify("Diolch yn fawr iawn am eich help heddiw") == "cy"


def test_the_detector_is_built_once_per_process() -> None:
    assert identifier() is identifier()
    tagger = LanguageTagger.create({}, None, None, None)
    assert tagger.identifier is identifier()
    tuned = LanguageTagger.create({"short_words": 5}, None, None, None)
    assert tuned.identifier is not identifier()
    assert tuned.identifier.short_words == 5


def test_component_writes_the_language_and_an_entity_when_clear() -> None:
    tagger = LanguageTagger.create({}, None, None, None)
    earlier = {"entity": "postcode", "value": "GF1 4AB", "start": 30, "end": 37}
    welsh = Message(
        data={"text": "Pryd mae'r bin yn cael ei gasglu GF1 4AB", "entities": [earlier]}
    )
    unclear = Message(data={"text": "GF1 4AB"})
    empty = Message(data={})
    tagger.process([welsh, unclear, empty])

    assert welsh.get("language") == "cy"
    assert welsh.get("entities")[0] == earlier
    tag = welsh.get("entities")[1]
    assert (tag["entity"], tag["value"], tag["extractor"]) == ("language", "cy", "LanguageTagger")
    assert "language" in welsh.as_dict(only_output_properties=True)

    for message in (unclear, empty):
        assert message.get("language") is None
        assert not [e for e in message.get("entities") or [] if e["entity"] == "language"]


@pytest.mark.parametrize(
    ("value", "language"), [("cy", "cy"), ("en", "en"), (None, "en"), ("fr", "en"), (3, "en")]
)
def test_a_conversation_without_a_known_language_is_in_english(
    value: object, language: str
) -> None:
    assert language_of(value) == language
