"""The real assistant, started for tests, and conversations with it over the REST channel."""

from __future__ import annotations

import json
import secrets
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.demo import seed
from bot.services import (
    ROOT,
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


@contextmanager
def running_assistant(redis_url: str, namespace: str, log_dir: Path) -> Iterator[Assistant]:
    """Train if needed, then run the action server and Rasa server on free loopback ports.

    Args:
        redis_url: The Redis every process uses.
        namespace: The key namespace (``COUNCIL_NAMESPACE``) of this run.
        log_dir: Where the servers' output goes (shown when they fail).
    """
    model = train()
    seed(redis_url, namespace)
    tracker_prefix = "t" + uuid.uuid4().hex[:10]
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    endpoints["tracker_store"]["key_prefix"] = tracker_prefix
    endpoints["lock_store"]["key_prefix"] = tracker_prefix
    log_dir.mkdir(parents=True, exist_ok=True)
    endpoints_path = log_dir / "endpoints.yml"
    endpoints_path.write_text(yaml.safe_dump(endpoints))
    credentials_path = ROOT / "credentials.demo.yml"

    actions_port, rasa_port = free_port(), free_port()
    token = secrets.token_urlsafe(16)
    env = base_env(
        REDIS_URL=redis_url,
        COUNCIL_NAMESPACE=namespace,
        ACTION_SERVER_URL=f"http://127.0.0.1:{actions_port}/webhook",
        RASA_URL=f"http://127.0.0.1:{rasa_port}",
        RASA_AUTH_TOKEN=token,
        COUNCIL_TODAY="2026-11-23",
    )
    actions = start_service(
        "actions",
        action_server_argv(actions_port),
        ready_url=f"http://127.0.0.1:{actions_port}/health",
        env=env,
        log_dir=log_dir,
    )
    try:
        rasa = start_service(
            "rasa",
            rasa_server_argv(
                model=model,
                port=rasa_port,
                credentials=credentials_path,
                endpoints=endpoints_path,
                auth_token=token,
            ),
            ready_url=f"http://127.0.0.1:{rasa_port}/status?token={token}",
            env=env,
            log_dir=log_dir,
            timeout=300,
        )
        try:
            yield Assistant(env["RASA_URL"], token, namespace, redis_url, tracker_prefix)
        finally:
            rasa.stop()
    finally:
        actions.stop()
