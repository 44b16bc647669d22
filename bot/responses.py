"""Every sentence a resident reads, rendered from the domain's responses (``responses/*.yml``).

:class:`CouncilResponses` is the Rasa server's natural language generator (``nlg: type:
bot.responses.CouncilResponses`` in ``endpoints.yml``). It is Rasa's templated generator with
three additions:

- Every response may use the council profile's values (``{council_name}``, ``{borough}``,
  ``{contact_phone}``, ``{safeguarding_contacts}``...: :meth:`CouncilProfile.response_variables
  <bot.profile.CouncilProfile.response_variables>`), so the wording is the editors' and the
  facts are the profile's.
- A variation's ``condition`` may name a value the action passed (``dispatcher.utter_message(
  response="utter_handoff_holding", opens="tomorrow", ...)``) as well as a slot, so one response
  holds all its cases, each in words editors can change.
- ``channel:`` variations are picked by the channel the resident wrote on (the tracker's latest
  input channel: ``whatsapp``, ``sms``, ``telegram``...), not by Rasa's output channel, which is
  the same collecting channel for all of ours.
- A variation whose ``condition`` names the slot ``language`` (``{type: slot, name: language,
  value: cy}``) is in that language; the others are in English. A conversation in Welsh (slot
  ``language`` = ``cy``, see :mod:`bot.nlu.language`) is answered only from the Welsh
  variations, with the same conditions and channels among them; a response without any is sent
  in English (:meth:`CouncilResponses.has_variant` tells; ``docs/welsh.md``).

Values take precedence in this order: the action's, then slots, then the profile's.

Editors change a variation's text in the console (:mod:`bot.response_edits`). Given an
``endpoint_config`` (the Rasa server) or a ``store``, the generator checks the published
changes' counter in Redis at most every ``refresh_seconds`` before a reply and, when it moved,
serves the published texts instead of the shipped ones (the shipped text again once a change
is withdrawn): a publish reaches every running server within seconds, without ``rasa train``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rasa.core.nlg.generator import ResponseVariationFilter
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.keys import namespace
from bot.knowledge.model import plain_text
from bot.nlu.language import DEFAULT_LANGUAGE, LANGUAGE, language_of
from bot.profile import CouncilProfile
from bot.profile import current as council_profile
from bot.redis_conn import connect_async, redis_url
from bot.response_edits import (
    RESPONSES_DIR,
    ResponseStore,
    domain_responses,
    variables_in,
    variation_ids,
    variation_language,
)

__all__ = [
    "RESPONSES_DIR",
    "CouncilResponses",
    "load_responses",
    "variation_language",
    "with_texts",
]

# Passed by Rasa's utter actions for its own use; not a value for responses.
_RASA_ONLY = ("domain_responses",)


def load_responses(folder: Path = RESPONSES_DIR) -> dict[str, list[dict[str, Any]]]:
    """The ``responses`` of every domain file under ``folder`` (as Rasa merges them)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for _, responses in domain_responses(folder):
        found.update(responses)
    return found


def with_texts(
    responses: Mapping[str, list[dict[str, Any]]], texts: Mapping[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """``responses`` with the variations named in ``texts`` (by id) carrying those texts.

    Published texts passed the editors' checks; they are cleaned of markup and unsafe links
    here too (:func:`~bot.knowledge.model.plain_text`), as knowledge-base answers are. A text
    that lacks a ``{variable}`` the shipped one has (published before a new release added it)
    is not used: the resident gets the shipped text, with the value.
    """
    if not texts:
        return dict(responses)

    def usable(vid: str, variation: Mapping[str, Any]) -> bool:
        if vid not in texts or "text" not in variation:
            return False
        return set(variables_in(str(variation["text"]))) <= set(variables_in(texts[vid]))

    changed: dict[str, list[dict[str, Any]]] = {}
    for name, variations in responses.items():
        changed[name] = [
            {**variation, "text": plain_text(texts[vid])} if usable(vid, variation) else variation
            for vid, variation in zip(variation_ids(name, variations), variations, strict=True)
        ]
    return changed


def _by_language(
    responses: Mapping[str, list[dict[str, Any]]],
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each language's variations, without their language condition.

    Within its language, a variation whose only condition was the language is the fallback,
    as a variation without conditions is in Rasa (otherwise it would compete at random with
    the ones whose conditions match).
    """
    split: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, variations in responses.items():
        for variation in variations:
            own = dict(variation)
            rest = [c for c in own.pop("condition", None) or () if c.get("name") != LANGUAGE]
            if rest:
                own["condition"] = rest
            split.setdefault(variation_language(variation), {}).setdefault(name, []).append(own)
    return split


class CouncilResponses(TemplatedNaturalLanguageGenerator):
    """Rasa's templated responses with the profile's values (see the module docstring).

    Args:
        endpoint_config: The ``nlg`` section of ``endpoints.yml``: its ``url`` (default
            ``REDIS_URL``) is the Redis the editors' published texts are read from.
        domain: The trained domain (its responses are used).
        responses: Responses to use instead of the domain's (tests, console previews).
        profile: The council profile (default: this process' :func:`bot.profile.current`).
        store: Where the editors' published texts are (default: from ``endpoint_config``;
            without either, the shipped texts only).
        refresh_seconds: How often a reply checks Redis for newly published texts.
        clock: Monotonic seconds, for that interval.
    """

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        domain: Domain | None = None,
        *,
        responses: Mapping[str, list[dict[str, Any]]] | None = None,
        profile: CouncilProfile | None = None,
        store: ResponseStore | None = None,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if responses is None:
            responses = domain.responses if domain is not None else {}
        self._published: dict[str, str] = {}
        super().__init__(dict(responses))
        # Load (and validate) the profile as the Rasa server starts, not at the first reply.
        self.profile = profile or council_profile()
        self._store = store
        self._url = (endpoint_config.url or redis_url()) if endpoint_config and not store else ""
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._checked = float("-inf")
        self._rev: str | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def responses(self) -> dict[str, list[dict[str, Any]]]:
        """The responses served: the domain's, with the editors' published texts."""
        return self._responses

    @responses.setter
    def responses(self, responses: dict[str, list[dict[str, Any]]]) -> None:
        # Rasa's agent sets them again when it loads a model: the published texts stay
        self._shipped = responses
        self._responses = with_texts(responses, self._published)
        self._languages = _by_language(self._responses)

    async def _connected(self) -> ResponseStore | None:
        if self._store is None and self._url:
            # opened at the first reply, in the server's event loop (Rasa creates us outside it)
            self._store = ResponseStore(await connect_async(self._url), namespace(), shipped={})
        return self._store

    async def refresh(self, force: bool = False) -> None:
        """Serve the texts published since the last check (at most every refresh_seconds)."""
        if not force and self._clock() - self._checked < self.refresh_seconds:
            return
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            store = await self._connected()
            if store is None:
                return
            self._checked = self._clock()
            rev = await store.revision()
            if rev != self._rev or force:
                self._published = await store.published_texts()
                self._rev = rev
                self.responses = self._shipped

    def has_variant(self, utter_action: str, language: str) -> bool:
        """True when ``utter_action`` has a variation in ``language`` (``"cy"``, ``"en"``)."""
        return utter_action in self._languages.get(language, {})

    def _random_response_for(
        self, utter_action: str, output_channel: str, filled_slots: dict[str, Any]
    ) -> dict[str, Any] | None:
        """A variation in the conversation's language (English when it has none), as Rasa picks."""
        language = language_of(filled_slots.get(LANGUAGE))
        if not self.has_variant(utter_action, language):
            language = DEFAULT_LANGUAGE
        responses = self._languages.get(language, {})
        if utter_action not in responses:
            return None
        suitable = ResponseVariationFilter(responses).responses_for_utter_action(
            utter_action, output_channel, filled_slots
        )
        # like Rasa's own choice among equally suitable variations: not security-relevant
        return random.choice(suitable) if suitable else None  # noqa: S311

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        """The response ``utter_action`` for this conversation, filled in."""
        await self.refresh()
        channel = tracker.get_latest_input_channel() or output_channel
        return self.render(utter_action, channel, tracker.current_slot_values(), **kwargs)

    def render(
        self,
        utter_action: str,
        channel: str,
        slots: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> dict[str, Any] | None:
        """The response for ``channel`` with ``values`` filled in (None: no such response)."""
        for name in _RASA_ONLY:
            values.pop(name, None)
        filled = {**self.profile.response_variables(), **(slots or {}), **values}
        response: dict[str, Any] | None = self.generate_from_slots(utter_action, filled, channel)
        return response
