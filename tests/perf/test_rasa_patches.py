"""The Rasa server's speed-ups keep Rasa's behaviour (bot.rasa_patches; docs/performance.md)."""

from __future__ import annotations

import json
from inspect import isabstract
from typing import Any

import jsonschema
import numpy as np
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.constants import ACTION_SESSION_START_NAME, SESSION_START_METADATA_SLOT
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_patches
from bot.knowledge.embedding import EMBEDDING, embedding_output
from bot.state import RedisUrlTrackerStore

DOMAIN = Domain.from_dict(
    {
        "intents": ["ask_bin_day", "human_agent"],
        "slots": {"bin_postcode": {"type": "text", "mappings": [{"type": "custom"}]}},
        "actions": ["action_answer", "action_handoff"],
    }
)
# a well-formed answer of rasa-sdk's webhook, and three it would refuse (Rasa's schema)
GOOD = {
    "events": [{"event": "slot", "name": "kb_entry", "value": "report-pothole"}],
    "responses": [{"text": "Report it at https://example.org/potholes"}],
}
BAD = [
    {"events": "not a list"},
    {"events": [{"event": "no_such_event"}]},
    {"responses": [{"text": "hi"}, "not an object"]},
]


def _original_message(result: dict[str, Any]) -> str:
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
    except jsonschema.ValidationError as error:
        return str(error.message)
    return ""


@pytest.fixture(autouse=True)
def patched() -> None:
    rasa_patches.install()


def _action(name: str) -> RemoteAction:
    return RemoteAction(name, EndpointConfig("http://127.0.0.1:1/webhook"))


def _conversation() -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(
        "whatsapp:+441234567890:+447700900123",
        [
            ActionExecuted("action_listen"),
            UserUttered("when is my bin day", {"name": "ask_bin_day", "confidence": 0.9}),
            BotUttered("What is your postcode?"),
            ActionExecuted("action_listen"),
            UserUttered(
                "AV5 1QA", {"name": "ask_bin_day", "confidence": 0.8}, input_channel="whatsapp"
            ),
            SlotSet("bin_postcode", "AV5 1QA"),
        ],
        slots=DOMAIN.slots,
    )
    return tracker


def test_valid_action_answers_pass_the_check() -> None:
    assert _action("action_answer")._validate_action_result(GOOD) is True


@pytest.mark.parametrize("answer", BAD)
def test_invalid_action_answers_are_refused_with_rasas_error(answer: dict[str, Any]) -> None:
    expected = _original_message(answer)
    assert expected  # Rasa's own check refuses it too
    with pytest.raises(jsonschema.ValidationError) as refused:
        _action("action_answer")._validate_action_result(answer)
    assert refused.value.message.startswith(expected + ". Failed to validate Action server")


def test_an_action_of_the_current_turn_gets_its_events_and_the_whole_state() -> None:
    tracker = _conversation()
    sent = _action("action_answer")._action_call_format(tracker, DOMAIN)
    full = tracker.current_state(EventVerbosity.ALL)
    assert [e["event"] for e in sent["tracker"]["events"]] == ["user", "slot"]
    assert sent["tracker"]["events"][0]["text"] == "AV5 1QA"
    assert {k: v for k, v in sent["tracker"].items() if k != "events"} == {
        k: v for k, v in full.items() if k != "events"
    }
    assert sent["tracker"]["slots"]["bin_postcode"] == "AV5 1QA"
    assert sent["tracker"]["latest_input_channel"] == "whatsapp"
    assert sent["next_action"] == "action_answer" and "domain" in sent


def test_the_handoff_still_gets_the_whole_conversation_for_its_transcript() -> None:
    tracker = _conversation()
    sent = _action("action_handoff")._action_call_format(tracker, DOMAIN)
    assert sent["tracker"] == tracker.current_state(EventVerbosity.ALL)
    texts = [e.get("text") for e in sent["tracker"]["events"] if e["event"] in ("user", "bot")]
    assert texts == ["when is my bin day", "What is your postcode?", "AV5 1QA"]


def test_a_tracker_without_user_messages_sends_every_event() -> None:
    tracker = DialogueStateTracker.from_events("api", [ActionExecuted("action_listen")])
    assert len(rasa_patches.current_turn_events(tracker)) == 1


def test_install_is_idempotent() -> None:
    before = RemoteAction._action_call_format
    rasa_patches.install()
    assert RemoteAction._action_call_format is before
    assert rasa_patches.installed()


class Published(EventBroker):
    """Collects what the tracker store publishes."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.bodies.append(event)


def _turn(tracker: DialogueStateTracker, text: str) -> None:
    intent = {"name": "ask_bin_day", "confidence": 0.9}
    # what our featurizer adds to the parse data (for the turn's actions only)
    carried = embedding_output(np.ones(4, np.float32), "0" * 64)
    parse_data: Any = {"text": text, "intent": intent, "entities": [], EMBEDDING: carried}
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(UserUttered(text, intent, [], parse_data))
    tracker.update(BotUttered(f"you said {text}"))


async def test_saved_trackers_and_published_events_are_rasas(
    redis_url: str, namespace: str
) -> None:
    broker = Published()
    prefix = "".join(c for c in namespace if c.isalnum())  # Rasa refuses other prefixes
    store = RedisUrlTrackerStore(DOMAIN, host=redis_url, key_prefix=prefix)
    store.event_broker = broker
    tracker = DialogueStateTracker.from_events(
        "resident", [ActionExecuted(ACTION_SESSION_START_NAME)], slots=DOMAIN.slots
    )
    for turn in range(3):
        _turn(tracker, f"message {turn}")
        await store.save(tracker)
        stored = await store.retrieve_full_tracker("resident")
        assert stored is not None and list(stored.events) == list(tracker.events)
    # a new session in the same tracker, then a turn of the tracker Rasa retrieves after it
    # (the latest session only): the stored tracker keeps every session (Rasa's merge)
    tracker.update(ActionExecuted(ACTION_SESSION_START_NAME))
    _turn(tracker, "after a while")
    await store.save(tracker)
    latest = await store.retrieve("resident")
    assert latest is not None and len(latest.events) == 4
    _turn(latest, "and again")
    await store.save(latest)
    everything = await store.retrieve_full_tracker("resident")
    assert everything is not None
    assert list(everything.events) == list(tracker.events) + list(latest.events)[4:]
    texts = [body.get("text") for body in broker.bodies if body["event"] == "user"]
    assert texts == ["message 0", "message 1", "message 2", "after a while", "and again"]
    assert [body["event"] for body in broker.bodies] == [
        event.as_dict()["event"] for event in everything.events
    ]
    assert all(body["sender_id"] == "resident" for body in broker.bodies)
    # the embedding was for the turn: neither stored nor published
    stored_text = store.red.get(store.key_prefix + "resident")
    assert stored_text is not None and EMBEDDING not in str(stored_text)
    assert not any(EMBEDDING in body.get("parse_data", {}) for body in broker.bodies)
    store.red.delete(store.key_prefix + "resident")


def test_stored_events_read_back_as_the_same_classes() -> None:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    for event_class in all_subclasses(Event):
        if getattr(event_class, "type_name", None) and not isabstract(event_class):
            found = Event.resolve_by_type(event_class.type_name)
            assert found is not None and found.type_name == event_class.type_name
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("topic") is None  # Rasa's backwards compatibility
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no_such_event")


async def test_a_session_with_metadata_is_stored_as_rasas_merge_would(
    redis_url: str, namespace: str
) -> None:
    # Rasa stores session metadata (our channels send some) as a slot event before the session
    # start, and retrieves the latest session from the session start: the tracker it saves is
    # shorter than the stored one, and its merge decides what is stored
    broker = Published()
    prefix = "".join(c for c in namespace if c.isalnum())
    store = RedisUrlTrackerStore(DOMAIN, host=redis_url, key_prefix=prefix)
    store.event_broker = broker
    started = [
        SlotSet(SESSION_START_METADATA_SLOT, {"account": "+441234567890"}),
        ActionExecuted(ACTION_SESSION_START_NAME),
    ]
    first = DialogueStateTracker.from_events("resident", started, slots=DOMAIN.slots)
    _turn(first, "message 0")
    await store.save(first)
    for turn in (1, 2):
        latest = await store.retrieve("resident")
        assert latest is not None and latest.events[0] == ActionExecuted(ACTION_SESSION_START_NAME)
        _turn(latest, f"message {turn}")
        raw_before = store.red.get(store.key_prefix + "resident")
        prior = store.deserialise_tracker("resident", raw_before)
        assert prior is not None
        expected = [e.as_dict() for e in store._merge_trackers(prior, latest).events]
        published = len(broker.bodies)
        await store.save(latest)
        raw = store.red.get(store.key_prefix + "resident")
        assert raw is not None
        assert json.loads(raw)["events"] == expected
        assert [body["event"] for body in broker.bodies[published:]] == ["action", "user", "bot"]
    stored = await store.retrieve_full_tracker("resident")
    assert stored is not None
    texts = [e.text for e in stored.events if isinstance(e, UserUttered)]
    assert texts == ["message 0", "message 1", "message 2"]  # each once
    store.red.delete(store.key_prefix + "resident")


# --- the policies' dialogue states ---------------------------------------------------------

PROJECT_DOMAIN = Domain.load("responses")
STATE_OPTIONS = [
    {},
    {"omit_unset_slots": True},
    {
        "ignore_rule_only_turns": True,
        "rule_only_data": {"slots": ["language"], "loops": ["bin_day_form"]},
    },
]


def _user(text: str, intent: str, entities: list[dict[str, Any]] | None = None) -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.9}, entities or [])


def _bin_day_conversation() -> list[list[Any]]:
    """The turns of a conversation: a form, rule-only turns, a rewind, answers, a restart."""
    return [
        [
            ActionExecuted(ACTION_SESSION_START_NAME),
            SessionStarted(),
            ActionExecuted("action_listen"),
        ],
        [
            _user("when is my bin day", "bin_collection_day"),
            SlotSet("language", "en"),
            ActionExecuted("bin_day_form"),
            ActiveLoop("bin_day_form"),
            SlotSet("requested_slot", "bin_postcode"),
            BotUttered("What's your postcode?"),
            ActionExecuted("action_listen"),
        ],
        [
            _user(
                "AV1 2BX",
                "inform",
                [{"entity": "postcode", "value": "AV1 2BX", "start": 0, "end": 7}],
            ),
            SlotSet("bin_postcode", "AV1 2BX"),
            ActionExecuted("bin_day_form"),
            SlotSet("requested_slot", "bin_address_choice"),
            ActionExecuted("action_listen"),
        ],
        [_user("oops", "out_of_scope"), UserUtteranceReverted()],
        [
            _user("2", "inform"),
            ActionExecuted("bin_day_form"),
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            ActionExecuted("action_bin_day", hide_rule_turn=True),
            BotUttered("Your bins go out on Tuesday"),
            ActionExecuted("action_listen", hide_rule_turn=True),
        ],
        [
            _user("how do I pay my council tax", "council_tax_pay"),
            ActionExecuted("action_answer"),
            BotUttered("Pay online"),
            ActionExecuted("action_listen"),
        ],
        [_user("thanks", "thanks"), ActionExecuted("utter_thanks"), ActionReverted()],
        [ActionExecuted("action_listen"), Restarted(), ActionExecuted("action_listen")],
        [
            _user("bin day", "bin_collection_day"),
            ActionExecuted("bin_day_form"),
            ActiveLoop("bin_day_form"),
            ActionExecuted("action_listen"),
        ],
    ]


@pytest.mark.parametrize("options", STATE_OPTIONS)
def test_the_dialogue_states_are_rasas_at_every_step_of_a_conversation(
    options: dict[str, Any],
) -> None:
    original = rasa_patches._original_states_for_tracker_history
    tracker = DialogueStateTracker("states-resident", PROJECT_DOMAIN.slots)
    for turn in _bin_day_conversation():
        for event in turn:
            tracker.update(event)
            expected = original(PROJECT_DOMAIN, tracker, **options)
            # asked twice, as the policies do within a prediction
            assert PROJECT_DOMAIN.states_for_tracker_history(tracker, **options) == expected
            assert PROJECT_DOMAIN.states_for_tracker_history(tracker, **options) == expected
    assert len(expected) > 3  # the restart cut the history: what was compared is its end


def test_dialogue_states_changed_by_a_policy_do_not_change_the_next_answer() -> None:
    tracker = DialogueStateTracker("states-changed", PROJECT_DOMAIN.slots)
    for turn in _bin_day_conversation()[:3]:
        for event in turn:
            tracker.update(event)
    expected = rasa_patches._original_states_for_tracker_history(PROJECT_DOMAIN, tracker)
    given = PROJECT_DOMAIN.states_for_tracker_history(tracker)
    for state in given:  # what MaxHistoryTrackerFeaturizer does to the last one, everywhere
        for sub_state in state.values():
            sub_state.clear()
        state.clear()
    assert PROJECT_DOMAIN.states_for_tracker_history(tracker) == expected


def test_a_conversation_read_again_from_the_store_gets_the_same_states() -> None:
    # the same events as new objects (another turn, another worker): no state is taken on trust
    tracker = DialogueStateTracker("states-reread", PROJECT_DOMAIN.slots)
    for turn in _bin_day_conversation()[:3]:
        for event in turn:
            tracker.update(event)
    PROJECT_DOMAIN.states_for_tracker_history(tracker)
    changed = [
        _user(e.text, "deny")
        if isinstance(e, UserUttered) and e.text == "when is my bin day"
        else e
        for e in tracker.events
    ]
    reread = DialogueStateTracker.from_events("states-reread", changed, PROJECT_DOMAIN.slots)
    expected = rasa_patches._original_states_for_tracker_history(PROJECT_DOMAIN, reread)
    assert PROJECT_DOMAIN.states_for_tracker_history(reread) == expected
    assert any(s.get("user", {}).get("intent") == "deny" for s in expected)


# --- the stored conversation, as this process read or wrote it last -----------------------


async def test_a_conversation_stored_turn_after_turn_is_written_and_read_as_rasa_would(
    redis_url: str, namespace: str
) -> None:
    prefix = "".join(c for c in namespace if c.isalnum())
    store = RedisUrlTrackerStore(DOMAIN, host=redis_url, key_prefix=prefix)
    started = [
        SlotSet(SESSION_START_METADATA_SLOT, {"account": "+441234567890"}),
        ActionExecuted(ACTION_SESSION_START_NAME),
    ]
    await store.save(DialogueStateTracker.from_events("turns", started, slots=DOMAIN.slots))
    for turn in range(4):
        tracker = await store.retrieve("turns")
        assert tracker is not None
        _turn(tracker, f"message {turn}")
        tracker.update(SlotSet("bin_postcode", ("AV1", "2BX")))  # a tuple: JSON has lists
        await store.save(tracker)
        raw = store.red.get(store.key_prefix + "turns")
        from_json = store.deserialise_tracker("turns", raw)
        assert from_json is not None
        # the text is what Rasa's serialiser writes for the whole conversation
        assert raw == store.serialise_tracker(from_json)
        again = await store.retrieve_full_tracker("turns")
        assert again is not None
        assert [e.as_dict() for e in again.events] == [e.as_dict() for e in from_json.events]
        assert again.current_state(EventVerbosity.ALL) == from_json.current_state(
            EventVerbosity.ALL
        )
        assert again.get_slot("bin_postcode") == ["AV1", "2BX"]  # as read from JSON
    texts = [e.text for e in from_json.events if isinstance(e, UserUttered)]
    assert texts == [f"message {turn}" for turn in range(4)]
    store.red.delete(store.key_prefix + "turns")


async def test_a_conversation_another_worker_stored_meanwhile_is_read_from_redis(
    redis_url: str, namespace: str
) -> None:
    prefix = "".join(c for c in namespace if c.isalnum())
    store = RedisUrlTrackerStore(DOMAIN, host=redis_url, key_prefix=prefix)
    tracker = DialogueStateTracker.from_events(
        "shared", [ActionExecuted(ACTION_SESSION_START_NAME)], slots=DOMAIN.slots
    )
    _turn(tracker, "to this worker")
    await store.save(tracker)
    mine = await store.retrieve("shared")
    assert mine is not None
    # another worker answers the next message (its own tracker, written with Rasa's serialiser)
    theirs = DialogueStateTracker.from_events("shared", list(mine.events), slots=DOMAIN.slots)
    _turn(theirs, "to the other worker")
    store.red.set(store.key_prefix + "shared", store.serialise_tracker(theirs))
    latest = await store.retrieve("shared")
    assert latest is not None
    assert [e.text for e in latest.events if isinstance(e, UserUttered)] == [
        "to this worker",
        "to the other worker",
    ]
    _turn(latest, "back to this worker")
    await store.save(latest)
    stored = await store.retrieve_full_tracker("shared")
    assert stored is not None
    assert [e.text for e in stored.events if isinstance(e, UserUttered)] == [
        "to this worker",
        "to the other worker",
        "back to this worker",
    ]
    store.red.delete(store.key_prefix + "shared")


def test_the_applied_events_are_rasas_at_every_event_of_a_conversation() -> None:
    # forms repeated and left, reverted turns, a restart; a second form named only late
    turns = _bin_day_conversation()
    turns.append(
        [
            _user("my bin was missed", "missed_bin"),
            ActionExecuted("missed_bin_form"),
            ActionExecuted("action_listen"),
            _user("AV1 2BX", "inform"),
            ActionExecuted("missed_bin_form"),
            ActiveLoop("missed_bin_form"),
            ActionExecuted("missed_bin_form"),
            ActionExecuted("action_listen"),
        ]
    )
    tracker = DialogueStateTracker("applied-resident", PROJECT_DOMAIN.slots)
    for turn in turns:
        for event in turn:
            tracker.update(event)
            expected = DialogueStateTracker.applied_events(tracker)
            assert rasa_patches._applied_events(tracker) == expected
            assert [id(e) for e in rasa_patches._applied_events(tracker)] == [
                id(e) for e in expected
            ]
    assert [e.action_name for e in expected if isinstance(e, ActionExecuted)].count(
        "missed_bin_form"
    ) < 4  # the form's repeated executions were undone once it was known as a form
