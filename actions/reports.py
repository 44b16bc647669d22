"""Reporting a problem in the chat (form ``report_form``; ``docs/reports.md``).

``report_pothole``, ``report_street_light``, ``report_fly_tipping`` and ``report_problem`` all
start the same form through ``action_start_report``, which picks the back office's service for
the intent (``report_problem``: the resident picks one) or, when the back office cannot list
its services, sets ``report_available`` false so the knowledge base gives the web form
(``data/rules_reports.yml``). The form asks:

1. where: a location pin (``UserMessage.metadata["location"]``) or a postcode, street or
   landmark in words, placed with the gazetteer (:mod:`bot.reports.gazetteer`); outside the
   council's area the neighbouring council is named, a pin in the sea is refused;
2. whether to join someone else's open report of the same service nearby (Open311 ``GET
   requests`` by position, :func:`bot.reports.open311.nearby_open`); yes subscribes the resident
   to its updates (:func:`bot.reports.store.subscribe`) and ends the form;
3. what: a short description, then the service definition's questions, one at a time;
4. an optional photo (``metadata["attachments"]``): fetched from the channel with the
   account's credentials by the channel's adapter (built here, in the action server, from
   ``COUNCIL_CREDENTIALS``), checked and cleaned (:mod:`bot.reports.photos`), stored, and
   given to the back office as a signed expiring address (:mod:`bot.reports.media`);
5. whether the team may have the resident's contact details;
6. a summary to send, change or cancel.

Only a "send" enqueues the report (:class:`bot.reports.outbox.ReportOutbox`); a form left
half-way is forgotten with the session (``session_expiration_time``) and its photo removed by
the retention sweep after a day, so nothing is ever half-submitted. Every sentence is in
``responses/reports.yml``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.resources import shared_redis
from bot import settings
from bot.channels.base import Attachment, ChannelAdapter
from bot.channels.media import MediaError, MediaTooLargeError
from bot.channels.registry import configured
from bot.errors import BackOfficeError, ConfigError, CouncilError
from bot.keys import namespace
from bot.nlu.language import LANGUAGE
from bot.profile import current as council_profile
from bot.reports.config import ReportsConfig
from bot.reports.gazetteer import Gazetteer, Placed, Status, gazetteer, place_pin, place_text
from bot.reports.media import MediaUrls, new_name
from bot.reports.model import Contact, ProblemReport
from bot.reports.open311 import (
    MAX_DESCRIPTION,
    Attribute,
    NearbyRequest,
    Open311Client,
    Service,
    nearby_open,
)
from bot.reports.outbox import ReportOutbox
from bot.reports.photos import PhotoIndex, PhotoRejectedError, PhotoStore, check_photo, photo_store
from bot.reports.store import Subscriber, subscribe
from bot.services import ROOT

__all__ = [
    "INTENT_WORDS",
    "REPORT_SLOTS",
    "ActionAskReportAnswer",
    "ActionAskReportConfirm",
    "ActionAskReportDuplicate",
    "ActionAskReportService",
    "ActionStartReport",
    "ActionSubmitReport",
    "ReportWorld",
    "ValidateReportForm",
    "answer_value",
    "attribute_answers",
    "yes_or_no",
]

INTENT_WORDS: Mapping[str, tuple[str, ...]] = {
    "report_pothole": ("pothole", "pot hole", "road surface"),
    "report_street_light": ("street light", "streetlight", "street lighting", "lamp"),
    "report_fly_tipping": ("fly-tipping", "fly tipping", "flytipping", "dumped"),
}
"""How each intent of the contract finds its service in the back office's list (name,
keywords or description); ``report_problem`` lets the resident choose."""

REPORT_SLOTS = (
    "report_service",
    "report_service_name",
    "report_location",
    "report_lat",
    "report_long",
    "report_nearby",
    "report_duplicate",
    "report_description",
    "report_questions",
    "report_attributes",
    "report_answer",
    "report_photo",
    "report_contact",
    "report_confirm",
)
"""Everything the form remembers; cleared when a report starts and when it ends."""

MAX_RESIDENT_DESCRIPTION = 1000
"""The resident's description is kept under this (Open311 allows 4,000 with the answers)."""
MAX_BUTTONS = 10
NO_PHOTO = "none"
_FOR_A_PERSON = {"human_agent", "complaint", "safeguarding"}
_IGNORED_INTENTS = {*_FOR_A_PERSON, "out_of_scope", "greet", "goodbye"}
_YES = {"yes", "y", "yeah", "yep", "ok", "okay", "sure", "please", "ie", "iawn", "do", "send"}
_NO = {"no", "n", "nope", "nah", "na", "dim", "nage"}
_SKIP = {"skip", "no", "none", "no photo", "no thanks", "hepgor", "na", "dim", "nope", "later"}
_CANCEL = {"cancel", "stop", "canslo", "cancel it", "don't send", "dont send"}
_CHANGE = {"change", "change something", "edit", "newid", "newid rhywbeth", "wrong"}
_NOT_WORD = re.compile(r"[^a-z0-9\- ]+")
_SEVERAL = re.compile(r",|&|\band\b|\bac\b", re.IGNORECASE)  # between answers ("ac": Welsh)
_A = re.compile(r"\ba\b", re.IGNORECASE)  # Welsh "and"; tried only when a part matches nothing
_E164 = re.compile(r"\+[1-9]\d{7,14}")


def _words(text: Any) -> str:
    return " ".join(_NOT_WORD.sub(" ", str(text or "").lower()).split())


def yes_or_no(text: Any, intent: str = "") -> str | None:
    """``yes``, ``no`` or None for a reply ("yes please", "Ie", a tapped button)."""
    words = _words(text).split()
    if intent == "affirm" or (words and words[0] in _YES):
        return "yes"
    if intent == "deny" or (words and words[0] in _NO):
        return "no"
    return None


def answer_value(attribute: Mapping[str, Any], text: Any) -> str | None:
    """The value to send for a service definition question, or None when it does not fit.

    A list question takes an option's number, key or name ("2", "garden", "Garden waste");
    a ``multivaluelist`` several, separated by commas, "and" or Welsh "a"/"ac" (each once,
    joined by commas: :func:`attribute_answers` makes the list to post); a number question
    digits; others text.
    """
    given = str(text or "").strip()
    values: list[list[str]] = attribute.get("values") or []
    datatype = str(attribute.get("datatype") or "string")
    if datatype in {"singlevaluelist", "multivaluelist"}:

        def option(part: str) -> str | None:
            words = _words(part)
            return next(
                (
                    k
                    for n, (k, name) in enumerate(values, start=1)
                    if words in {str(n), _words(k), _words(name)}
                ),
                None,
            )

        whole = option(given)  # a tapped button, even a name with a comma or "and" in it
        if whole is not None or datatype == "singlevaluelist":
            return whole
        keys: list[str] = []
        for part in filter(str.strip, _SEVERAL.split(given)):
            found = option(part)
            pieces = [found] if found else [option(p) for p in _A.split(part) if p.strip()]
            if not pieces or None in pieces:
                return None
            keys += [k for k in pieces if k and k not in keys]
        return ",".join(keys) or None
    if datatype == "number":
        return given if re.fullmatch(r"-?\d+(\.\d+)?", given) else None
    return given[:500] or None


def attribute_answers(
    questions: Sequence[Mapping[str, Any]], answers: Mapping[str, str]
) -> dict[str, str | list[str]]:
    """The answers to post: a ``multivaluelist`` answer as a list of keys, skipped ones left out."""
    several = {q["code"] for q in questions if q.get("datatype") == "multivaluelist"}
    return {
        code: value.split(",") if code in several else value
        for code, value in answers.items()
        if value
    }


def _question(attribute: Attribute) -> dict[str, Any]:
    return {
        "code": attribute.code,
        "question": attribute.description,
        "datatype": attribute.datatype,
        "required": attribute.required,
        "values": [list(pair) for pair in attribute.values],
    }


class ReportWorld:
    """What the report actions use: the back office, the gazetteer, photos and the outbox.

    Built from this process' profile and settings on first use; tests pass their own parts.

    Args:
        reports: The profile's ``reports`` section.
        back_office: An Open311 client (None: the profile's, with the API key from the
            environment).
        places: The gazetteer (None: the profile's ``reports.gazetteer``).
        adapters: Channel adapters by channel name, to fetch photos (None: built from
            ``COUNCIL_CREDENTIALS``).
        store: Where photos go (None: the profile's ``photos``).
        urls: Signs photo addresses (None: ``COUNCIL_MEDIA_KEY`` and ``COUNCIL_MEDIA_URL``).
        client: Redis (None: the action server's, :func:`actions.resources.shared_redis`).
        key_namespace: The key namespace (None: ``COUNCIL_NAMESPACE``).
        clock: Unix seconds.
    """

    def __init__(
        self,
        reports: ReportsConfig | None = None,
        *,
        back_office: Open311Client | None = None,
        places: Gazetteer | None = None,
        adapters: Mapping[str, ChannelAdapter] | None = None,
        store: PhotoStore | None = None,
        urls: MediaUrls | None = None,
        client: redis.asyncio.Redis | None = None,
        key_namespace: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._namespace = key_namespace
        self._reports = reports
        self._back_office = back_office
        self._places = places
        self._adapters = dict(adapters) if adapters is not None else None
        self._store = store
        self._urls = urls
        self.clock = clock

    @property
    def reports(self) -> ReportsConfig | None:
        """The profile's ``reports`` section (None: reports are not made in the chat)."""
        if self._reports is None:
            self._reports = council_profile().reports
        return self._reports

    async def redis(self) -> redis.asyncio.Redis:
        """The Redis client reports, subscriptions and photos are kept in."""
        if self._client is None:
            self._client = await shared_redis()
        return self._client

    @property
    def namespace(self) -> str:
        """The key namespace."""
        return self._namespace if self._namespace is not None else namespace()

    @property
    def places(self) -> Gazetteer:
        """The gazetteer."""
        if self._places is None:
            reports = self.reports
            if reports is None:
                raise ConfigError(council_profile().path, "reports", "is missing: no gazetteer")
            self._places = gazetteer(reports.gazetteer)
        return self._places

    async def back_office(self) -> Open311Client | None:
        """The Open311 client (None: the council has no Open311 back office)."""
        reports = self.reports
        if self._back_office is None and reports is not None and reports.open311 is not None:
            target = reports.open311
            variable = target.api_key_variable
            self._back_office = Open311Client(
                target.endpoint,
                target.jurisdiction_id,
                settings.current().environ.get(variable, "") if variable else "",
                redis=await self.redis(),
                namespace=self.namespace,
                cache_seconds=target.services_cache_minutes * 60,
            )
        return self._back_office

    async def services(self) -> list[Service]:
        """The categories residents choose from (Open311's list, else the profile's).

        Raises:
            BackOfficeError: The back office does not answer or answers garbage.
        """
        client = await self.back_office()
        if client is not None:
            return await client.services()
        reports = self.reports
        return [Service(s.code, s.name) for s in (reports.services if reports else ())]

    async def questions(self, service: Service) -> list[dict[str, Any]]:
        """The service definition's questions residents answer (none when it has none)."""
        client = await self.back_office()
        if client is None or not service.metadata:
            return []
        try:
            definition = await client.definition(service.code)
        except BackOfficeError:
            return []  # the report still goes, with the description only
        return [_question(a) for a in definition.attributes if a.variable]

    async def nearby(self, service_code: str, lat: float, long: float) -> NearbyRequest | None:
        """The nearest open report of the service within the duplicate radius, if any."""
        client, reports = await self.back_office(), self.reports
        if client is None or reports is None:
            return None
        try:
            found = await nearby_open(client, service_code, lat, long, reports.duplicate_radius_m)
        except BackOfficeError:
            return None  # no offer, the resident reports it
        return found[0] if found else None

    async def subscribe(self, service_request_id: str, subscriber: Subscriber) -> None:
        """Send the resident the updates of someone else's report."""
        await subscribe(await self.redis(), self.namespace, service_request_id, subscriber)

    async def enqueue(self, report: ProblemReport) -> str:
        """Queue a confirmed report for the back office (durable, submitted once)."""
        keep_days = council_profile().retention_in_force(settings.current()).problem_report_days
        outbox = ReportOutbox(await self.redis(), self.namespace, keep_days=keep_days)
        return await outbox.enqueue(report)

    def _adapter(self, channel: str) -> ChannelAdapter | None:
        if self._adapters is None:
            self._adapters = {}
            path = settings.current().credentials_path
            for found in configured(path) if path else ():
                for name in found.adapter.channels or (found.adapter.channel,):
                    self._adapters[name] = found.adapter
        return self._adapters.get(channel)

    def media_urls(self) -> MediaUrls | None:
        """Signs photo addresses (None: photos are not configured)."""
        if self._urls is None:
            shared, reports = settings.current(), self.reports
            if not shared.media_key or not shared.media_url or reports is None:
                return None
            ttl = reports.photos.url_ttl_hours * 3600
            self._urls = MediaUrls(shared.media_key, shared.media_url, ttl, clock=self.clock)
        return self._urls

    def photo_store(self) -> PhotoStore | None:
        """Where photos are kept (None: no ``reports`` section)."""
        if self._store is None and self.reports is not None:
            self._store = photo_store(self.reports.photos, ROOT)
        return self._store

    async def receive_photo(
        self, conversation_id: str, channel: str, account: str, sent: Attachment
    ) -> str:
        """Fetch, check, clean, store and index a photo; return its stored name.

        Raises:
            MediaError: It cannot be fetched (``MediaTooLargeError``: too big to download).
            PhotoRejectedError: It is not a photo we accept.
        """
        reports, adapter, store = self.reports, self._adapter(channel), self.photo_store()
        if reports is None or adapter is None or store is None or self.media_urls() is None:
            raise MediaError(channel, "photos are not configured")
        limit = reports.photos.max_bytes
        media = await adapter.fetch_media(account, sent, max_bytes=limit)
        photo = check_photo(media.data, max_bytes=limit, keep_location=reports.photos.keep_location)
        name = new_name(photo.extension)
        await store.put(name, photo.data, photo.content_type)
        await PhotoIndex(await self.redis(), self.namespace).record(
            conversation_id, name, self.clock()
        )
        return name

    async def photo_done(self, name: str, *, submitted: bool) -> None:
        """Keep a submitted report's photo; remove one whose report was cancelled."""
        index, store = PhotoIndex(await self.redis(), self.namespace), self.photo_store()
        if submitted:
            await index.mark_submitted(name)
        elif store is not None:
            await index.remove([name], store)


def _service_for(intent: str, services: Sequence[Service]) -> Service | None:
    words = INTENT_WORDS.get(intent, ())
    for service in services:
        text = " ".join((service.name, " ".join(service.keywords), service.description)).lower()
        if any(word in text for word in words):
            return service
    return None


def _latest(tracker: Tracker) -> tuple[str, str, Mapping[str, Any]]:
    """(text, intent, metadata) of the resident's latest message."""
    message = tracker.latest_message or {}
    intent = str((message.get("intent") or {}).get("name") or "")
    return str(message.get("text") or ""), intent, message.get("metadata") or {}


def _where(tracker: Tracker) -> tuple[str, str, str]:
    """(channel, account, sender) of the conversation."""
    channel = tracker.get_latest_input_channel() or "rest"
    conversation = tracker.sender_id
    prefix = f"{channel}:"
    if conversation.startswith(prefix):
        account, _, sender = conversation[len(prefix) :].partition(":")
        if sender:
            return channel, account, sender
    _, _, metadata = _latest(tracker)
    return channel, str(metadata.get("account") or ""), conversation


def _language(tracker: Tracker) -> str:
    return "cy" if tracker.get_slot(LANGUAGE) == "cy" else "en"


def _cleared() -> list[EventType]:
    return [SlotSet(name, None) for name in REPORT_SLOTS]


class _World:
    """Where the report actions find the world; tests inject their own."""

    def __init__(self, world: ReportWorld | None = None) -> None:
        self._world = world

    @property
    def world(self) -> ReportWorld:
        if self._world is None:
            self._world = _shared_world()
        return self._world


_shared: ReportWorld | None = None


def _shared_world() -> ReportWorld:
    global _shared  # one per action-server process: clients and adapters are reused
    if _shared is None:
        _shared = ReportWorld()
    return _shared


async def _service_slots(world: ReportWorld, service: Service) -> dict[str, Any]:
    return {
        "report_service": service.code,
        "report_service_name": service.name,
        "report_questions": await world.questions(service),
        "report_attributes": {},
    }


class ActionStartReport(_World, Action):
    """Starts a report: a clean form, the service for the intent, or the web form."""

    def name(self) -> str:
        return "action_start_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = _cleared()
        try:
            services = await self.world.services() if self.world.reports else []
        except BackOfficeError:
            services = []
        if not services:
            return [*events, SlotSet("report_available", False)]
        _, intent, _ = _latest(tracker)
        service = _service_for(intent, services)
        if service is not None:
            slots = await _service_slots(self.world, service)
            events += [SlotSet(name, value) for name, value in slots.items()]
        return [*events, SlotSet("report_available", True)]


class ValidateReportForm(_World, FormValidationAction):
    """Reads and checks every answer of ``report_form``."""

    def name(self) -> str:
        return "validate_report_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Saying cancel or stop at any question ends the report; nothing is sent."""
        text, _, _ = _latest(tracker)
        asked = tracker.slots.get("requested_slot")
        if asked and _words(text) in _CANCEL:
            return [
                SlotSet(str(asked), None),
                SlotSet("report_confirm", "cancel"),
                SlotSet("requested_slot", None),
            ]
        events: list[EventType] = await super().run(dispatcher, tracker, domain)
        return events

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if tracker.slots.get("report_duplicate") == "yes":
            return []  # added to someone else's report: nothing more to ask
        if tracker.slots.get("report_confirm") == "cancel":
            return []
        slots = list(domain_slots)
        if not tracker.slots.get("report_nearby"):
            slots.remove("report_duplicate")
        if not tracker.slots.get("report_questions"):
            slots.remove("report_answer")
        return slots

    def _asked(self, tracker: Tracker, slot: str) -> bool:
        """The message answers ``slot``: asked for, and not for a person or a greeting.

        A pin or a photo with no words is an answer whatever the classifier made of the
        empty text, unless it asked for a person (safeguarding, complaint, "a person").
        """
        _, intent, metadata = _latest(tracker)
        if tracker.slots.get("requested_slot") != slot:
            return False
        if metadata.get("location") or metadata.get("attachments"):
            return intent not in _FOR_A_PERSON
        return intent not in _IGNORED_INTENTS

    # -- which service (report_problem) ----------------------------------------------------

    async def validate_report_service(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # a slot cleared when the report started, not an answer
            return {"report_service": None}
        if tracker.slots.get("report_service_name"):
            return {"report_service": tracker.slots.get("report_service")}  # set by the intent
        try:
            services = await self.world.services()
        except BackOfficeError:
            services = []
        words = _words(value)
        chosen = next(
            (
                s
                for n, s in enumerate(services, start=1)
                if words in {str(n), _words(s.code), _words(s.name)}
            ),
            None,
        )
        if chosen is None:
            dispatcher.utter_message(response="utter_report_service_unknown")
            return {"report_service": None}
        return await _service_slots(self.world, chosen)

    # -- where --------------------------------------------------------------------------

    async def extract_report_location(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The pin (``{"latitude", "longitude"}``) or the words of the answer."""
        if not self._asked(tracker, "report_location"):
            return {}
        text, _, metadata = _latest(tracker)
        pin = metadata.get("location")
        if isinstance(pin, Mapping):
            return {"report_location": {"latitude": pin["latitude"], "longitude": pin["longitude"]}}
        return {"report_location": text}

    async def validate_report_location(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Places the pin or the words, and looks for someone else's report nearby."""
        if value is None:  # a slot cleared when the report started, not an answer
            return {"report_location": None}
        world, reports = self.world, self.world.reports
        area = reports.area if reports else None
        if isinstance(value, Mapping):
            placed = place_pin(
                world.places, area, float(value["latitude"]), float(value["longitude"])
            )
        else:
            placed = place_text(world.places, area, str(value or ""))
        if placed.status is not Status.FOUND or placed.place is None:
            self._explain(dispatcher, placed)
            return {"report_location": None}
        place = placed.place
        nearby = await world.nearby(
            str(tracker.slots.get("report_service")), place.latitude, place.longitude
        )
        return {
            "report_location": place.address_string,
            "report_lat": place.latitude,
            "report_long": place.longitude,
            "report_nearby": self._offer(nearby),
        }

    def _explain(self, dispatcher: CollectingDispatcher, placed: Placed) -> None:
        if placed.status is Status.OUTSIDE:
            dispatcher.utter_message(
                response="utter_report_location_outside",
                council=placed.council,
                known="yes" if placed.council else "no",
            )
        elif placed.status is Status.NOWHERE:
            dispatcher.utter_message(response="utter_report_location_nowhere")
        elif placed.status is Status.AMBIGUOUS:
            choices = placed.candidates[:MAX_BUTTONS]
            dispatcher.utter_message(
                response="utter_report_location_ambiguous",
                count=len(placed.candidates),
                street=choices[0].name,
                buttons=[{"title": c.address_string, "payload": c.address_string} for c in choices],
            )
        else:
            dispatcher.utter_message(response="utter_report_location_unknown")

    def _offer(self, nearby: NearbyRequest | None) -> dict[str, Any] | None:
        if nearby is None:
            return None
        try:
            made = datetime.fromisoformat(nearby.requested_datetime).timestamp()
        except ValueError:
            made = self.world.clock()
        days = max(0, int((self.world.clock() - made) // 86_400))
        return {"id": nearby.service_request_id, "metres": round(nearby.distance_m), "days": days}

    # -- someone else's report ------------------------------------------------------------

    async def validate_report_duplicate(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # a slot cleared when the report started, not an answer
            return {"report_duplicate": None}
        _, intent, _ = _latest(tracker)
        answer = yes_or_no(value, intent)
        if answer is None:
            dispatcher.utter_message(response="utter_report_yes_or_no")
            return {"report_duplicate": None}
        nearby = tracker.slots.get("report_nearby") or {}
        if answer == "yes":
            channel, account, sender = _where(tracker)
            subscriber = Subscriber(
                tracker.sender_id,
                channel,
                account,
                sender,
                _language(tracker),
                service_name=str(tracker.slots.get("report_service_name") or ""),
                at=self.world.clock(),
            )
            try:
                await self.world.subscribe(str(nearby.get("id")), subscriber)
            except (redis.RedisError, CouncilError):  # the resident reports it instead
                dispatcher.utter_message(response="utter_report_subscribe_failed")
                return {"report_duplicate": "no"}
            dispatcher.utter_message(response="utter_report_subscribed")
        return {"report_duplicate": answer}

    # -- what ---------------------------------------------------------------------------

    async def validate_report_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # a slot cleared when the report started, not an answer
            return {"report_description": None}
        text = " ".join(str(value or "").split())
        if len(text) > MAX_RESIDENT_DESCRIPTION:
            dispatcher.utter_message(
                response="utter_report_description_too_long", limit=MAX_RESIDENT_DESCRIPTION
            )
            return {"report_description": None}
        return {"report_description": text or None}

    async def validate_report_answer(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # a slot cleared when the report started, not an answer
            return {"report_answer": None}
        questions: list[dict[str, Any]] = tracker.slots.get("report_questions") or []
        answers: dict[str, str] = dict(tracker.slots.get("report_attributes") or {})
        waiting = [q for q in questions if q["code"] not in answers]
        if not waiting:
            return {"report_answer": "done"}
        question = waiting[0]
        if not question["required"] and _words(value) in _SKIP:
            answers[question["code"]] = ""
        else:
            found = answer_value(question, value)
            if found is None:
                dispatcher.utter_message(response="utter_report_answer_not_matched")
                return {"report_answer": None}
            answers[question["code"]] = found
        done = len(waiting) == 1
        return {"report_attributes": answers, "report_answer": "done" if done else None}

    # -- the photo ------------------------------------------------------------------------

    async def extract_report_photo(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not self._asked(tracker, "report_photo"):
            return {}
        text, intent, metadata = _latest(tracker)
        sent = [
            Attachment(
                str(a.get("kind") or ""), str(a.get("url") or ""), str(a.get("content_type") or "")
            )
            for a in metadata.get("attachments") or ()
            if isinstance(a, Mapping)
        ]
        if not sent:
            if intent == "deny" or _words(text) in _SKIP:
                return {"report_photo": NO_PHOTO}
            dispatcher.utter_message(response="utter_report_photo_missing")
            return {"report_photo": None}
        reports = self.world.reports
        max_mb = round((reports.photos.max_bytes if reports else 0) / 1_000_000)
        channel, account, _ = _where(tracker)
        account = str(metadata.get("account") or account)
        try:
            name = await self.world.receive_photo(tracker.sender_id, channel, account, sent[0])
        except MediaTooLargeError:
            dispatcher.utter_message(response="utter_report_photo_too_large", max_mb=max_mb)
            return {"report_photo": NO_PHOTO}
        except PhotoRejectedError as refused:
            response = (
                "utter_report_photo_too_large"
                if refused.reason == "too_large"
                else "utter_report_photo_not_image"
            )
            dispatcher.utter_message(response=response, max_mb=max_mb)
            return {"report_photo": NO_PHOTO}
        except MediaError:
            dispatcher.utter_message(response="utter_report_photo_failed")
            return {"report_photo": NO_PHOTO}
        dispatcher.utter_message(response="utter_report_photo_received")
        return {"report_photo": name}

    # -- contact and confirmation --------------------------------------------------------

    async def validate_report_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # a slot cleared when the report started, not an answer
            return {"report_contact": None}
        _, intent, _ = _latest(tracker)
        answer = yes_or_no(value, intent)
        if answer is None:
            dispatcher.utter_message(response="utter_report_yes_or_no")
        return {"report_contact": answer}

    async def validate_report_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:  # a slot cleared when the report started, not an answer
            return {"report_confirm": None}
        words = _words(value)
        _, intent, _ = _latest(tracker)
        if words in _CANCEL:
            return {"report_confirm": "cancel"}
        if words in _CHANGE or intent == "deny":
            dispatcher.utter_message(response="utter_report_change")
            photo = tracker.slots.get("report_photo")
            if photo and photo != NO_PHOTO:
                await self.world.photo_done(str(photo), submitted=False)
            keep = {"report_service", "report_service_name", "report_questions"}
            cleared: dict[str, Any] = {n: None for n in REPORT_SLOTS if n not in keep}
            return {**cleared, "report_attributes": {}}
        if yes_or_no(value, intent) == "yes":
            return {"report_confirm": "yes"}
        dispatcher.utter_message(response="utter_report_confirm_unknown")
        return {"report_confirm": None}


class ActionAskReportService(_World, Action):
    """Asks which kind of problem, with the back office's services as buttons."""

    def name(self) -> str:
        return "action_ask_report_service"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            services = await self.world.services()
        except BackOfficeError:
            services = []
        dispatcher.utter_message(
            response="utter_ask_report_service",
            buttons=[{"title": s.name, "payload": s.name} for s in services[:MAX_BUTTONS]],
        )
        return []


class ActionAskReportDuplicate(Action):
    """Offers someone else's open report nearby."""

    def name(self) -> str:
        return "action_ask_report_duplicate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        nearby = tracker.get_slot("report_nearby") or {}
        days = int(nearby.get("days") or 0)
        dispatcher.utter_message(
            response="utter_ask_report_duplicate",
            metres=int(nearby.get("metres") or 0),
            days=days,
            ago={0: "today", 1: "yesterday"}.get(days, "days"),
        )
        return []


class ActionAskReportAnswer(Action):
    """Asks the back office's next question for the service, with its choices as buttons."""

    def name(self) -> str:
        return "action_ask_report_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        questions: list[dict[str, Any]] = tracker.get_slot("report_questions") or []
        answers = tracker.get_slot("report_attributes") or {}
        waiting = [q for q in questions if q["code"] not in answers]
        if not waiting:
            return [SlotSet("report_answer", "done")]
        question = waiting[0]
        dispatcher.utter_message(
            response="utter_report_question",
            question=question["question"],
            optional="no" if question["required"] else "yes",
            buttons=[{"title": name, "payload": name} for _, name in question["values"]][
                :MAX_BUTTONS
            ],
        )
        if question["datatype"] == "multivaluelist":
            dispatcher.utter_message(response="utter_report_question_several")
        return []


def _details(tracker: Tracker) -> str:
    parts = [str(tracker.get_slot("report_description") or "")]
    answers: Mapping[str, str] = tracker.get_slot("report_attributes") or {}
    for question in tracker.get_slot("report_questions") or []:
        given = answers.get(question["code"], "")
        names = dict((k, n) for k, n in question["values"])
        shown = ", ".join(names.get(v, v) for v in given.split(",") if v) if given else ""
        if shown:
            parts.append(shown)
    return "; ".join(p for p in parts if p)


class ActionAskReportConfirm(Action):
    """Shows the summary to send, change or cancel."""

    def name(self) -> str:
        return "action_ask_report_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        photo = tracker.get_slot("report_photo")
        dispatcher.utter_message(
            response="utter_ask_report_confirm",
            service_name=str(tracker.get_slot("report_service_name") or ""),
            where=str(tracker.get_slot("report_location") or ""),
            details=_details(tracker),
            photo="yes" if photo and photo != NO_PHOTO else "no",
            contact="yes" if tracker.get_slot("report_contact") == "yes" else "no",
        )
        return []


def _contact(tracker: Tracker, sender: str) -> Contact:
    _, _, metadata = _latest(tracker)
    first, _, last = str(metadata.get("display_name") or "").strip().partition(" ")
    given = metadata.get("contact")
    shared: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    phone = str(shared.get("phone") or "") or (sender if _E164.fullmatch(sender) else "")
    return Contact(phone=phone, first_name=first, last_name=last.strip())


class ActionSubmitReport(_World, Action):
    """Sends a confirmed report to the outbox, or ends a cancelled or joined one."""

    def name(self) -> str:
        return "action_submit_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        photo = str(tracker.get_slot("report_photo") or "")
        has_photo = bool(photo) and photo != NO_PHOTO
        if tracker.get_slot("report_duplicate") == "yes":
            return _cleared()  # subscribed to the other report, already told
        if tracker.get_slot("report_confirm") != "yes":
            if has_photo:
                await self.world.photo_done(photo, submitted=False)
            dispatcher.utter_message(response="utter_report_cancelled")
            return _cleared()
        channel, account, sender = _where(tracker)
        urls = self.world.media_urls()
        description = _details(tracker)[:MAX_DESCRIPTION]
        answers = attribute_answers(
            tracker.get_slot("report_questions") or [],
            tracker.get_slot("report_attributes") or {},
        )
        report = ProblemReport(
            report_id=uuid.uuid4().hex,
            conversation_id=tracker.sender_id,
            channel=channel,
            account=account,
            sender=sender,
            service_code=str(tracker.get_slot("report_service") or ""),
            service_name=str(tracker.get_slot("report_service_name") or ""),
            description=description,
            created_at=self.world.clock(),
            lat=tracker.get_slot("report_lat"),
            long=tracker.get_slot("report_long"),
            address_string=str(tracker.get_slot("report_location") or ""),
            attributes=answers,
            media_url=urls.url(photo) if has_photo and urls else "",
            contact=_contact(tracker, sender)
            if tracker.get_slot("report_contact") == "yes"
            else None,
            language=_language(tracker),
        )
        try:
            await self.world.enqueue(report)
        except (redis.RedisError, CouncilError):  # tell the resident; nothing half-sent
            dispatcher.utter_message(response="utter_report_submit_failed")
            return _cleared()
        if has_photo:
            await self.world.photo_done(photo, submitted=True)
        dispatcher.utter_message(response="utter_report_submitted")
        return _cleared()
