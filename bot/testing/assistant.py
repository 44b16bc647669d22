"""The real assistant, started for tests, and conversations with it over the REST channel."""

from __future__ import annotations

import functools
import json
import secrets
import signal
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.demo import seed
from bot.services import (
    ROOT,
    Service,
    action_server_argv,
    base_env,
    free_port,
    rasa_server_argv,
    start_service,
)
from bot.train import train

__all__ = ["Assistant", "Conversation", "Reply", "running_assistant"]


@dataclass(frozen=True)
class Reply:
    """One message from the bot."""

    text: str
    buttons: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Assistant:
    """A running Rasa server and action server in a Redis namespace of their own."""

    rasa_url: str
    auth_token: str
    namespace: str
    redis_url: str
    tracker_prefix: str
    services: dict[str, Service] = field(default_factory=dict, repr=False)
    launchers: dict[str, Callable[[], Service]] = field(default_factory=dict, repr=False)

    def kill(self, name: str) -> None:
        """Kill a server (``rasa`` or ``actions``) at once, as a crash would (SIGKILL)."""
        process = self.services[name].process
        process.kill()
        process.wait()

    def pause(self, name: str) -> None:
        """Freeze a server (SIGSTOP): it accepts connections but answers nothing."""
        self.services[name].process.send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """Let a paused server go on (SIGCONT)."""
        self.services[name].process.send_signal(signal.SIGCONT)

    def restart(self, name: str) -> None:
        """Start a killed or stopped server again, as before, and wait until it is ready."""
        self.services[name].stop()
        self.services[name] = self.launchers[name]()

    def post(self, path: str, payload: Any) -> Any:
        """POST JSON to the Rasa server and return the decoded answer."""
        request = urllib.request.Request(  # noqa: S310 (loopback URL we built)
            f"{self.rasa_url}{path}",
            json.dumps(payload).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return json.load(response)

    def tracker(self, sender: str) -> dict[str, Any]:
        """Return the conversation's tracker from Rasa's HTTP API."""
        url = f"{self.rasa_url}/conversations/{sender}/tracker?token={self.auth_token}"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
            tracker: dict[str, Any] = json.load(response)
            return tracker

    def conversation(self, sender: str | None = None) -> Conversation:
        """Start a conversation with a new (or the given) resident."""
        return Conversation(self, sender or f"resident-{uuid.uuid4().hex[:10]}")


@dataclass
class Conversation:
    """One resident talking to the assistant over the REST channel.

    ``chat.say("when is my bin day?")`` returns the bot's replies; ``chat.replies`` keeps them.
    """

    assistant: Assistant
    sender: str
    replies: list[Reply] = field(default_factory=list)

    def say(self, text: str) -> list[Reply]:
        """Send ``text`` as the resident and return what the bot answered."""
        answer = self.assistant.post(
            "/webhooks/rest/webhook", {"sender": self.sender, "message": text}
        )
        replies = [Reply(item.get("text", ""), item.get("buttons", [])) for item in answer]
        self.replies.extend(replies)
        return replies

    def texts(self, text: str) -> str:
        """Send ``text`` and return the bot's replies joined into one string."""
        return "\n".join(reply.text for reply in self.say(text))

    def tracker(self) -> dict[str, Any]:
        """This conversation's tracker."""
        return self.assistant.tracker(self.sender)


@functools.cache
def _session_model() -> Path:
    """The model, trained (or found up to date) once per test process.

    The model does not depend on the council profile (its words are filled in when replies are
    sent), so every module of a session, under any ``--profile``, shares it; asking Rasa again
    for each module costs a minute of CPU even when nothing changed.
    """
    return train()


@contextmanager
def running_assistant(
    redis_url: str,
    namespace: str,
    log_dir: Path,
    *,
    credentials: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Assistant]:
    """Train if needed, then run the action server and Rasa server on free loopback ports.

    Args:
        redis_url: The Redis every process uses.
        namespace: The key namespace (``COUNCIL_NAMESPACE``) of this run.
        log_dir: Where the servers' output goes (shown when they fail).
        credentials: The channels to open (default: ``credentials.demo.yml``, REST only).
        env: More environment for both servers (channel secrets, for example).
    """
    model = _session_model()
    seed(redis_url, namespace)
    tracker_prefix = "t" + uuid.uuid4().hex[:10]
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    endpoints["tracker_store"]["key_prefix"] = tracker_prefix
    endpoints["lock_store"]["key_prefix"] = tracker_prefix
    log_dir.mkdir(parents=True, exist_ok=True)
    endpoints_path = log_dir / "endpoints.yml"
    endpoints_path.write_text(yaml.safe_dump(endpoints))
    credentials_path = credentials or ROOT / "credentials.demo.yml"

    actions_port, rasa_port = free_port(), free_port()
    token = secrets.token_urlsafe(16)
    server_env = base_env(
        **{
            **(env or {}),
            "REDIS_URL": redis_url,
            "COUNCIL_NAMESPACE": namespace,
            "ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}/webhook",
            "RASA_URL": f"http://127.0.0.1:{rasa_port}",
            "RASA_AUTH_TOKEN": token,
            "COUNCIL_TODAY": "2026-11-23",
        }
    )
    launchers: dict[str, Callable[[], Service]] = {
        "actions": lambda: start_service(
            "actions",
            action_server_argv(actions_port),
            ready_url=f"http://127.0.0.1:{actions_port}/health",
            env=server_env,
            log_dir=log_dir,
        ),
        "rasa": lambda: start_service(
            "rasa",
            rasa_server_argv(
                model=model,
                port=rasa_port,
                credentials=credentials_path,
                endpoints=endpoints_path,
                auth_token=token,
            ),
            ready_url=f"http://127.0.0.1:{rasa_port}/status?token={token}",
            env=server_env,
            log_dir=log_dir,
            timeout=300,
        ),
    }
    assistant = Assistant(
        server_env["RASA_URL"], token, namespace, redis_url, tracker_prefix, launchers=launchers
    )
    try:
        for name, launch in launchers.items():  # the actions first: Rasa calls them
            assistant.services[name] = launch()
        yield assistant
    finally:
        for service in reversed(assistant.services.values()):
            service.stop()
