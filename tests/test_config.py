import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import check_config, check_endpoints, load_yaml
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_project_config_is_valid() -> None:
    config = check_config(ROOT / "config.yml", import_components=False)
    names = [item["name"] for item in config["pipeline"]]
    assert "bot.safeguarding.SafeguardingGuard" in names


def test_project_endpoints_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook")
    endpoints = check_endpoints(ROOT / "endpoints.yml")
    assert endpoints["tracker_store"]["url"] == "redis://127.0.0.1:6379/0"


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("language: en\npipeline:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.path == str(path)
    assert "line" in info.value.reason


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("pipeline: []\npolicies: []\n", "language"),
        ("language: en\npipeline: []\npolicies: [{name: RulePolicy}]\n", "pipeline"),
        ("language: en\npipeline: [{}]\npolicies: [{name: RulePolicy}]\n", "pipeline[0].name"),
        (
            "language: en\npipeline:\n  - name: bot.nlu.featurizer.SentenceEmbeddingFeaturizer\n"
            "    model: m\n    model_sha256: nothex\npolicies: [{name: RulePolicy}]\n",
            "pipeline[0].model_sha256",
        ),
        (
            "language: en\npipeline:\n  - name: bot.nlu.featurizer.SentenceEmbeddingFeaturizer\n"
            f"    model: m\n    model_sha256: {'a' * 64}\n    batch_size: 0\n"
            "policies: [{name: RulePolicy}]\n",
            "pipeline[0].batch_size",
        ),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        check_config(path, import_components=False)
    assert info.value.key == key
    assert str(path) in str(info.value)


def test_unknown_component_class_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "language: en\npipeline: [{name: bot.nowhere.Thing}]\npolicies: [{name: RulePolicy}]\n"
    )
    with pytest.raises(ConfigError, match=r"pipeline\[0\]\.name: cannot import bot.nowhere"):
        check_config(path)


ENDPOINTS = """
action_endpoint:
  url: http://127.0.0.1:5055/webhook
tracker_store:
  type: {tracker}
  url: ${{REDIS_URL}}
lock_store:
  type: bot.state.RedisUrlLockStore
  url: ${{REDIS_URL}}
"""


def test_in_memory_tracker_store_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    path = tmp_path / "endpoints.yml"
    path.write_text(ENDPOINTS.format(tracker="in_memory"))
    with pytest.raises(ConfigError) as info:
        check_endpoints(path)
    assert info.value.key == "tracker_store.type"


def test_unset_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    path = tmp_path / "endpoints.yml"
    path.write_text(ENDPOINTS.format(tracker="bot.state.RedisUrlTrackerStore"))
    with pytest.raises(ConfigError, match="REDIS_URL is not set") as info:
        check_endpoints(path)
    assert info.value.key == "tracker_store.url"


def test_checking_the_project_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # what `make run` / `make chat` do before their own start-up lines (Makefile's environment)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        REDIS_URL="redis://127.0.0.1:6379/0",
        ACTION_SERVER_URL="http://127.0.0.1:5055/webhook",
    )
    check = (
        "from pathlib import Path; from bot.config import check_config, check_endpoints; "
        "check_config(Path('config.yml')); check_endpoints(Path('endpoints.yml'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
