"""A custom action rides through a short action-server outage, and a long one is not silent.

Issue 12 ("Bad input and faults"): with the action server down for 14 s, Rasa's
``RemoteAction.run`` failed to connect and ``MessageProcessor._run_action`` swallowed the error
("Bot will continue, but the actions events are lost"), so the turn ended without a reply, the
inbox worker acknowledged the message and a handoff was recorded as run with no case opened.
The action server here is a small aiohttp app on a loopback port that answers like rasa-sdk's
webhook (``POST /webhook`` -> ``{"events": [...], "responses": [...]}``; format from Rasa's
``RemoteAction.action_response_format_spec``), started late or never.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio
from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from bot import rasa_patches
from bot.channels.base import InboundMessage
from bot.channels.inbox import Inbox, InboxWorker
from bot.channels.rasa import ChannelRuntime
from bot.errors import ActionServerUnreachableError

from .conftest import StandInActionServer

DOMAIN = Domain.from_dict(
    {
        "intents": ["human_agent"],
        "slots": {"case_id": {"type": "text", "mappings": [{"type": "custom"}]}},
        "actions": ["action_handoff"],
    }
)
OPENED = {"events": [{"event": "slot", "name": "case_id", "value": "case-1"}], "responses": []}


pytestmark = pytest.mark.usefixtures("patched")


class ActionServer(StandInActionServer):
    """A stand-in action server answering each call with the next status (then 200)."""

    def __init__(self, port: int, statuses: list[int] | None = None) -> None:
        super().__init__(port)
        self.statuses = list(statuses or [])
        self.calls = 0

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body["next_action"] == "action_handoff"
        self.calls += 1
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return web.json_response({"error": "unavailable"}, status=status)
        return web.json_response(OPENED)


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., ActionServer]]:
    made: list[ActionServer] = []

    def make(port: int, statuses: list[int] | None = None) -> ActionServer:
        made.append(ActionServer(port, statuses))
        return made[-1]

    yield make
    for server in made:
        await server.stop()


def _handoff(port: int) -> RemoteAction:
    return RemoteAction("action_handoff", EndpointConfig(f"http://127.0.0.1:{port}/webhook"))


def _tracker() -> DialogueStateTracker:
    return DialogueStateTracker.from_events("telegram:1:2", [], slots=DOMAIN.slots)


async def _run(action: RemoteAction) -> list[Any]:
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
    events: list[Any] = await action.run(CollectingOutputChannel(), nlg, _tracker(), DOMAIN)
    return events


async def test_an_action_server_that_comes_back_within_the_budget_runs_the_action(
    port: int, servers: Callable[..., ActionServer]
) -> None:
    server = servers(port)

    async def start_late() -> None:
        await asyncio.sleep(0.5)  # the outage (refused connections meanwhile)
        await server.start()

    late = asyncio.create_task(start_late())
    events = await asyncio.wait_for(_run(_handoff(port)), timeout=10)
    await late
    assert events == [SlotSet("case_id", "case-1")]
    assert server.calls == 1


async def test_server_errors_are_retried(port: int, servers: Callable[..., ActionServer]) -> None:
    server = servers(port, [503, 502])
    await server.start()
    events = await asyncio.wait_for(_run(_handoff(port)), timeout=10)
    assert events == [SlotSet("case_id", "case-1")]
    assert server.calls == 3


async def test_a_client_error_is_a_bug_and_is_not_retried(
    port: int, servers: Callable[..., ActionServer]
) -> None:
    server = servers(port, [404])
    await server.start()
    with pytest.raises(RasaException):
        await _run(_handoff(port))
    assert server.calls == 1


async def test_an_action_server_that_never_comes_back_is_reported(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rasa_patches, "ACTION_SERVER_RETRY_BUDGET", 0.5)
    with pytest.raises(ActionServerUnreachableError) as failed:
        await asyncio.wait_for(_run(_handoff(port)), timeout=10)
    assert failed.value.action == "action_handoff"
    assert str(port) in failed.value.url
    assert str(failed.value).startswith("action server unreachable")


async def test_the_turn_fails_instead_of_going_on_without_the_actions_events(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what Rasa's handle_message runs for each predicted action; the processor holds only
    # what _run_action reads
    monkeypatch.setattr(rasa_patches, "ACTION_SERVER_RETRY_BUDGET", 0.2)
    processor = object.__new__(MessageProcessor)
    processor.domain = DOMAIN
    tracker = _tracker()
    prediction = PolicyPrediction.for_action_name(DOMAIN, "action_handoff")
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
    output = CollectingOutputChannel()
    with pytest.raises(ActionServerUnreachableError) as failed:
        await processor._run_action(_handoff(port), tracker, output, nlg, prediction)
    assert "ClientConnectorError" in failed.value.reason  # the refused connection, named
    assert output.messages == []


async def test_a_message_whose_turn_cannot_reach_the_action_server_is_dead_lettered(
    port: int,
    monkeypatch: pytest.MonkeyPatch,
    async_redis: redis.asyncio.Redis,
    namespace: str,
) -> None:
    # the inbox worker's path in the Rasa server: InboxWorker -> ChannelRuntime.handle ->
    # on_new_message (Rasa's turn, here the one action it predicted) -> the action server
    monkeypatch.setattr(rasa_patches, "ACTION_SERVER_RETRY_BUDGET", 0.2)
    processor = object.__new__(MessageProcessor)
    processor.domain = DOMAIN
    nlg = TemplatedNaturalLanguageGenerator(DOMAIN.responses)
    turns: list[str] = []

    async def on_new_message(message: UserMessage) -> None:
        turns.append(message.text or "")
        prediction = PolicyPrediction.for_action_name(DOMAIN, "action_handoff")
        assert message.output_channel is not None
        await processor._run_action(
            _handoff(port), _tracker(), message.output_channel, nlg, prediction
        )

    runtime = ChannelRuntime()
    runtime.on_new_message = on_new_message
    inbox = Inbox(async_redis, namespace)
    await inbox.ensure_group()
    asked = InboundMessage(
        channel="telegram",
        account="bot1",
        sender="42",
        message_id="m1",
        text="I want to speak to a person",
        received_at=time.time(),
    )
    await inbox.accept([asked])
    worker = InboxWorker(
        async_redis,
        runtime.handle,
        namespace,
        block_ms=10,
        max_failures=2,
        base_delay=0.01,
        max_delay=0.01,
    )
    assert await worker.run_once() == 1
    assert turns == ["I want to speak to a person"] * 2  # tried again, then given up
    assert await inbox.pending_count() == 0
    assert await async_redis.xlen(f"{namespace}:outbox") == 0
    [(_, dead)] = await async_redis.xrange(f"{namespace}:inbox:dead")
    assert "I want to speak to a person" in dead["message"]
    assert dead["reason"].startswith(
        "failed 2 time(s): ActionServerUnreachableError: action server unreachable: "
        "'action_handoff'"
    )
