"""Channel configuration: the ``credentials.yml`` sections and their ``${VAR}`` secrets.

Each channel's section lists the council's accounts on it (numbers, pages, user ids, bots).
Secrets are never written in the file: values are ``"${VAR}"`` references to the environment.
Quote them in ``credentials.yml``: Rasa expands *unquoted* ``${VAR}`` itself and fails with a
generic message, while a quoted one reaches :class:`Section`, which names the missing variable
(:class:`~bot.errors.MissingSecretError`) and the file and key of any other mistake
(:class:`~bot.errors.ConfigError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bot import settings
from bot.errors import ConfigError, MissingSecretError

__all__ = ["DEFAULT_CREDENTIALS", "Section", "expand", "load_credentials"]

DEFAULT_CREDENTIALS = "credentials.yml"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def expand(value: str, env: Mapping[str, str], path: str, key: str) -> str:
    """Replace every ``${VAR}`` in ``value`` with the environment's value.

    Raises:
        MissingSecretError: A referenced variable is unset or empty.
        ConfigError: A reference is not a valid variable name.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _NAME.match(name):
            raise ConfigError(path, key, f"${{{name}}} is not a valid environment variable name")
        found = env.get(name, "")
        if not found:
            raise MissingSecretError(name, f"{path}: {key}")
        return found

    return _VARIABLE.sub(substitute, value)


def load_credentials(path: str | Path = DEFAULT_CREDENTIALS) -> dict[str, Any]:
    """Read a credentials file (no expansion: :class:`Section` expands what it uses).

    Raises:
        ConfigError: The file is missing, is not YAML, or is not a mapping.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "", f"not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "must be a mapping of channel sections")
    return data


class Section:
    """One mapping of a credentials file, read with clear errors.

    Args:
        data: The mapping (``None`` counts as empty).
        path: The file it came from (for error messages).
        key: Its dotted key inside the file.
        env: Where ``${VAR}`` values come from (default: this process' settings'
            environment, :attr:`bot.settings.Settings.environ`).
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None,
        path: str = DEFAULT_CREDENTIALS,
        key: str = "",
        env: Mapping[str, str] | None = None,
    ) -> None:
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError(path, key, "must be a mapping")
        self.data: Mapping[str, Any] = data or {}
        self.path = path
        self.key = key
        self.env: Mapping[str, str] = settings.current().environ if env is None else env

    def where(self, name: str) -> str:
        """The dotted key of ``name`` inside this section."""
        return f"{self.key}.{name}" if self.key else name

    def only(self, allowed: Iterable[str]) -> None:
        """Refuse keys other than ``allowed`` (catches typos such as ``auth_tokn``)."""
        allowed = set(allowed)
        for name in self.data:
            if name not in allowed:
                raise ConfigError(
                    self.path,
                    self.where(str(name)),
                    f"unknown key (expected one of: {', '.join(sorted(allowed))})",
                )

    def text(self, name: str, default: str | None = None) -> str:
        """A string value, ``${VAR}`` expanded; required unless ``default`` is given."""
        value = self.data.get(name)
        if value is None or value == "":
            if default is None:
                raise ConfigError(self.path, self.where(name), "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(self.path, self.where(name), "must be a string")
        return expand(str(value), self.env, self.path, self.where(name))

    def secret(self, name: str) -> str:
        """A required secret, normally a quoted ``"${VAR}"`` reference.

        A literal is accepted too: Rasa has already expanded an unquoted reference by the time
        the section reaches us, so the two cannot be told apart.
        """
        return self.text(name)

    def flag(self, name: str, default: bool) -> bool:
        """A boolean value."""
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(self.path, self.where(name), "must be true or false")
        return value

    def number(self, name: str, default: float) -> float:
        """A positive number."""
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(self.path, self.where(name), "must be a positive number")
        return float(value)

    def strings(self, name: str) -> dict[str, str]:
        """A mapping of names to strings (``${VAR}`` expanded)."""
        value = self.data.get(name) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(self.path, self.where(name), "must be a mapping")
        inner = Section(value, self.path, self.where(name), self.env)
        return {str(item): inner.text(str(item)) for item in value}

    def accounts(self) -> list[Section]:
        """The ``accounts`` list: at least one mapping."""
        value = self.data.get("accounts")
        if not isinstance(value, list) or not value:
            raise ConfigError(self.path, self.where("accounts"), "must list at least one account")
        return [
            Section(item, self.path, f"{self.where('accounts')}[{index}]", self.env)
            for index, item in enumerate(value)
        ]
