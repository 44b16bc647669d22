"""Editors' response texts: the checks, the versions and approval, and what residents are sent."""

from __future__ import annotations

import pytest
import redis.asyncio
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.errors import EntryInvalidError, PublishBlockedError
from bot.nlu.language import LANGUAGE
from bot.profile import current
from bot.response_edits import (
    LANGUAGE_SLOT,
    RESPONSES_DIR,
    ResponseStore,
    ResponseText,
    Variation,
    response_problems,
    shipped_variations,
    variation_ids,
)
from bot.responses import CouncilResponses, load_responses, with_texts
from bot.testing.console import FakeClock

SHIPPED = shipped_variations()
DOMAIN = Domain.load(str(RESPONSES_DIR))  # the trained domain's responses and slots, once
PROFILE_VALUES = tuple(current().response_variables())
GREET = "utter_greet"
GREET_CY = "utter_greet.language-cy"
REPORTED = "utter_bin_missed_reported"


@pytest.fixture
def store(async_redis: redis.asyncio.Redis, namespace: str) -> ResponseStore:
    return ResponseStore(async_redis, namespace, profile_values=PROFILE_VALUES)


def _edit(vid: str, text: str) -> ResponseText:
    return ResponseText(vid, text, SHIPPED[vid].group)


def _problems(vid: str, text: str) -> list[str]:
    return response_problems(_edit(vid, text), SHIPPED, PROFILE_VALUES)


def test_every_shipped_text_variation_is_listed_with_its_language_and_conditions() -> None:
    assert LANGUAGE_SLOT == LANGUAGE
    welsh = SHIPPED["utter_handoff_holding.language-cy.opens-today"]
    assert welsh.response == "utter_handoff_holding" and welsh.group == "handoff"
    assert welsh.language == "cy" and welsh.conditions == (("opens", "today"),)
    assert SHIPPED[GREET].language == "en" and SHIPPED["utter_ask_bin_type"].buttons == 4
    # the ids are the ones the Rasa server's generator computes from the trained domain
    served = {
        vid
        for name, variations in DOMAIN.responses.items()
        for vid, variation in zip(variation_ids(name, variations), variations, strict=True)
        if "text" in variation
    }
    assert served == set(SHIPPED)


def test_variations_with_the_same_conditions_get_numbered_ids() -> None:
    twins = [{"text": "a", "channel": "sms"}, {"text": "b", "channel": "sms"}, {"text": "c"}]
    assert variation_ids("utter_x", twins) == [
        "utter_x.channel-sms",
        "utter_x.channel-sms.2",
        "utter_x",
    ]


def test_the_shipped_texts_pass_their_own_checks() -> None:
    for vid, variation in SHIPPED.items():
        assert _problems(vid, variation.text) == [], vid


def test_variables_must_be_known_and_the_shipped_ones_kept() -> None:
    assert _problems(GREET, "Hi from {council_name}.") == []
    # a value another variation of the same response is given is fine too
    assert _problems("utter_handoff_holding.opens-today", "After {opens_at} on {opens_day}.") == []
    [unknown] = _problems(GREET, "Hi from {council_nmae}, {council_name}.")
    assert "{council_nmae} is not a value this response has" in unknown
    assert "{council_name}" in unknown  # says which ones it can use
    [dropped] = _problems(REPORTED, SHIPPED[REPORTED].text.replace("{reference}", "soon"))
    assert dropped.startswith("text: {reference} is missing")
    safeguarding = "utter_handoff_safeguarding.alert-in_hours"
    shortened = SHIPPED[safeguarding].text.replace("{safeguarding_contacts} ", "")
    assert any(
        "{safeguarding_contacts} is missing" in p for p in _problems(safeguarding, shortened)
    )
    [brace] = _problems(GREET, "Hi from {council_name}}.")
    assert "without its partner" in brace
    assert "not a value name" in _problems(GREET, "Hi {council name} {council_name}")[0]


def test_the_knowledge_bases_plain_text_rules_apply() -> None:
    assert "remove the HTML <b>" in _problems(GREET, "<b>Hi</b> {council_name}")[0]
    assert (
        "must start with https://" in _problems(GREET, "Hi {council_name} http://x.example.org")[0]
    )
    assert "javascript:" in _problems(GREET, "Hi {council_name} javascript:alert(1)")[0]
    assert _problems(GREET, "Hi {council_name}, tel:01632960000 or mailto:help@example.org") == []
    empty = _problems(GREET, "   ")
    assert empty[0] == "text: the text must not be empty"
    assert empty[1].startswith("text: {council_name} is missing")
    assert response_problems(ResponseText("utter_nope", "x", "core"), SHIPPED, ()) == [
        "id: there is no response variation utter_nope"
    ]


def test_an_sms_variation_keeps_to_the_sms_length() -> None:
    shipped = {
        "utter_x.channel-sms": Variation(
            "utter_x.channel-sms", "utter_x", "core", "Hi", "en", "sms"
        )
    }
    edit = ResponseText("utter_x.channel-sms", "x" * 321, "core")
    assert response_problems(edit, shipped, ()) == ["text: 321 characters, at most 320"]


async def test_a_refused_edit_stores_nothing(store: ResponseStore) -> None:
    with pytest.raises(EntryInvalidError) as refused:
        await store.save_draft(_edit(GREET, "Hello <script>x</script>"), "ed", "try")
    assert any("HTML" in p for p in refused.value.problems)
    assert await store.heads() == []


async def test_save_publish_rollback_and_restore_the_shipped_text(store: ResponseStore) -> None:
    rev = await store.revision()
    await store.save_draft(_edit(GREET, "Hi, {council_name} here."), "ed", "friendlier")
    assert await store.published_texts() == {}  # a draft is not served
    assert await store.revision() == rev
    await store.publish(GREET, "ed", "friendlier")
    assert await store.published_texts() == {GREET: "Hi, {council_name} here."}
    assert await store.revision() != rev
    await store.save_draft(_edit(GREET, "Hiya from {council_name}."), "ed", "v3")
    await store.publish(GREET, "ed", "v3")
    await store.rollback(GREET, 2, "ed2", "too casual")
    assert await store.published_texts() == {GREET: "Hi, {council_name} here."}
    history = await store.versions(GREET)
    assert [v.action for v in history] == ["save", "publish", "save", "publish", "rollback"]
    assert history[-1].author == "ed2" and history[2].changes == ("status", "text")
    await store.archive(GREET, "ed", "back to the shipped text")
    assert await store.published_texts() == {}


async def test_a_group_that_needs_a_second_person(store: ResponseStore) -> None:
    await store.set_approval_required("handoff", True)
    vid = "utter_handoff_rephrase"
    await store.save_draft(_edit(vid, "Sorry, please tell me in words."), "ed", "shorter")
    with pytest.raises(PublishBlockedError) as blocked:
        await store.publish(vid, "ed", "shorter")
    assert blocked.value.broken == ["group handoff needs a second person: ask for approval instead"]
    await store.request_approval(vid, "ed")
    with pytest.raises(PublishBlockedError):
        await store.approve(vid, 1, "ed", "mine")
    version = await store.approve(vid, 1, "lead", "fine")
    assert version.approved_by == "lead" and version.author == "ed"
    assert (await store.published_texts())[vid] == "Sorry, please tell me in words."
    # core responses do not need one
    await store.save_draft(_edit(GREET, "Hi from {council_name}."), "ed", "x")
    await store.publish(GREET, "ed", "x")


def _tracker(channel: str, language: str | None = None) -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(
        "resident",
        [UserUttered("hi", input_channel=channel)],
        slots=DOMAIN.slots,
    )
    if language:
        tracker.update(SlotSet("language", language))
    return tracker


async def test_the_generator_serves_published_texts_and_the_shipped_ones_again(
    store: ResponseStore, async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    clock = FakeClock()
    generator = CouncilResponses(
        responses=load_responses(),
        store=ResponseStore(async_redis, namespace, shipped={}),
        clock=clock,
    )
    name = current().name
    english, welsh = _tracker("telegram"), _tracker("telegram", "cy")
    first = await generator.generate(GREET, english, "collector")
    assert first is not None and first["text"].startswith(f"Hello, this is {name}'s assistant")
    await store.save_draft(_edit(GREET, "Good day from {council_name}."), "ed", "x")
    await store.save_draft(_edit(GREET_CY, "Dydd da gan {council_name}."), "ed", "x")
    await store.publish(GREET, "ed", "x")
    await store.publish(GREET_CY, "ed", "x")
    # checked at most every refresh_seconds (1 s): a running server sees it within a second
    cached = await generator.generate(GREET, english, "collector")
    assert cached is not None and cached["text"].startswith("Hello, this is")
    clock.advance(1.0)
    served = await generator.generate(GREET, english, "collector")
    assert served is not None and served["text"] == f"Good day from {name}."
    cymraeg = await generator.generate(GREET_CY.split(".")[0], welsh, "collector")
    assert cymraeg is not None and cymraeg["text"] == f"Dydd da gan {name}."
    # Rasa's agent sets the domain's responses again when it loads a model: the edit stays
    generator.responses = load_responses()
    assert generator.render(GREET, "rest")["text"] == f"Good day from {name}."  # type: ignore[index]
    await store.archive(GREET, "ed", "shipped text back")
    clock.advance(1.0)
    back = await generator.generate(GREET, english, "collector")
    assert back is not None and back["text"].startswith(f"Hello, this is {name}'s assistant")


async def test_a_text_written_to_redis_by_other_means_is_still_sent_as_plain_text(
    async_redis: redis.asyncio.Redis, namespace: str
) -> None:
    unchecked = ResponseStore(async_redis, namespace, shipped={}, profile_values=())
    unchecked._problems = lambda item: []  # as if written before the checks existed
    await unchecked.save_draft(
        ResponseText(GREET, "<b>Hi</b> {council_name} javascript:x", "core"), "ed", "x"
    )
    await unchecked.publish(GREET, "ed", "x")
    generator = CouncilResponses(responses=load_responses(), store=unchecked, refresh_seconds=0)
    await generator.refresh()
    assert generator.render(GREET, "rest")["text"] == f"Hi {current().name} x"  # type: ignore[index]


def test_a_published_text_missing_a_value_the_shipped_one_now_has_is_not_sent() -> None:
    shipped = {"utter_done": [{"text": "Done, your reference is {reference}."}]}
    # published when the shipped text had no reference; a release added it since
    assert with_texts(shipped, {"utter_done": "Done."}) == shipped
    edited = with_texts(shipped, {"utter_done": "All done: {reference}."})
    assert edited["utter_done"][0]["text"] == "All done: {reference}."
