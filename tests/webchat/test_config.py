"""The profile's webchat section: every mistake names the file and the key."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import ConfigError
from bot.profile import CouncilProfile
from bot.services import ROOT
from bot.webchat.config import UPLOAD_TYPES, contrast_ratio, read_section

GOOD: dict[str, Any] = {
    "council_id": "ashvale",
    "name": "Ashvale Council",
    "greeting": "Hello",
    "colours": {"primary": "#1d4f91", "on_primary": "#ffffff"},
    "pages": ["/bins*"],
    "allowed_origins": ["https://www.ashvale.gov.uk/"],
    "continue_channels": ["sms"],
    "continue_from": "+44 1234 567890",
}


def test_the_demo_and_glanfor_profiles_have_a_web_chat() -> None:
    demo = CouncilProfile.load(ROOT / "council.yml").webchat
    assert demo is not None and demo.council_id == "ashvale"
    glanfor = CouncilProfile.load(ROOT / "tests" / "data" / "profiles" / "glanfor.yml").webchat
    assert glanfor is not None and glanfor.limits.upload_types == ("image/jpeg", "image/png")


def test_a_good_section_is_read_with_defaults() -> None:
    config = read_section(GOOD, "council.yml")
    assert config is not None
    assert config.allowed_origins == ("https://www.ashvale.gov.uk",)
    assert config.continue_from == "+441234567890"
    assert config.limits.upload_types == UPLOAD_TYPES
    assert config.shows_on("/bins/missed") and not config.shows_on("/council-tax")
    assert config.allows("https://www.ashvale.gov.uk") and not config.allows("https://evil.example")
    assert read_section(None, "council.yml") is None


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"colour": {}}, "webchat.colour"),
        ({"council_id": "Ashvale Council"}, "webchat.council_id"),
        ({"colours": {"primary": "#777777", "on_primary": "#888888"}}, "webchat.colours"),
        ({"colours": {"primary": "blue"}}, "webchat.colours.primary"),
        ({"allowed_origins": ["http://www.ashvale.gov.uk"]}, "webchat.allowed_origins[0]"),
        ({"allowed_origins": ["https://www.ashvale.gov.uk/chat"]}, "webchat.allowed_origins[0]"),
        ({"pages": ["bins"]}, "webchat.pages[0]"),
        ({"continue_channels": ["telegram"]}, "webchat.continue_channels"),
        ({"continue_from": ""}, "webchat.continue_from"),
        ({"code_message": "no code here"}, "webchat.code_message"),
        ({"limits": {"max_text_chars": 0}}, "webchat.limits.max_text_chars"),
        ({"limits": {"upload_types": ["application/pdf"]}}, "webchat.limits.upload_types"),
        ({"limits": {"per_minute": 3}}, "webchat.limits.per_minute"),
    ],
)
def test_a_mistake_names_the_file_and_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        read_section({**GOOD, **change}, "council.yml")
    assert (error.value.path, error.value.key) == ("council.yml", key)


def test_loopback_origins_may_be_plain_http_for_development() -> None:
    config = read_section({**GOOD, "allowed_origins": ["http://127.0.0.1:8001"]}, "c.yml")
    assert config is not None and config.allows("http://127.0.0.1:8001")


def test_contrast_is_measured_as_wcag_does() -> None:
    assert round(contrast_ratio("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast_ratio("#1d4f91", "#ffffff"), 1) >= 4.5
