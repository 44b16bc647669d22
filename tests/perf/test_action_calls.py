"""What a custom action's call costs the Rasa server: no domain unless the action reads it,
and one kept-alive connection to the action server (bot.rasa_patches; docs/performance.md).

Issue 12: Rasa sent the whole domain with every action call and opened a new aiohttp session
(a new TCP connection) for each. The action server here is a small aiohttp app on a loopback
port answering like rasa-sdk's webhook, which notes each request's connection (the client's
address and port) and what came with it.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig, read_endpoint_config
from rasa_sdk import Action
from rasa_sdk.forms import FormValidationAction

import actions
from bot import rasa_patches

from .conftest import StandInActionServer

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DOMAIN = Domain.load(str(ROOT / "responses"))
ANSWER = {"events": [{"event": "slot", "name": "case_id", "value": "case-1"}], "responses": []}


pytestmark = pytest.mark.usefixtures("patched")


class ActionServer(StandInActionServer):
    """A stand-in action server that notes each request and the connection it came on."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.requests: list[web.Request] = []
        self.bodies: list[dict[str, Any]] = []
        self.connections: list[Any] = []  # each request's client (address, port)
        self.reset_next = False  # drop the next request's connection without an answer

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        self.bodies.append(await request.json())
        assert request.transport is not None
        self.connections.append(request.transport.get_extra_info("peername"))
        if self.reset_next:
            self.reset_next = False
            request.transport.abort()  # as a server closing a kept-alive connection does
            return web.Response()
        return web.json_response(ANSWER)


@pytest.fixture
async def server(port: int) -> AsyncIterator[ActionServer]:
    started = ActionServer(port)
    await started.start()
    yield started
    await started.stop()


def _endpoint(port: int, monkeypatch: pytest.MonkeyPatch) -> EndpointConfig:
    """The action endpoint of the project's endpoints.yml, at ``port``."""
    monkeypatch.setenv("ACTION_SERVER_URL", f"http://127.0.0.1:{port}/webhook")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1")  # the stores' (not read here)
    endpoint = read_endpoint_config(str(ROOT / "endpoints.yml"), "action_endpoint")
    assert endpoint is not None
    return endpoint


async def _run(name: str, endpoint: EndpointConfig) -> list[Any]:
    tracker = DialogueStateTracker.from_events("telegram:1:2", [], slots=PROJECT_DOMAIN.slots)
    nlg = TemplatedNaturalLanguageGenerator(PROJECT_DOMAIN.responses)
    action = RemoteAction(name, endpoint)
    events: list[Any] = await asyncio.wait_for(
        action.run(CollectingOutputChannel(), nlg, tracker, PROJECT_DOMAIN), timeout=10
    )
    return events


# -- the domain only for the actions that read it -------------------------------------------


def _uses_domain(cls: type) -> bool:
    """Whether a method of ``cls`` or of its bases in ``actions`` reads its ``domain``."""
    for base in cls.__mro__:
        if not base.__module__.startswith("actions."):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(base)))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            names = {arg.arg for arg in function.args.args} & {"domain", "domain_slots"}
            body = ast.Module(body=function.body, type_ignores=[])
            if any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(body)):
                return True
    return False


def _domain_readers() -> dict[str, bool]:
    """Each custom action of ``actions/`` by name: whether it reads the domain it is sent.

    rasa-sdk's FormValidationAction reads the form's slots from the domain itself.
    """
    found: dict[str, bool] = {}
    for module in pkgutil.iter_modules(actions.__path__, "actions."):
        for _, cls in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(cls, Action) and cls.__module__ == module.name:
                name = cast(Action, object.__new__(cls)).name()  # no __init__: no dependencies
                found[name] = issubclass(cls, FormValidationAction) or _uses_domain(cls)
    return found


def test_every_action_that_reads_the_domain_is_sent_it_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readers = _domain_readers()
    custom = {a for a in PROJECT_DOMAIN.user_actions if a not in PROJECT_DOMAIN.responses}
    assert set(readers) == custom  # every custom action of the domain, and only those
    assert {name for name, reads in readers.items() if reads} >= {"validate_report_form"}
    endpoint = _endpoint(1, monkeypatch)
    tracker = DialogueStateTracker.from_events("telegram:1:2", [], slots=PROJECT_DOMAIN.slots)
    for name, reads in readers.items():
        sent = RemoteAction(name, endpoint)._action_call_format(tracker, PROJECT_DOMAIN)
        assert ("domain" in sent) == reads, name
        if reads:
            assert sent["domain"] == PROJECT_DOMAIN.as_dict()


async def test_the_request_carries_the_domain_only_for_a_form_validation(
    port: int, server: ActionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = _endpoint(port, monkeypatch)
    await _run("action_answer", endpoint)
    await _run("validate_report_form", endpoint)
    answer, validation = server.bodies
    assert answer["next_action"] == "action_answer" and "domain" not in answer
    assert validation["domain"]["forms"]["report_form"]


def test_without_the_option_every_action_gets_the_domain() -> None:
    # Rasa's default, which our call format keeps
    endpoint = EndpointConfig("http://127.0.0.1:1/webhook")
    tracker = DialogueStateTracker.from_events("telegram:1:2", [], slots=PROJECT_DOMAIN.slots)
    sent = RemoteAction("action_answer", endpoint)._action_call_format(tracker, PROJECT_DOMAIN)
    assert "domain" in sent


# -- one kept-alive connection ---------------------------------------------------------------


async def test_action_calls_share_one_connection(
    port: int, server: ActionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = _endpoint(port, monkeypatch)
    for _ in range(3):
        assert await _run("action_answer", endpoint) == [SlotSet("case_id", "case-1")]
    assert len(server.connections) == 3
    assert len(set(server.connections)) == 1


async def test_concurrent_calls_are_all_answered_and_their_connections_kept(
    port: int, server: ActionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = _endpoint(port, monkeypatch)
    await asyncio.gather(*(_run("action_answer", endpoint) for _ in range(4)))
    opened = set(server.connections)
    await asyncio.gather(*(_run("action_answer", endpoint) for _ in range(4)))
    assert len(server.connections) == 8
    assert set(server.connections) == opened  # the second round reused the first's


async def test_the_token_headers_and_credentials_go_with_every_call(
    port: int, server: ActionServer
) -> None:
    endpoint = EndpointConfig(
        f"http://127.0.0.1:{port}/webhook",
        headers={"X-Council": "demo"},
        basic_auth={"username": "rasa", "password": "pw"},
        token="secret",
    )
    for _ in range(2):
        await _run("action_answer", endpoint)
    assert len(set(server.connections)) == 1
    expected = aiohttp.BasicAuth("rasa", "pw").encode()
    for request in server.requests:
        assert request.query["token"] == "secret"
        assert request.headers["X-Council"] == "demo"
        assert request.headers["Authorization"] == expected
        assert request.headers["Content-Type"] == "application/json"


async def test_an_action_server_restarted_between_two_calls_is_reached(
    port: int, server: ActionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = _endpoint(port, monkeypatch)
    await _run("action_answer", endpoint)
    await server.stop()
    await server.start()
    assert await _run("action_answer", endpoint) == [SlotSet("case_id", "case-1")]
    assert len(server.bodies) == 2  # each call reached it once
    assert len(set(server.connections)) == 2


async def test_a_kept_alive_connection_reset_by_the_server_is_retried(
    port: int, server: ActionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = _endpoint(port, monkeypatch)
    await _run("action_answer", endpoint)
    server.reset_next = True
    assert await _run("action_answer", endpoint) == [SlotSet("case_id", "case-1")]
    first, reset, retried = server.connections
    assert reset == first  # the kept connection was used, and dropped
    assert retried != first


async def test_other_endpoints_keep_a_session_per_request(port: int, server: ActionServer) -> None:
    # Rasa's other HTTP endpoints (NLG, model server...) are not action calls: unchanged
    endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
    for _ in range(2):
        assert await endpoint.request(json={"next_action": "x"}) == ANSWER
    assert len(set(server.connections)) == 2


async def test_closing_the_sessions_closes_the_connection(
    port: int, server: ActionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = _endpoint(port, monkeypatch)
    await _run("action_answer", endpoint)
    await rasa_patches.close_action_sessions()
    await _run("action_answer", endpoint)  # a new session, so a new connection
    assert len(set(server.connections)) == 2
