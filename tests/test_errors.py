"""Every error of the family survives pickling with its data.

Errors cross process boundaries (multiprocessing, Rasa's and Sanic's workers, logging queues),
which pickle them; an exception whose ``__init__`` takes other arguments than its message
cannot be rebuilt by ``BaseException``'s default ``__reduce__``. The family is found by walking
``CouncilError.__subclasses__()``, after importing every module of ``bot`` that defines one,
so a new subclass anywhere is covered without changing this test.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from bot.errors import CouncilError

BOT = Path(__file__).resolve().parents[1] / "bot"
_DEFINES_ERROR = re.compile(r"^class \w+\([\w.]*Error\b", re.MULTILINE)


def _import_modules_defining_errors() -> None:
    for path in sorted(BOT.rglob("*.py")):
        if "node_modules" in path.parts or not _DEFINES_ERROR.search(path.read_text()):
            continue
        parts = path.relative_to(BOT.parent).with_suffix("").parts
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))


def _family(root: type[CouncilError]) -> list[type[CouncilError]]:
    found = [root]
    for child in root.__subclasses__():
        found += _family(child)
    return found


_import_modules_defining_errors()
FAMILY = _family(CouncilError)


def _sample(name: str, annotation: Any) -> Any:
    """A distinctive value of the parameter's type, so a mix-up between fields shows."""
    if annotation is int:
        return len(name) + 40
    if typing.get_origin(annotation) is list:
        return [f"{name} one", f"{name} two"]
    return f"the {name}"


def _instance(cls: type[CouncilError]) -> CouncilError:
    hints = typing.get_type_hints(cls.__init__)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    args = [_sample(p.name, hints.get(p.name, str)) for p in parameters if p.kind != p.VAR_KEYWORD]
    return cls(*args)


def test_the_family_is_found() -> None:
    names = {cls.__name__ for cls in FAMILY}
    assert {"ConfigError", "PublishBlockedError", "ServiceFailedError"} <= names


@pytest.mark.parametrize("cls", FAMILY, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_error_round_trips_through_pickle(cls: type[CouncilError], protocol: int) -> None:
    error = _instance(cls)
    error.add_note("raised while testing")  # extra state set after construction
    copy = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
    assert copy.__notes__ == ["raised while testing"]


def test_data_attributes_come_back_by_name() -> None:
    from bot.errors import ConfigError

    copy = pickle.loads(pickle.dumps(ConfigError("council.yml", "teams[0].name", "missing")))
    assert (copy.path, copy.key, copy.reason) == ("council.yml", "teams[0].name", "missing")
    assert str(copy) == "council.yml: teams[0].name: missing"
