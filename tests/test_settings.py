"""Settings read once (issue 11 item 4): one typed object, checked at start, one reader."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest

from bot import settings
from bot.errors import ConfigError
from bot.settings import DEFAULT_PROFILE, Settings

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "bot/settings.py": "the one place that reads the environment",
    "bot/nlu/embedder.py": "sets HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE for the libraries it loads",
}
"""Modules that may touch ``os.environ``, and why."""

_ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _environment_uses(text: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(text, name)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in _ENVIRONMENT_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in {"os", "posix"}
        ):
            found.append((node.lineno, f"{name}:{node.lineno}: os.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module in {"os", "posix"}:
            names = sorted({alias.name for alias in node.names} & _ENVIRONMENT_NAMES)
            found += [(node.lineno, f"{name}:{node.lineno}: from os import {n}") for n in names]
    return [use for _, use in sorted(found)]


def test_no_module_reads_the_environment_on_its_own() -> None:
    modules = [*ROOT.glob("bot/**/*.py"), *ROOT.glob("actions/**/*.py")]
    assert len(modules) > 50
    readers = [
        use
        for module in modules
        if (name := module.relative_to(ROOT).as_posix()) not in ALLOWED
        for use in _environment_uses(module.read_text(encoding="utf-8"), name)
    ]
    assert readers == [], "read settings with bot.settings.current() instead"


def test_the_scan_finds_every_way_of_reading() -> None:
    text = (
        "import os\n"
        "from os import getenv\n"
        "a = os.environ.get('A')\n"
        "b = os.getenv('B')\n"
        "os.environ.update({'C': 'c'})\n"
        "d = dict(os.environ)\n"
    )
    assert _environment_uses(text, "m.py") == [
        "m.py:2: from os import getenv",
        "m.py:3: os.environ",
        "m.py:4: os.getenv",
        "m.py:5: os.environ",
        "m.py:6: os.environ",
    ]


def test_defaults() -> None:
    read = Settings.from_env({})
    assert read.redis_url == "" and read.namespace == "cr"
    assert read.profile_path == DEFAULT_PROFILE
    assert read.today is None and read.public_url == ""
    assert (read.missed_bin_retention_days, read.audit_retention_days) == (90, 365)
    assert (read.handoff_retention_days, read.failed_message_retention_days) == (365, 30)
    assert read.internal_host == "127.0.0.1" and read.rasa_url == "http://127.0.0.1:5005"
    assert read.cookie_secure and read.trusted_proxies == ()
    assert (read.web_host, read.web_port) == ("127.0.0.1", 8080)
    assert read.sla_file is None and read.test_conversations is None


def test_values_are_typed() -> None:
    read = Settings.from_env(
        {
            "REDIS_URL": " redis://:pw@10.0.0.2:6379/1 ",
            "COUNCIL_NAMESPACE": "north",
            "COUNCIL_PROFILE": "/etc/council/north.yml",
            "COUNCIL_TODAY": "2027-02-28",
            "COUNCIL_HANDOFF_RETENTION_DAYS": "730",
            "COUNCIL_COOKIE_SECURE": "0",
            "COUNCIL_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16",
            "COUNCIL_WEB_PORT": "9000",
            "COUNCIL_INTERNAL_HOST": "10.20.0.5",
            "RASA_URL": "http://10.20.0.5:5005/",
            "RASA_AUTH_TOKEN": "rasa-token",
            "COUNCIL_SLA_FILE": "/etc/council/sla.json",
        }
    )
    assert read.redis_url == "redis://:pw@10.0.0.2:6379/1"
    assert read.namespace == "north"
    assert read.profile_path == Path("/etc/council/north.yml")
    assert read.today == date(2027, 2, 28)
    assert read.handoff_retention_days == 730
    assert read.cookie_secure is False
    assert read.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16")
    assert read.web_port == 9000
    assert read.internal_host == "10.20.0.5"
    assert read.rasa_url == "http://10.20.0.5:5005"
    assert read.sla_file == Path("/etc/council/sla.json")
    assert sorted(read.secrets()) == ["pw", "rasa-token"]
    assert "pw" not in repr(read) and "rasa-token" not in repr(read)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("COUNCIL_TODAY", "29/12/2026"),
        ("COUNCIL_MISSED_BIN_RETENTION_DAYS", "forever"),
        ("COUNCIL_AUDIT_RETENTION_DAYS", "0"),
        ("COUNCIL_HANDOFF_RETENTION_DAYS", "-1"),
        ("COUNCIL_FAILED_MESSAGE_RETENTION_DAYS", "a month"),
        ("COUNCIL_COOKIE_SECURE", "yes"),
        ("COUNCIL_TRUSTED_PROXIES", "proxy.example"),
        ("COUNCIL_WEB_PORT", "eighty"),
        ("COUNCIL_PUBLIC_URL", "bins.example.gov.uk"),
        ("RASA_URL", "127.0.0.1:5005"),
        ("COUNCIL_HEALTH_TOKEN", "short"),
        ("COUNCIL_INTERNAL_HOST", "0.0.0.0"),
        ("COUNCIL_INTERNAL_HOST", "8.8.8.8"),
        ("COUNCIL_INTERNAL_HOST", "rasa.internal"),
        ("COUNCIL_SLA_WEBHOOK", "ftp://hooks.example"),
        ("COUNCIL_SAFEGUARDING_WEBHOOK", "hooks.example/alert"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert (caught.value.path, caught.value.key) == ("environment", variable)


def test_a_redis_password_never_reaches_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": "http://user:hunter2@redis.example"})
    assert "hunter2" not in str(caught.value)


def test_the_environment_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNCIL_NAMESPACE", "first")
    assert settings.current().namespace == "first"
    monkeypatch.setenv("COUNCIL_NAMESPACE", "second")
    assert settings.current().namespace == "first"  # kept: read at start, passed down
    assert settings.current() is settings.current()
    assert settings.current().environ["COUNCIL_NAMESPACE"] == "first"  # a snapshot
    with pytest.raises(TypeError):
        settings.current().environ["COUNCIL_NAMESPACE"] = "third"  # type: ignore[index]


def test_tests_inject_settings() -> None:
    injected = Settings(namespace="injected")
    settings.use(injected)
    assert settings.current() is injected
    assert settings.use(None) is injected


def test_every_variable_is_in_the_one_table() -> None:
    source = (ROOT / "bot" / "settings.py").read_text(encoding="utf-8")
    variables = set(re.findall(r'"((?:COUNCIL|RASA|REDIS)_[A-Z_]+)"', source))
    assert len(variables) >= 20
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([A-Z_]+)`", table, flags=re.MULTILINE))
    assert variables - rows == set()
