"""Welsh with the real assistant: detection, Welsh answers, and a Welsh speaker when there are none.

The held-out Welsh messages below were written for this test and are not in the training data
(data/nlu/welsh.yml); they measure how well the English sentence model plus a few Welsh
examples per intent classify Welsh. A native speaker should review both sets.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.handoff.queue import HandoffQueue
from bot.knowledge.content import load_entries
from bot.profile import current
from bot.redis_conn import connect_async
from bot.responses import RESPONSES_DIR
from bot.testing.assistant import Assistant, Conversation

pytestmark = pytest.mark.e2e

HELD_OUT = [
    ("Pa ddiwrnod mae'r bin du yn cael ei gasglu?", "bin_collection_day"),
    ("pryd mae casgliad biniau yn fy stryd i", "bin_collection_day"),
    ("Pryd fydd y bin ailgylchu'n cael ei wagio wythnos yma?", "bin_collection_day"),
    ("Dydy'r bin ddim wedi cael ei wagio heddiw", "missed_bin"),
    ("mae'r dynion bin wedi anghofio fy stryd", "missed_bin"),
    ("Sut alla i dalu fy mil treth cyngor?", "council_tax_pay"),
    ("dw i isio talu treth y cyngor ar lein", "council_tax_pay"),
    ("Dw i'n byw ar fy mhen fy hun, ydw i'n cael gostyngiad?", "council_tax_discount"),
    ("Rydw i'n symud tŷ wythnos nesaf", "council_tax_move"),
    ("Mae fy min olwynion wedi cracio, ga i un arall?", "bin_request"),
    ("Sut mae cael gwared ar hen wely?", "bulky_waste"),
    ("Ydy'r ganolfan ailgylchu ar agor heddiw?", "recycling_centre"),
    ("Mae twll anferth yn y ffordd ger yr ysgol", "report_pothole"),
    ("Mae rhywun wedi dympio hen oergell yn y lôn", "report_fly_tipping"),
    ("Dw i eisiau siarad â rhywun yn Gymraeg os gwelwch yn dda", "human_agent"),
    ("Dw i am wneud cwyn am y gwasanaeth biniau", "complaint"),
    ("Mae fy ngŵr yn fy mygwth i a dw i'n ofnus", "safeguarding"),
    ("Bore da, oes rhywun yna?", "greet"),
    ("Diolch yn fawr am yr help", "thanks"),
    ("Hwyl fawr am y tro", "goodbye"),
]
WELSH_SPEAKER = "at aelod o'n tîm sy'n siarad Cymraeg"


def _parse(assistant: Assistant, text: str) -> dict[str, Any]:
    parsed: dict[str, Any] = assistant.post(
        f"/model/parse?token={assistant.auth_token}", {"text": text}
    )
    return parsed


def test_held_out_welsh_messages_are_classified(assistant: Assistant) -> None:
    results = [(text, want, _parse(assistant, text)) for text, want in HELD_OUT]
    for text, want, parsed in results:
        got = parsed["intent"]["name"]
        print(f"{want:22} {got:22} {parsed['intent']['confidence']:.2f}  {text}")
        assert parsed["language"] == "cy", text
    correct = sum(parsed["intent"]["name"] == want for _, want, parsed in results)
    unsure = sum(parsed["intent"]["name"] == "nlu_fallback" for _, _, parsed in results)
    # Never a wrong intent: the calibrated threshold (docs/nlu.md) hands an unsure Welsh message
    # to a Welsh-speaking person rather than guess. 19 of 20 right at the old fixed threshold
    # 0.3 (with 1 wrong); at the shipped 95% answer precision (calibrated 0.54) 19 right, 1 to a
    # person, none wrong; at 98% (0.61-0.63) 15 right (docs/nlu.md, "Choosing answer_precision").
    assert correct + unsure == len(HELD_OUT), "a Welsh message was given a wrong intent"
    assert correct >= 17, f"{correct} of {len(HELD_OUT)}"
    # never the one that matters most
    [safeguarding] = [p for _, want, p in results if want == "safeguarding"]
    assert safeguarding["intent"]["name"] == "safeguarding"


def test_a_welsh_conversation_is_answered_in_welsh(chat: Conversation) -> None:
    assert chat.texts("Shwmae").startswith("Helo, dyma gynorthwyydd")
    welsh = {
        text
        for entry in load_entries(RESPONSES_DIR / "knowledge")
        if entry.topic == "council_tax_pay"
        for text in entry.translations.get("cy", {}).values()
    }
    assert chat.texts("Sut ydw i'n talu treth y cyngor?") in welsh
    # a short or unclear message keeps the conversation in Welsh
    assert chat.texts("diolch").startswith("Croeso.")
    assert chat.texts("ok").startswith(("Croeso.", "Mae'n ddrwg gen i"))
    slots = chat.tracker()["slots"]
    assert slots["language"] == "cy"


def test_english_stays_english(chat: Conversation) -> None:
    assert chat.texts("hiya").startswith("Hello, this is")
    assert chat.tracker()["slots"]["language"] is None  # too short to tell: English replies
    answer = chat.texts("How do I pay my council tax?")
    assert "Council Tax" in answer and "Treth" not in answer
    assert chat.tracker()["slots"]["language"] == "en"


async def test_without_a_welsh_answer_a_welsh_speaker_replies(
    assistant: Assistant, redis_url: str
) -> None:
    chat = assistant.conversation()
    reply = chat.texts("Sut mae cael trwydded barcio i ymwelwyr?")
    assert WELSH_SPEAKER in reply
    assert reply.startswith("Diolch, rwyf wedi anfon hyn")
    client = await connect_async(redis_url)
    try:
        queue = HandoffQueue(client, assistant.namespace)
        case_id = await queue.case_for(chat.sender)
        assert case_id is not None
        record = await queue.get(case_id)
        assert record is not None
        assert record.language == "cy"
        assert record.team in current().routing.welsh_speaking
    finally:
        await client.close()
