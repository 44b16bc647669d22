"""Editors' changes to the wording residents read: Rasa responses edited in the console.

Every sentence a resident reads is a variation of a response in ``responses/*.yml``
(``utter_*``, with ``channel:`` and ``condition:`` variations, Welsh ones conditioned on the slot
``language``). Editors change a variation's text in the console (:mod:`bot.web.responses_editor`)
with the knowledge base's versions, approval and audit (:class:`bot.versioning.VersionedStore`,
keys under ``{ns}:responses:``); the Rasa server's generator (:class:`bot.responses.
CouncilResponses`) serves the published text instead of the shipped one within seconds, and
the shipped text again when the change is withdrawn. Only the text changes: conditions,
channels and buttons stay as shipped (they are the dialogue's contract with the actions).

A variation is named by its response and its conditions (:func:`variation_ids`):
``utter_greet``, ``utter_greet.language-cy``, ``utter_handoff_holding.language-cy.opens-today``,
``utter_x.channel-sms``; a second variation with the same conditions gets ``.2``.

Before an edited text is stored it must pass :func:`response_problems`: the knowledge base's
plain-text rules (no markup; only ``https://``, ``tel:`` and ``mailto:`` links), the SMS and
WhatsApp length limits for those channels' variations, and its ``{variables}``: each must be
one the response can be given (the profile's values or one the shipped variations of that
response use), and none that the shipped variation uses may be dropped (a reference number, the
safeguarding contacts, the list of addresses...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio
import yaml

from bot.knowledge.model import SHORT_CHANNELS, text_problems
from bot.versioning import VersionedStore

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGE_SLOT",
    "RESPONSES_DIR",
    "ResponseStore",
    "ResponseText",
    "Variation",
    "domain_responses",
    "fill",
    "response_problems",
    "shipped_variations",
    "variables_in",
    "variation_ids",
    "variation_language",
]

RESPONSES_DIR = Path(__file__).resolve().parent.parent / "responses"
"""The domain files of this project."""
LANGUAGE_SLOT = "language"
"""The slot that holds a conversation's language (:data:`bot.nlu.language.LANGUAGE`)."""
DEFAULT_LANGUAGE = "en"
"""The language of a variation without a language condition."""

# How Rasa finds variables in a response text (rasa.core.nlg.interpolator).
_VARIABLE = re.compile(r"{([^\n{}]+?)}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_SLUG = re.compile(r"[^a-z0-9_]+")


def variation_language(variation: Mapping[str, Any]) -> str:
    """The language a response variation is written in: its ``language`` condition, else English."""
    for condition in variation.get("condition") or ():
        if isinstance(condition, Mapping) and condition.get("name") == LANGUAGE_SLOT:
            return str(condition.get("value"))
    return DEFAULT_LANGUAGE


def _conditions(variation: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = [
        (str(c.get("name")), str(c.get("value")))
        for c in variation.get("condition") or ()
        if isinstance(c, Mapping)
    ]
    if variation.get("channel"):
        found.append(("channel", str(variation["channel"])))
    return sorted(found)


def variation_ids(name: str, variations: Sequence[Mapping[str, Any]]) -> list[str]:
    """The stable names of a response's variations, in order (see the module docstring)."""
    ids: list[str] = []
    for variation in variations:
        parts = [name] + [
            f"{_SLUG.sub('-', k.lower())}-{_SLUG.sub('-', v.lower())}"
            for k, v in _conditions(variation)
        ]
        base = ".".join(parts)
        candidate, n = base, 1
        while candidate in ids:
            n += 1
            candidate = f"{base}.{n}"
        ids.append(candidate)
    return ids


def fill(text: str, values: Mapping[str, Any]) -> str:
    """``text`` with the ``{variables}`` named in ``values`` filled in (others left as written)."""
    return _VARIABLE.sub(lambda m: str(values.get(m.group(1).strip(), m.group(0))), text)


def variables_in(text: str) -> list[str]:
    """The ``{variables}`` of a response text, in order, each once."""
    return list(dict.fromkeys(m.strip() for m in _VARIABLE.findall(text)))


@dataclass(frozen=True)
class Variation:
    """One variation of a shipped response.

    Attributes:
        id: Its name (:func:`variation_ids`).
        response: The response (``utter_greet``).
        group: The domain file it is in (``handoff``): the unit of second-person approval.
        text: The shipped text.
        language: ``en`` or ``cy``.
        channel: The channel it is for (empty: any).
        conditions: Its other conditions, ``(name, value)``.
        buttons: How many buttons it carries (not editable here).
    """

    id: str
    response: str
    group: str
    text: str
    language: str
    channel: str = ""
    conditions: tuple[tuple[str, str], ...] = ()
    buttons: int = 0

    @property
    def variables(self) -> list[str]:
        """The variables the shipped text uses (an edit must keep them)."""
        return variables_in(self.text)


# libyaml's parser when PyYAML was built with it (8 times faster on the domain files)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def domain_responses(folder: Path = RESPONSES_DIR) -> list[tuple[Path, dict[str, Any]]]:
    """Each domain file under ``folder`` (sorted, as Rasa reads them) with its ``responses``."""
    found = []
    for path in sorted(folder.rglob("*.yml")):
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506 (a safe loader)
        if isinstance(content, Mapping):
            found.append((path, dict(content.get("responses") or {})))
    return found


def shipped_variations(folder: Path = RESPONSES_DIR) -> dict[str, Variation]:
    """Every text variation of the responses under ``folder``, by id, in file order."""
    found: dict[str, Variation] = {}
    for path, responses in domain_responses(folder):
        for name, variations in responses.items():
            for vid, variation in zip(variation_ids(name, variations), variations, strict=True):
                if "text" not in variation:
                    continue
                found[vid] = Variation(
                    id=vid,
                    response=str(name),
                    group=path.stem,
                    text=str(variation["text"]),
                    language=variation_language(variation),
                    channel=str(variation.get("channel") or ""),
                    conditions=tuple(
                        c for c in _conditions(variation) if c[0] not in {"channel", LANGUAGE_SLOT}
                    ),
                    buttons=len(variation.get("buttons") or ()),
                )
    return found


@dataclass(frozen=True)
class ResponseText:
    """An editor's text for one response variation.

    Attributes:
        id: The variation (:func:`variation_ids`).
        text: What residents read instead of the shipped text, once published.
        group: The domain file of the response (the unit of second-person approval).
        status: ``draft``, ``published`` or ``archived`` (withdrawn: the shipped text again).
    """

    id: str
    text: str
    group: str
    status: str = "draft"

    def with_status(self, status: str) -> ResponseText:
        """A copy with another status."""
        return replace(self, status=status)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResponseText:
        """Read :meth:`to_dict` output.

        Raises:
            KeyError: A field is missing.
        """
        return cls(
            id=str(data["id"]),
            text=str(data["text"]),
            group=str(data["group"]),
            status=str(data.get("status", "draft")),
        )


def _variable_problems(text: str, allowed: set[str], required: list[str]) -> list[str]:
    problems = []
    names = variables_in(text)
    rest = _VARIABLE.sub("", text)
    if "{" in rest or "}" in rest:
        problems.append(
            "text: a { or } without its partner; write values as {name}, e.g. {council_name}"
        )
    unknown = [n for n in names if n not in allowed]
    for name in unknown:
        if not _NAME.match(name):
            problems.append(f"text: {{{name}}} is not a value name (letters, digits and _ only)")
        else:
            problems.append(
                f"text: {{{name}}} is not a value this response has; use "
                + ", ".join(f"{{{a}}}" for a in sorted(allowed))
            )
    for name in required:
        if name not in names:
            problems.append(
                f"text: {{{name}}} is missing; the shipped text gives residents this value, "
                "so the edited text must keep it"
            )
    return problems


def response_problems(
    item: ResponseText, shipped: Mapping[str, Variation], profile_values: Iterable[str]
) -> list[str]:
    """What is wrong with an edited response text (empty: it may be saved and published).

    Args:
        item: The edit.
        shipped: The shipped variations (:func:`shipped_variations`).
        profile_values: Names of the values every response may use (the council profile's).
    """
    variation = shipped.get(item.id)
    if variation is None:
        return [f"id: there is no response variation {item.id}"]
    problems = []
    if not item.text.strip():
        problems.append("text: the text must not be empty")
    if item.group != variation.group:
        problems.append(f"group: {item.id} is in {variation.group}, not {item.group}")
    limit = SHORT_CHANNELS.get(variation.channel)
    if limit is not None and len(item.text) > limit:
        problems.append(f"text: {len(item.text)} characters, at most {limit}")
    problems.extend(text_problems("text", item.text))
    allowed = set(profile_values)
    for other in shipped.values():
        if other.response == variation.response:
            allowed.update(other.variables)
    problems.extend(_variable_problems(item.text, allowed, variation.variables))
    return problems


class ResponseStore(VersionedStore[ResponseText]):
    """The editors' response texts: versions, approval, and what residents are served.

    Args:
        redis: Asyncio client with ``decode_responses=True``.
        namespace: Key namespace (``"cr"`` in production).
        shipped: The shipped variations (default: ``responses/*.yml``'s).
        profile_values: Names of the profile's values (:meth:`bot.profile.CouncilProfile.
            response_variables`); only editing needs them and ``shipped``.
        now: Wall-clock time for version records.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        namespace: str,
        *,
        shipped: Mapping[str, Variation] | None = None,
        profile_values: Iterable[str] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.shipped = dict(shipped) if shipped is not None else shipped_variations()
        values = tuple(profile_values)
        super().__init__(
            redis,
            namespace,
            "responses",
            load=ResponseText.from_dict,
            problems=lambda item: response_problems(item, self.shipped, values),
            group=lambda item: item.group,
            group_word="group",
            now=now,
        )

    async def published_texts(self) -> dict[str, str]:
        """The published texts by variation id (the others are the shipped ones)."""
        return {item.id: item.text for item in await self.all_live()}
