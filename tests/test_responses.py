"""The Rasa server's response generator: profile values, conditions on action values, channels."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.core.nlg.generator import NaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from bot.profile import current
from bot.responses import CouncilResponses

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = Domain.from_yaml(
    yaml.safe_dump(
        {
            "version": "3.1",
            "responses": {
                "utter_hello": [
                    {"text": "Hello from {council_name} ({wanted})."},
                    {"channel": "sms", "text": "{council_short_name}: hi"},
                ],
                "utter_when": [
                    {"condition": [{"type": "slot", "name": "opens", "value": "today"}],
                     "text": "at {opens_at} today"},
                    {"text": "soon"},
                ],
            },
        }
    )
)  # fmt: skip


def _tracker(channel: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker("resident", slots=[])
    tracker.update(UserUttered("hi", input_channel=channel))
    return tracker


def test_endpoints_yml_makes_rasa_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook")
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "nlg")
    generator = NaturalLanguageGenerator.create(config, DOMAIN)
    assert isinstance(generator, CouncilResponses)
    assert generator.profile is current()


async def test_profile_values_and_the_residents_channel() -> None:
    generator = CouncilResponses(domain=DOMAIN)
    name = current().name
    # Our channels answer through Rasa's collecting output channel: the input channel decides.
    web = await generator.generate("utter_hello", _tracker("rest"), "collector", wanted="x")
    assert web is not None and web["text"] == f"Hello from {name} (x)."
    sms = await generator.generate("utter_hello", _tracker("sms"), "collector")
    assert sms is not None and sms["text"] == f"{current().short_name}: hi"


async def test_conditions_may_name_the_actions_values() -> None:
    generator = CouncilResponses(domain=DOMAIN)
    tracker = _tracker("rest")
    today = await generator.generate(
        "utter_when", tracker, "collector", opens="today", opens_at="9am"
    )
    assert today is not None and today["text"] == "at 9am today"
    later = await generator.generate("utter_when", tracker, "collector", opens="later")
    assert later is not None and later["text"] == "soon"
    assert await generator.generate("utter_nothing", tracker, "collector") is None
