"""The conversation remembers its language: Rasa's own slot filling with the project's domain.

Each message goes through the real :class:`~bot.nlu.language.LanguageTagger`, then Rasa's
``action_extract_slots`` with the domain under ``responses/`` fills the slot ``language``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.actions.action import ActionExtractSlots
from rasa.core.channels import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.language import LanguageTagger

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.from_directory(str(ROOT / "responses"))


async def _say(tracker: DialogueStateTracker, domain: Domain, text: str) -> str | None:
    """The resident sends ``text``; return the slot ``language`` afterwards."""
    message = Message(data={"text": text})
    LanguageTagger.create({}, None, None, None).process([message])  # type: ignore[arg-type]
    parse = message.as_dict(only_output_properties=True)
    tracker.update(
        UserUttered(text, {"name": "inform", "confidence": 0.9}, parse.get("entities", []), parse)
    )
    events = await ActionExtractSlots(None).run(
        CollectingOutputChannel(), TemplatedNaturalLanguageGenerator({}), tracker, domain
    )
    for event in events:
        tracker.update(event)
    value = tracker.get_slot("language")
    return None if value is None else str(value)


async def test_the_language_is_remembered_until_a_message_is_clearly_another(
    domain: Domain,
) -> None:
    tracker = DialogueStateTracker("resident", domain.slots)
    assert await _say(tracker, domain, "👋") is None  # nothing known yet: English replies
    assert await _say(tracker, domain, "Helo, pryd mae'r biniau'n cael eu casglu?") == "cy"
    for unclear in ("ok", "AV1 2BX", "👍", "ie", "my bin wasnt collected ddoe", ""):
        assert await _say(tracker, domain, unclear) == "cy"
    assert await _say(tracker, domain, "diolch") == "cy"
    assert await _say(tracker, domain, "Sorry, can we speak English please?") == "en"
    assert await _say(tracker, domain, "ok") == "en"


async def test_answers_to_a_forms_questions_keep_the_language(domain: Domain) -> None:
    tracker = DialogueStateTracker("resident", domain.slots)
    assert await _say(tracker, domain, "When is my bin day?") == "en"
    tracker.update(ActiveLoop("bin_day_form"))
    tracker.update(SlotSet("requested_slot", "bin_address_choice"))
    # a Welsh street name is an address, not a Welsh conversation
    assert await _say(tracker, domain, "12 Heol y Bont, Llanfair") == "en"
    tracker.update(ActiveLoop(None))
    assert await _say(tracker, domain, "Diolch yn fawr iawn am eich help") == "cy"


@pytest.mark.parametrize(
    "text",
    [
        "Helo, dw i isio talu trath y cyngor ond mae'r website yn broken",
        "pryd ma bin day fi?? 🙏",
        "Mae fy min heb ei gasglu!!! Ffoniwch fi ar 07700 900123",
        "a" * 5000,
        "ŵŷâêîôû " * 200,
        "Dydd Llun\n\n\tbin\x00gwyrdd",
        "\u202eYmosodiad\u202c",
    ],
)
async def test_typos_and_mixed_messages_never_crash(domain: Domain, text: str) -> None:
    tracker = DialogueStateTracker("resident", domain.slots)
    assert await _say(tracker, domain, text) in {None, "cy", "en"}
