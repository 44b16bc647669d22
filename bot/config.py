"""Checks of ``config.yml`` and ``endpoints.yml`` that name the file and key at fault.

Rasa reports many configuration mistakes late, vaguely, or not at all (an unknown tracker store
class silently becomes an in-memory store). The launcher runs these checks first.
"""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bot import settings
from bot.errors import ConfigError

__all__ = ["check_config", "check_endpoints", "load_yaml"]

_ENV_REFERENCE = re.compile(r"\$\{([^}]+)\}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REDIS_STORES = {
    "tracker_store": "bot.state.RedisUrlTrackerStore",
    "lock_store": "bot.state.RedisUrlLockStore",
}


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping.

    Raises:
        ConfigError: The file is missing, is not valid YAML, or is not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot be read: {exc.strerror}") from exc
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(str(path), "", f"invalid YAML{where}: {problem}") from exc
    if not isinstance(content, dict):
        raise ConfigError(str(path), "", "must be a mapping of keys to values")
    return content


def _require_mapping(value: Any, path: Path, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(str(path), key, "must be a mapping")
    return value


def _import_class(dotted: str, path: Path, key: str) -> None:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        # Only whether it imports matters here; the libraries' import-time deprecation
        # warnings (SQLAlchemy 2.0 from Rasa's SQL store...) are nothing a council can act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(str(path), key, f"cannot import {module_name}: {exc}") from exc
    if not hasattr(module, class_name):
        raise ConfigError(str(path), key, f"{module_name} has no {class_name}")


def check_config(path: Path, *, import_components: bool = True) -> dict[str, Any]:
    """Check a Rasa ``config.yml`` and return its content.

    Args:
        path: The file.
        import_components: Also import every custom component (dotted name).

    Raises:
        ConfigError: naming the file and the key at fault.
    """
    config = load_yaml(path)
    if not isinstance(config.get("language"), str):
        raise ConfigError(str(path), "language", "must be a language code such as 'en'")
    for section in ("pipeline", "policies"):
        items = config.get(section)
        if not isinstance(items, list) or not items:
            raise ConfigError(str(path), section, "must be a non-empty list of components")
        for index, item in enumerate(items):
            key = f"{section}[{index}]"
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise ConfigError(str(path), f"{key}.name", "every entry needs a name")
            name = item["name"]
            if import_components and "." in name:
                _import_class(name, path, f"{key}.name")
            if name.endswith("SentenceEmbeddingFeaturizer"):
                _check_featurizer(item, path, key)
    return config


def _check_featurizer(item: Mapping[str, Any], path: Path, key: str) -> None:
    if not isinstance(item.get("model"), str) or not item["model"].strip():
        raise ConfigError(str(path), f"{key}.model", "must name a model package or folder")
    if not isinstance(item.get("model_sha256"), str) or not _SHA256.fullmatch(item["model_sha256"]):
        raise ConfigError(str(path), f"{key}.model_sha256", "must be 64 lower-case hex digits")
    batch = item.get("batch_size", 32)
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(str(path), f"{key}.batch_size", "must be a positive whole number")


def _expand(value: Any, path: Path, key: str, env: Mapping[str, str]) -> Any:
    """Expand ``${VAR}`` references the way Rasa does, failing on unset variables."""
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        variable = match.group(1)
        if variable not in env:
            raise ConfigError(str(path), key, f"environment variable {variable} is not set")
        return env[variable]

    return _ENV_REFERENCE.sub(substitute, value)


def check_endpoints(path: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Check ``endpoints.yml``: Redis-backed stores, an action server, set variables.

    Args:
        path: The file.
        env: Where ``${VAR}`` values come from: the environment the Rasa server will get
            (default: this process' settings).

    Returns:
        The content with environment references expanded.

    Raises:
        ConfigError: naming the file and the key at fault.
    """
    endpoints = load_yaml(path)
    env = settings.current().environ if env is None else env
    expanded: dict[str, Any] = {}
    for section, value in endpoints.items():
        if isinstance(value, Mapping):
            expanded[section] = {
                k: _expand(v, path, f"{section}.{k}", env) for k, v in value.items()
            }
        else:
            expanded[section] = value
    for section, required in _REDIS_STORES.items():
        store = _require_mapping(expanded.get(section), path, section)
        if store.get("type") != required:
            raise ConfigError(
                str(path),
                f"{section}.type",
                f"must be {required} (state lives in Redis; an in-memory store would lose it)",
            )
        if not isinstance(store.get("url"), str) or not store["url"]:
            raise ConfigError(str(path), f"{section}.url", "must be the Redis URL (${REDIS_URL})")
        _import_class(required, path, f"{section}.type")
    action = _require_mapping(expanded.get("action_endpoint"), path, "action_endpoint")
    if not isinstance(action.get("url"), str) or not action["url"].startswith("http"):
        raise ConfigError(str(path), "action_endpoint.url", "must be the action server's URL")
    broker = expanded.get("event_broker")
    if broker is not None:
        broker = _require_mapping(broker, path, "event_broker")
        if isinstance(broker.get("type"), str) and "." in broker["type"]:
            _import_class(broker["type"], path, "event_broker.type")
    return expanded
