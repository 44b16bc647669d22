"""Speed-ups of the Rasa server that keep its behaviour (issue 12; ``docs/performance.md``).

Installed once per process by :func:`install`, which our featurizer calls when the model is
loaded (so every Rasa server running our pipeline has them, with nothing else to configure):

* The action server's answer is checked against Rasa's JSON schema with a validator built
  once. ``jsonschema.validate`` first checks the (large) schema itself against its
  meta-schema on every call: 22-25 ms of the Rasa server's CPU per action call, for the same
  answer and the same error.
* An action is sent the tracker's state (slots, latest message, active loop...) with the
  events of the current turn only (from the latest user message on), instead of the whole
  conversation, which grows with every turn. Our actions read the current turn; the ones
  listed in :data:`FULL_HISTORY_ACTIONS` (``action_handoff`` writes the transcript into the
  case) still get every event.
* The NLU parse runs in a worker thread, so the event loop keeps answering (inbox and outbox
  workers, HTTP, Redis) meanwhile; the model releases the GIL while it computes. From the
  first parse on, NumPy's BLAS uses one thread (:func:`bot.knowledge.embedding.one_blas_thread`;
  training never parses this way, so it keeps its threads).
* The sentence embedding our featurizer adds to the parse data (for the knowledge base, so the
  action server does not encode the message again) lives for the turn only: it is dropped
  from the tracker before it is saved or its events published, so stored trackers and the
  event broker never carry it.
* Saving a tracker in Redis reads the stored events once and rebuilds no tracker. Rasa's
  ``RedisTrackerStore.save`` rebuilt the stored one (replaying every event of the
  conversation) to find the new events for the event broker, then again (twice: the sessions
  split, then a replay "back in time") to merge it with the one being saved, and with session
  metadata (our channels) the merge compared every event with every other: work that grew
  with every turn. When the tracker continues the stored conversation the merge's result is
  known from the events (:func:`_continued`); otherwise Rasa's merge runs. The same events are
  published and the same events are stored. Retrieving the latest
  session builds the session trackers only when there are several (a single session is the
  tracker read), and reading a stored event finds its class in a table instead of walking
  every subclass of ``Event`` (a quarter of the Rasa process's CPU at turn 50).
* A stored conversation is parsed once per process, not twice per turn. The process keeps
  the JSON it last read or wrote for the :data:`STORED_MEMO_SIZE` conversations it handled
  last, with the events read from it. When Redis holds that same text (no other worker
  answered meanwhile) its events are those events, not a new parse of the whole JSON; the
  text saved is the stored text with the new events' JSON put before its end (what
  ``json.dumps`` writes for the whole conversation), and the new events are kept as reading
  their JSON gives them. Any other text is parsed as Rasa does.
* The policies' dialogue states are computed once per event, not once per prediction. Rasa's
  ``Domain.states_for_tracker_history`` replays the whole conversation and builds a state at
  every action, for each policy and each prediction (RulePolicy several times per prediction;
  MemoizationPolicy too, though it keeps the last four): work that grew with every turn. The
  states of a conversation are remembered (per conversation and options, the
  :data:`HISTORY_MEMO_SIZE` most recent) with the events they were built from; a call whose
  applied events begin with those same events (the same objects, or events whose JSON is the
  same) only builds the states of the events after them. Anything else (a rewind, a restart,
  another model) starts again from the first event. Each call returns its own copy of the
  states, shared sub-states shared as Rasa's are.
* The calls to the action server share one ``aiohttp`` session per event loop (and headers
  and credentials), so they reuse kept-alive connections. Rasa's ``EndpointConfig.request``
  opened a session, so a new TCP connection, for every call. The session is Rasa's own
  (``EndpointConfig.session``: its headers, basic auth and timeout), made on the first call;
  the request is Rasa's (token, headers, timeout, errors). A kept-alive connection the action
  server closed meanwhile fails like a restart does and is tried again like one (below).
  :func:`close_action_sessions` closes the sessions of the running loop.

The domain goes only to the actions that read it: ``enable_selective_domain`` in
``endpoints.yml`` (Rasa's own option, kept by our call format): the forms' ``validate_*``
actions and any declared ``send_domain: true`` in ``responses/*.yml``.

And one that is about faults, not speed: a custom action's call that cannot reach the action
server (connection refused or reset, timeout, a 5xx answer) is tried again with exponential
backoff for up to :data:`ACTION_SERVER_RETRY_BUDGET` seconds, within the same turn, so a
restart of the action server is ridden through in order. After that the turn fails with
:class:`~bot.errors.ActionServerUnreachableError` instead of Rasa's "Bot will continue, but
the actions events are lost": the inbox worker retries the message and finally dead-letters
it. A 4xx answer or an answer that fails Rasa's schema is a bug, not an outage: not retried.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from asyncio import AbstractEventLoop
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.errors import ActionServerUnreachableError

if TYPE_CHECKING:
    from types import TracebackType

    import aiohttp
    from rasa.core.actions.action import Action, RemoteAction
    from rasa.core.channels.channel import OutputChannel, UserMessage
    from rasa.core.nlg import NaturalLanguageGenerator
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import RedisTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

__all__ = [
    "ACTION_SERVER_RETRY_BUDGET",
    "FULL_HISTORY_ACTIONS",
    "HISTORY_MEMO_SIZE",
    "STORED_MEMO_SIZE",
    "close_action_sessions",
    "current_turn_events",
    "install",
    "installed",
]

_log = logging.getLogger(__name__)

FULL_HISTORY_ACTIONS = frozenset({"action_handoff"})
"""Custom actions that read earlier turns, so they are sent every event."""

STORED_MEMO_SIZE = 256
"""Conversations whose stored JSON and events this process keeps (the ones it handled last)."""

HISTORY_MEMO_SIZE = 1024
"""Conversation histories (per conversation and options) whose dialogue states are kept."""

ACTION_SERVER_RETRY_BUDGET = 30.0
"""Seconds a custom action's call is retried while the action server cannot be reached (a
restart takes ~20 s); the conversation waits meanwhile, the others go on."""

_FIRST_RETRY_DELAY = 0.1
_LONGEST_RETRY_DELAY = 2.0

_installed = False


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return _installed


@functools.lru_cache(maxsize=1)
def _response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, as jsonschema.validate does on every call
    return validator_class(schema)


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    from jsonschema import ValidationError, exceptions
    from rasa.shared.constants import DOCS_BASE_URL

    error = exceptions.best_match(_response_validator().iter_errors(result))
    if error is None:
        return True
    if not isinstance(error, ValidationError):  # pragma: no cover (best_match's type)
        raise error
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        "For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def current_turn_events(tracker: DialogueStateTracker) -> list[Any]:
    """The tracker's events from its latest user message on (all of them when it has none)."""
    from rasa.shared.core.events import UserUttered

    events = list(tracker.events)
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], UserUttered):
            return events[index:]
    return events


def _action_call_format(
    self: RemoteAction, tracker: DialogueStateTracker, domain: Domain
) -> dict[str, Any]:
    import rasa
    from rasa.shared.core.trackers import EventVerbosity

    if self.name() in FULL_HISTORY_ACTIONS:
        state = tracker.current_state(EventVerbosity.ALL)
    else:
        state = tracker.current_state(EventVerbosity.NONE)
        state["events"] = [event.as_dict() for event in current_turn_events(tracker)]
    result: dict[str, Any] = {
        "next_action": self._name,
        "sender_id": tracker.sender_id,
        "tracker": state,
        "version": rasa.__version__,
    }
    if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(
        self.name()
    ):
        result["domain"] = domain.as_dict()
    return result


def _drop_embeddings(tracker: DialogueStateTracker) -> None:
    from rasa.shared.core.events import UserUttered

    from bot.knowledge.embedding import EMBEDDING

    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            event.parse_data.pop(EMBEDDING, None)
            return  # only the latest user message can carry one: earlier ones were saved


async def _parse_message(
    self: MessageProcessor,
    message: UserMessage,
    tracker: DialogueStateTracker | None = None,
    only_output_properties: bool = True,
) -> dict[str, Any]:
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.knowledge.embedding import one_blas_thread

    one_blas_thread()
    if self.http_interpreter:
        parsed: dict[str, Any] = await _original_parse_message(
            self, message, tracker, only_output_properties
        )
        return parsed
    graph_tracker = tracker or DialogueStateTracker.from_events(message.sender_id, [])
    parse_data: dict[str, Any] = await asyncio.to_thread(
        self._parse_message_with_graph, message, graph_tracker, only_output_properties
    )
    # what Rasa's parse_message does after the graph (its debug log aside)
    self._update_full_retrieval_intent(parse_data)
    self._check_for_unseen_features(parse_data)
    return parse_data


_original_parse_message: Any = None


def _latest_session_start(events: list[Any]) -> int:
    """Where the tracker ``RedisTrackerStore.retrieve`` gives begins (its latest session)."""
    from rasa.shared.core.constants import ACTION_SESSION_START_NAME
    from rasa.shared.core.events import ActionExecuted, split_events

    sessions = split_events(
        events, ActionExecuted, {"action_name": ACTION_SESSION_START_NAME}, True
    )
    return len(events) - len(sessions[-1]) if len(sessions) > 1 else 0


def _continued(stored: list[Any], start: int, tracker: DialogueStateTracker) -> list[Any] | None:
    """The events Rasa's merge stores when ``tracker`` continues the stored conversation.

    ``tracker`` was retrieved as the stored events from ``start`` on (the latest session; with
    session metadata Rasa stores a slot event before the session start, so the retrieved
    tracker is shorter than the stored one) and has new events after them. Rasa's merge then
    keeps the stored events and appends each of the tracker's events whose ``as_dict`` is not
    there yet. None when that cannot be decided from the events alone (a tracker that is not a
    continuation, timestamps out of order): Rasa's merge runs instead.
    """
    events = list(tracker.events)
    session = stored[start:]
    if len(events) < len(session):
        return None
    last = stored[-1].timestamp if stored else float("-inf")
    if any(event.timestamp > last for event in stored):
        return None
    same = all(a is b for a, b in zip(events, session, strict=False))  # read from the memo
    if not same and [e.as_dict() for e in events[: len(session)]] != [e.as_dict() for e in session]:
        return None
    added: list[Any] = []
    seen: list[dict[str, Any]] = []
    for event in events[len(session) :]:
        if event.timestamp <= last:
            return None  # it could equal a stored event: Rasa's comparison decides
        as_dict = event.as_dict()
        if as_dict not in seen:
            seen.append(as_dict)
            added.append(event)
    return [*stored, *added]


@dataclass
class _Read:
    """A stored conversation as this process last wrote or read it."""

    text: str  # the stored JSON
    events: list[Any]  # its events, read from it (each an object of its own)


_read: OrderedDict[str, _Read] = OrderedDict()


def _remember(key: str, text: str, events: list[Any]) -> None:
    _read[key] = _Read(text, events)
    _read.move_to_end(key)
    while len(_read) > STORED_MEMO_SIZE:
        _read.popitem(last=False)


def _stored_events(key: str, text: str) -> list[Any]:
    """The events of a stored conversation: the ones read before when the text is the same."""
    import json

    from rasa.shared.core.conversation import Dialogue

    known = _read.get(key)
    if known is not None and known.text == text:
        _read.move_to_end(key)
        return known.events
    events = list(Dialogue.from_parameters(json.loads(text)).events)
    _remember(key, text, events)
    return events


def _appended(sender_id: str, text: str, stored: int, added: list[str]) -> str | None:
    """The stored JSON of ``stored`` events with the events of JSON ``added`` after them.

    As Rasa writes it: ``json.dumps`` of a list is its items' JSON joined by ``", "``, so the
    new events' JSON goes between the stored ones and the end. None when ``text`` is not
    written that way.
    """
    import json

    from rasa.shared.core.conversation import Dialogue

    empty = json.dumps(Dialogue(sender_id, []).as_dict())
    head, tail = empty.split("[]", 1)
    head, tail = head + "[", "]" + tail
    if not (text.startswith(head) and text.endswith(tail)) or (text == empty) != (stored == 0):
        return None
    if not added:
        return text
    return f"{text[: -len(tail)]}{', ' if stored else ''}{', '.join(added)}{tail}"


async def _save(
    self: RedisTrackerStore, tracker: DialogueStateTracker, timeout: float | None = None
) -> None:
    import json

    from rasa.shared.core.conversation import Dialogue
    from rasa.shared.core.events import deserialise_events

    _drop_embeddings(tracker)
    key = self.key_prefix + tracker.sender_id
    raw = self.red.get(key)
    # the stored events, read without replaying them into a tracker (or as read before)
    stored = _stored_events(key, raw) if raw is not None else None
    start = _latest_session_start(stored) if stored is not None else 0
    if self.event_broker is not None:
        offset = len(stored) - start if stored is not None else 0  # len(retrieve().events)
        new_events = list(itertools.islice(tracker.events, offset, len(tracker.events)))
        await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)
    if not timeout and self.record_exp:
        timeout = self.record_exp
    text: str | None = None
    if stored:
        continued = _continued(stored, start, tracker)
        if continued is not None:
            added = [json.dumps(event.as_dict()) for event in continued[len(stored) :]]
            text = _appended(tracker.sender_id, raw, len(stored), added)
            if text is not None:  # the new events as reading them back gives them
                read_back = deserialise_events([json.loads(event) for event in added])
                _remember(key, text, [*stored, *read_back])
        else:
            prior = self.deserialise_tracker(tracker.sender_id, raw)
            if prior is not None:
                continued = list(self._merge_trackers(prior, tracker).events)
        events = continued if continued is not None else list(tracker.events)
    else:
        events = list(tracker.events)
    if text is None:
        _read.pop(key, None)
        text = json.dumps(Dialogue(tracker.sender_id, events).as_dict())
    self.red.set(key, text, ex=timeout)


_event_classes: dict[str, Any] = {}
_original_resolve_by_type: Any = None


def _resolve_by_type(type_name: str, default: Any = None) -> Any:
    """``Event.resolve_by_type`` with the classes found remembered (unknown names: Rasa's)."""
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    found = _event_classes.get(type_name)
    if found is not None:
        return found
    for candidate in all_subclasses(Event):
        if candidate.type_name == type_name:
            _event_classes[type_name] = candidate
            return candidate
    return _original_resolve_by_type(type_name, default)


def _session_count(tracker: DialogueStateTracker) -> int:
    from rasa.shared.core.constants import ACTION_SESSION_START_NAME
    from rasa.shared.core.events import ActionExecuted, split_events

    return len(
        split_events(
            tracker.events,
            ActionExecuted,
            {"action_name": ACTION_SESSION_START_NAME},
            include_splitting_event=True,
        )
    )


async def _retrieve(
    self: RedisTrackerStore, sender_id: str, fetch_all_sessions: bool
) -> DialogueStateTracker | None:
    from rasa.shared.core.conversation import Dialogue
    from rasa.shared.core.trackers import get_trackers_for_conversation_sessions

    key = self.key_prefix + sender_id
    stored = self.red.get(key)
    if stored is None:
        return None
    tracker = self.init_tracker(sender_id)
    tracker.recreate_from_dialogue(Dialogue(sender_id, list(_stored_events(key, stored))))
    if fetch_all_sessions or _session_count(tracker) <= 1:
        return tracker
    return get_trackers_for_conversation_sessions(tracker)[-1]


@dataclass
class _History:
    """Rasa's ``states_for_tracker_history`` loop, stopped after ``events`` (to go on later)."""

    domain: Domain
    replay: DialogueStateTracker  # the conversation after ``events``
    events: list[Any] = field(default_factory=list)  # the applied events consumed, in order
    states: list[dict[str, Any]] = field(default_factory=list)  # one per action (not hidden)
    last_ml_action: Any = None
    turn_was_hidden: bool = False

    def step(self, hide_rule_turn: bool, options: _StateOptions) -> None:
        """The loop's body for the conversation as it is now (before an action, or at the end)."""
        from rasa.shared.core.constants import PREVIOUS_ACTION

        domain, tracker = self.domain, self.replay
        if options.ignore_rule_only_turns:
            if not self.turn_was_hidden:
                self.last_ml_action = domain._get_prev_action_sub_state(tracker)
            if (
                not tracker.followup_action
                and tracker.latest_action_name != tracker.active_loop_name
            ):
                self.turn_was_hidden = hide_rule_turn
            if self.turn_was_hidden:
                return
        state = domain.get_active_state(tracker, omit_unset_slots=options.omit_unset_slots)
        if options.ignore_rule_only_turns:
            domain._remove_rule_only_features(state, options.rule_only_data)
            if self.states:
                domain._substitute_rule_only_user_input(state, self.states[-1])
            if self.last_ml_action:
                state[PREVIOUS_ACTION] = self.last_ml_action
        self.states.append(domain._clean_state(state))


@dataclass(frozen=True)
class _StateOptions:
    omit_unset_slots: bool
    ignore_rule_only_turns: bool
    rule_only_data: dict[str, Any] | None


_histories: OrderedDict[tuple[str, bool, bool, str], _History] = OrderedDict()


def _copied(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of the states for the caller (which may change them), sharing as they share."""
    copies: dict[int, dict[str, Any]] = {}

    def sub_state(value: dict[str, Any]) -> dict[str, Any]:
        found = copies.get(id(value))
        if found is None:
            found = copies[id(value)] = dict(value)
        return found

    return [{name: sub_state(value) for name, value in state.items()} for state in states]


def _same_events(seen: list[Any], events: list[Any]) -> bool:
    """Whether ``events`` begin with ``seen``: the same objects, or events stored alike.

    A conversation read from the store again has new objects for the events stored last turn
    (their JSON compared here); the others are the objects read the turn before. ``seen``
    takes the new objects, so the next call finds the same objects.
    """
    for index, (old, new) in enumerate(zip(seen, events, strict=False)):
        if old is not new:
            if type(old) is not type(new) or old.as_dict() != new.as_dict():
                return False
            seen[index] = new
    return True


@dataclass
class _Applied:
    """Rasa's ``applied_events`` loop over a conversation, stopped after ``events``."""

    events: list[Any] = field(default_factory=list)  # the tracker's events consumed
    loops: set[str] = field(default_factory=set)  # the names of its ActiveLoop events
    applied: list[Any] = field(default_factory=list)


_applied: OrderedDict[str, _Applied] = OrderedDict()


def _applied_events(tracker: DialogueStateTracker) -> list[Any]:
    """``tracker.applied_events()``, going on from the events it was last asked with.

    Rasa's loop undoes reverted turns and a form's repeated executions; it knows which
    actions are forms from every ``ActiveLoop`` event of the tracker, later ones included, so
    an event naming a new form starts the loop again from the first event.
    """
    from rasa.shared.core.events import (
        ActionExecuted,
        ActionReverted,
        ActiveLoop,
        Restarted,
        SessionStarted,
        UserUtteranceReverted,
        UserUttered,
    )

    events = tracker.events
    memo = _applied.pop(tracker.sender_id, None)
    if (
        memo is None
        or len(memo.events) > len(events)
        or any(old is not new for old, new in zip(memo.events, events, strict=False))
    ):
        memo = _Applied()  # the loop is cheaper than comparing events read again
    new = list(itertools.islice(events, len(memo.events), None))
    loops = {e.name for e in new if isinstance(e, ActiveLoop) and e.name}
    if not loops <= memo.loops:
        loops |= memo.loops
        memo, new = _Applied(loops=loops), list(events)
    applied = memo.applied
    for event in new:
        if isinstance(event, Restarted | SessionStarted):
            applied.clear()
        elif isinstance(event, ActionReverted):
            tracker._undo_till_previous(ActionExecuted, applied)
        elif isinstance(event, UserUtteranceReverted):
            tracker._undo_till_previous(UserUttered, applied)
            tracker._undo_till_previous(ActionExecuted, applied)
        elif (
            isinstance(event, ActionExecuted)
            and event.action_name in memo.loops
            and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)
        ):
            tracker._undo_till_previous_loop_execution(event.action_name, applied)
        else:
            applied.append(event)
        memo.events.append(event)
    _applied[tracker.sender_id] = memo
    while len(_applied) > HISTORY_MEMO_SIZE:
        _applied.popitem(last=False)
    return list(applied)


def _states_for_tracker_history(
    self: Domain,
    tracker: DialogueStateTracker,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``Domain.states_for_tracker_history``, building only the states of events not seen yet."""
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    if type(tracker) is not DialogueStateTracker or tracker.is_rule_tracker:  # training's
        states: list[dict[str, Any]] = _original_states_for_tracker_history(
            self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data
        )
        return states
    options = _StateOptions(omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    memo_key = (tracker.sender_id, omit_unset_slots, ignore_rule_only_turns, repr(rule_only_data))
    applied = _applied_events(tracker)
    history = _histories.pop(memo_key, None)
    if (
        history is None
        or history.domain is not self
        or len(history.events) > len(applied)
        or not _same_events(history.events, applied)
    ):
        history = _History(self, tracker.init_copy())
    for event in applied[len(history.events) :]:
        if isinstance(event, ActionExecuted):
            history.step(event.hide_rule_turn, options)
        history.replay.update(event)
        history.events.append(event)
    # the state at the end (the generator's last yield) is not kept: the next event decides
    kept, last_ml_action, turn_was_hidden = (
        len(history.states),
        history.last_ml_action,
        history.turn_was_hidden,
    )
    history.step(False, options)
    result = _copied(history.states)
    del history.states[kept:]
    history.last_ml_action, history.turn_was_hidden = last_ml_action, turn_was_hidden
    _histories[memo_key] = history  # kept only when every step went through
    while len(_histories) > HISTORY_MEMO_SIZE:
        _histories.popitem(last=False)
    return result


_original_states_for_tracker_history: Any = None


def _outage(error: BaseException) -> BaseException | None:
    """The failure that shows the action server is away, None for a bug (a 4xx, a bad answer).

    Rasa's ``RemoteAction.run`` wraps the aiohttp error in a ``RasaException``, so the chain of
    causes is read; a timeout is not wrapped.
    """
    import aiohttp
    from rasa.utils.endpoints import ClientResponseError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ClientResponseError):
            return seen if seen.status >= 500 else None
        if isinstance(seen, aiohttp.ClientConnectionError | TimeoutError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_unreachable: ContextVar[ActionServerUnreachableError | None] = ContextVar(
    "action_server_unreachable", default=None
)
"""Set by a call that gave up, for :func:`_run_action` (Rasa's catches every exception)."""


_calling: ContextVar[EndpointConfig | None] = ContextVar("action_endpoint_calling", default=None)
"""The endpoint of the action call running (set by :func:`_run_remote_action`), whose
``session()`` is the kept one; any other endpoint's is Rasa's."""

_sessions: dict[tuple[AbstractEventLoop, str], aiohttp.ClientSession] = {}


class _Borrowed:
    """A kept session for Rasa's ``async with endpoint.session()``, which must not close it."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


def _session(self: EndpointConfig) -> Any:
    """``EndpointConfig.session``: during an action call, the loop's kept session."""
    calling = _calling.get()
    if calling is None or calling is not self:
        return _original_session(self)
    loop = asyncio.get_running_loop()
    # what Rasa's session is made of besides its timeout (a constant)
    key = (loop, repr((sorted(calling.headers.items()), sorted(calling.basic_auth.items()))))
    session = _sessions.get(key)
    if session is None or session.closed:
        for gone in [k for k in _sessions if k[0].is_closed()]:
            del _sessions[gone]  # its loop is closed: nothing can use or close it any more
        session = _sessions[key] = _original_session(self)
    return _Borrowed(session)


_original_session: Any = None


async def close_action_sessions() -> None:
    """Close the running loop's kept sessions to the action server (at the server's stop)."""
    loop = asyncio.get_running_loop()
    for key in [k for k in _sessions if k[0] is loop or k[0].is_closed()]:
        session = _sessions.pop(key)
        if key[0] is loop:
            await session.close()


async def _run_remote_action(
    self: RemoteAction,
    output_channel: OutputChannel,
    nlg: NaturalLanguageGenerator,
    tracker: DialogueStateTracker,
    domain: Domain,
) -> list[Any]:
    token = _calling.set(self.action_endpoint)
    try:
        return await _run_with_retries(self, output_channel, nlg, tracker, domain)
    finally:
        _calling.reset(token)


async def _run_with_retries(
    self: RemoteAction,
    output_channel: OutputChannel,
    nlg: NaturalLanguageGenerator,
    tracker: DialogueStateTracker,
    domain: Domain,
) -> list[Any]:
    loop = asyncio.get_running_loop()
    budget = ACTION_SERVER_RETRY_BUDGET
    deadline = loop.time() + budget
    delay = _FIRST_RETRY_DELAY
    while True:
        try:
            events: list[Any] = await _original_remote_run(
                self, output_channel, nlg, tracker, domain
            )
            return events
        except Exception as error:
            outage = _outage(error)
            if outage is None:
                raise
            remaining = deadline - loop.time()
            url = self.action_endpoint.url if self.action_endpoint else ""
            if remaining <= 0:
                last = f"{type(outage).__name__}: {outage}"
                unreachable = ActionServerUnreachableError(
                    self.name(), url, f"tried for {budget:g} s; last: {last}"
                )
                _unreachable.set(unreachable)
                raise unreachable from error
            _log.warning(
                "action %s: action server at %s unreachable (%s); retrying",
                self.name(),
                url,
                type(outage).__name__,
            )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _LONGEST_RETRY_DELAY)


_original_remote_run: Any = None


async def _run_action(
    self: MessageProcessor,
    action: Action,
    tracker: DialogueStateTracker,
    output_channel: OutputChannel,
    nlg: NaturalLanguageGenerator,
    prediction: PolicyPrediction,
) -> bool:
    # Rasa's logs any exception and goes on with the turn; an unreachable action server must
    # fail it instead (the tracker is saved only at the end of a turn, so it is not saved)
    token = _unreachable.set(None)
    try:
        again: bool = await _original_run_action(
            self, action, tracker, output_channel, nlg, prediction
        )
        unreachable = _unreachable.get()
    finally:
        _unreachable.reset(token)
    if unreachable is not None:
        raise unreachable
    return again


_original_run_action: Any = None


def install() -> None:
    """Apply the speed-ups to this process' Rasa classes (idempotent)."""
    global _installed, _original_parse_message, _original_resolve_by_type
    global _original_remote_run, _original_run_action, _original_states_for_tracker_history
    global _original_session
    if _installed:
        return
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.core.tracker_store import RedisTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.utils.endpoints import EndpointConfig

    _original_states_for_tracker_history = Domain.states_for_tracker_history
    Domain.states_for_tracker_history = _states_for_tracker_history
    RedisTrackerStore.save = _save
    RedisTrackerStore._retrieve = _retrieve
    _original_resolve_by_type = Event.resolve_by_type
    Event.resolve_by_type = staticmethod(_resolve_by_type)
    RemoteAction._validate_action_result = _validate_action_result
    RemoteAction._action_call_format = _action_call_format
    _original_remote_run = RemoteAction.run
    RemoteAction.run = _run_remote_action
    _original_session = EndpointConfig.session
    EndpointConfig.session = _session
    _original_run_action = MessageProcessor._run_action
    MessageProcessor._run_action = _run_action
    _original_parse_message = MessageProcessor.parse_message
    MessageProcessor.parse_message = _parse_message
    _installed = True
