import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.safeguarding import SafeguardingGuard, risk_phrase


@pytest.mark.parametrize(
    "text",
    [
        "my partner hits me when he's drunk",
        "i dont want to live anymore",
        "I'm going to kill myself",
        "my neighbours kids are left alone all the time",
        "got nowhere to sleep tonight",
        "i am sleeping rough by the station",
        "worried about domestic abuse next door",
        "not safe at home",
    ],
)
def test_risk_phrases_are_found(text: str) -> None:
    assert risk_phrase(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "when is my bin day",
        "how do I pay council tax",
        "the street light is out",
        "kill the noise from the bins lol no",
    ],
)
def test_routine_messages_pass(text: str) -> None:
    assert risk_phrase(text) is None


def test_guard_overrides_intent_and_keeps_ranking() -> None:
    guard = SafeguardingGuard()
    message = Message(
        data={
            "text": "he hits me and I'm scared",
            "intent": {"name": "complaint", "confidence": 0.7},
            "intent_ranking": [{"name": "complaint", "confidence": 0.7}],
        }
    )
    guard.process([message])
    assert message.get("intent") == {"name": "safeguarding", "confidence": 1.0}
    assert [r["name"] for r in message.get("intent_ranking")] == ["safeguarding", "complaint"]


def test_guard_leaves_routine_messages() -> None:
    message = Message(
        data={"text": "bin day?", "intent": {"name": "bin_collection_day", "confidence": 0.9}}
    )
    SafeguardingGuard().process([message])
    assert message.get("intent")["name"] == "bin_collection_day"


# Welsh risk phrases (docs/welsh.md). Written for the demo, as its other Welsh, and to be
# reviewed by a native speaker: the examples use the mutations a resident would write
# (soft: "ladd", nasal: "fy nharo", aspirate: "ei cham-drin"), and `data/nlu/welsh.yml`'s
# safeguarding examples.
@pytest.mark.parametrize(
    "text",
    [
        # self-harm and suicide
        "dw i eisiau lladd fy hun",
        "Dw i am ladd fy hun heno",
        "mae fy mab yn sôn am ladd ei hunan",
        "dw i wedi bod yn meddwl am hunanladdiad",
        "dw i'n hunan-niweidio eto",
        "Dw i ddim eisiau byw rhagor",
        "dwi isio marw",
        "mae hi wedi cymryd gorddos",
        # hitting, hurting, threats
        "mae e'n fy nharo i",
        "Mae fy mhartner yn fy nharo i",
        "mae e\u2019n fy nghuro i pan mae wedi meddwi",
        "Mae rhywun yn fy mrifo i",
        "mae o'n taro'r plant",
        "mae e'n ei tharo hi bob nos",
        "Dw i'n cael fy mygwth",
        # abuse, neglect, domestic abuse
        "Mae plentyn yn cael ei gam-drin",
        "Dw i'n meddwl bod fy mam yn cael ei cham-drin",
        "cam-drin domestig",
        "trais yn y cartref",
        "Mae fy nghymydog oedrannus yn cael ei esgeuluso",
        # a child or adult at risk, danger
        "mae plentyn mewn perygl",
        "Mae'r plant drws nesa wedi'u gadael ar eu pennau eu hunain",
        "dw i mewn perygl",
        "dw i ddim yn teimlo'n ddiogel",
        "Dw i ddim yn teimlo\u2019n saff gartref",
        "Mae gen i ofn fy mhartner",
        "Mae arna i ofn mynd adref",
        # nowhere to sleep
        "does gen i unman i gysgu heno",
        "dw i'n cysgu ar y stryd",
        "Dw i'n ddigartref heno",
    ],
)
def test_welsh_risk_phrases_are_found(text: str) -> None:
    assert risk_phrase(text) is not None


# Ordinary Welsh council questions, several with the same words in a harmless sense
# ("ei daro" of a lamp post, "mae arna i ofn" as "I'm afraid that", "curo ar y drws").
@pytest.mark.parametrize(
    "text",
    [
        "Pryd mae fy min yn cael ei gasglu?",
        "Sut ydw i'n talu treth y cyngor?",
        "Dw i eisiau talu fy nhreth cyngor",
        "Dw i am dalu fy nhreth cyngor ar-lein",
        "Mae'r dynion bin wedi anghofio fy stryd",
        "Mae twll mawr yn y ffordd ger yr ysgol",
        "Mae polyn lamp wedi cael ei daro gan gar",
        "Mae'r bin wedi cael ei daro drosodd gan y gwynt",
        "Mae arna i ofn bod y bin gwyrdd heb ei gasglu",
        "Roedd y dyn yn curo ar y drws am y casgliad swmpus",
        "Ble mae'r ganolfan ailgylchu?",
        "Mae tipio anghyfreithlon ar y lôn gefn",
        "Dw i eisiau archebu casgliad gwastraff swmpus",
        "Diolch yn fawr, hwyl fawr",
        "Dyw'r palmant ddim yn wastad",
    ],
)
def test_routine_welsh_messages_pass(text: str) -> None:
    assert risk_phrase(text) is None


def test_guard_overrides_intent_for_welsh() -> None:
    message = Message(
        data={"text": "Mae e'n fy nharo i", "intent": {"name": "complaint", "confidence": 0.6}}
    )
    SafeguardingGuard().process([message])
    assert message.get("intent") == {"name": "safeguarding", "confidence": 1.0}


def test_welsh_afraid_that_is_not_fear_of_someone() -> None:
    assert risk_phrase("Mae arna i ofn fy mod i wedi colli'r dyddiad") is None
    assert risk_phrase("mae gen i ofn fy llystad") is not None
