"""Bin collection day and missed-bin conversations (forms ``bin_day_form``, ``missed_bin_form``).

Both forms ask for a postcode, then (when several addresses share it) which address; the
missed-bin form then asks which bin. The validation actions look everything up in Redis through
:class:`bot.bins.store.BinStore`; the submit actions answer or record a report. What residents
read is in ``responses/bins.yml``; the actions pass the values (postcode, address, dates...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from babel.dates import format_date
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.resources import shared_redis
from bot.bins.clock import today as borough_today
from bot.bins.ics import calendar_url
from bot.bins.missed import MissedReports, MissedStatus, check_missed
from bot.bins.model import Address, BinType
from bot.bins.store import BinStore, PostcodeStatus
from bot.keys import namespace
from bot.nlu.language import LANGUAGE, language_of

__all__ = [
    "ActionAskBinAddressChoice",
    "ActionBinCollectionDay",
    "ActionMissedBinReport",
    "ValidateBinDayForm",
    "ValidateMissedBinForm",
    "choose_address",
    "spoken_date",
]

MAX_BUTTONS = 10
_ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
# "2", "number 2", "option 2 please"; "2 Mill Lane" is an address, not option 2.
_NUMBER = re.compile(r"^(?:(?:it s|its|number|no|option|the)\s+)*(\d{1,3})(?:\s+please)?$")
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")

_POSTCODE_PROBLEMS = {
    PostcodeStatus.MISSING: "utter_bin_postcode_missing",
    PostcodeStatus.MALFORMED: "utter_bin_postcode_malformed",
    PostcodeStatus.OUTSIDE: "utter_bin_postcode_outside",
    PostcodeStatus.UNKNOWN: "utter_bin_postcode_unknown",
    PostcodeStatus.NO_ADDRESSES: "utter_bin_postcode_no_addresses",
}
"""The response (``responses/bins.yml``) that explains each postcode problem."""


# The calendar's words come from CLDR (Babel): "Tuesday 2 December", "Dydd Mawrth 2 Rhagfyr".
_LOCALES = {"en": "en_GB", "cy": "cy"}


def spoken_date(day: date, today: date, language: str = "en") -> str:
    """A date in words in ``language``: "Tuesday 2 December", "Dydd Mawrth 2 Rhagfyr".

    The year is added when it is not this year.
    """
    pattern = "EEEE d MMMM" if day.year == today.year else "EEEE d MMMM y"
    return str(format_date(day, pattern, locale=_LOCALES.get(language, "en_GB")))


def _language(tracker: Tracker) -> str:
    """The conversation's language: the Welsh variations get Welsh dates and bin names."""
    return language_of(tracker.get_slot(LANGUAGE))


def _words(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def choose_address(text: str, addresses: Sequence[Address]) -> Address | None:
    """The address a resident picked: a list number ("2", "the second one") or its text."""
    words = _words(text)
    number = _NUMBER.match(words)
    if number:
        index = int(number.group(1))
    else:
        index = next((n for word, n in _ORDINALS.items() if word in words.split()), 0)
        if "last" in words.split():
            index = len(addresses)
    if index:
        return addresses[index - 1] if index <= len(addresses) else None
    matches = [a for a in addresses if _words(a.line) in words or words in _words(a.line)]
    # Only an unambiguous text match counts: "Mill Lane" alone names four houses.
    return matches[0] if len(matches) == 1 and len(words) >= 3 else None


class _BinsDependencies:
    """Where the bin actions find Redis and today's date; tests inject their own.

    Args:
        store: The bin schedules (default: this deployment's Redis and namespace).
        reports: Missed-bin reports (default: likewise).
        today: Returns today's date (default: ``COUNCIL_TODAY`` or the UK date).
    """

    def __init__(
        self,
        store: BinStore | None = None,
        reports: MissedReports | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._store = store
        self._reports = reports
        self._today = today or borough_today

    async def bin_store(self) -> BinStore:
        if self._store is None:
            self._store = BinStore(await shared_redis(), namespace())
        return self._store

    async def missed_reports(self) -> MissedReports:
        if self._reports is None:
            self._reports = MissedReports(await shared_redis(), namespace())
        return self._reports

    def today(self) -> date:
        return self._today()


class ValidateBinDayForm(_BinsDependencies, FormValidationAction):
    """Checks the postcode and the address choice of ``bin_day_form``."""

    def name(self) -> str:
        return "validate_bin_day_form"

    async def validate_bin_postcode(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        found = await (await self.bin_store()).lookup(str(value or ""))
        if found.status is not PostcodeStatus.FOUND:
            dispatcher.utter_message(
                response=_POSTCODE_PROBLEMS[found.status], postcode=found.postcode
            )
            return {"bin_postcode": None, "bin_address_choice": None, "bin_uprn": None}
        chosen = found.addresses[0] if len(found.addresses) == 1 else None
        for entity in tracker.latest_message.get("entities", []):
            if chosen is None and entity.get("entity") == "address":
                chosen = choose_address(str(entity.get("value", "")), found.addresses)
        return {
            "bin_postcode": found.postcode,
            "bin_address_choice": chosen.line if chosen else None,
            "bin_uprn": chosen.uprn if chosen else None,
        }

    async def validate_bin_address_choice(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if "bin_postcode" in tracker.slots_to_validate():
            # A new postcode in this message: its validator already decided the address.
            return {"bin_address_choice": tracker.get_slot("bin_address_choice")}
        postcode = tracker.get_slot("bin_postcode") or ""
        found = await (await self.bin_store()).lookup(postcode)
        chosen = choose_address(str(value or ""), found.addresses)
        if chosen is None:
            dispatcher.utter_message(response="utter_bin_address_not_matched", postcode=postcode)
            return {"bin_address_choice": None, "bin_uprn": None}
        return {"bin_address_choice": chosen.line, "bin_uprn": chosen.uprn}


class ValidateMissedBinForm(ValidateBinDayForm):
    """Checks ``missed_bin_form``: the same address steps, then which bin."""

    def name(self) -> str:
        return "validate_missed_bin_form"

    async def validate_bin_type(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        bin_type = BinType.parse(str(value or ""))
        if bin_type is None:
            dispatcher.utter_message(response="utter_bin_type_unknown")
            return {"bin_type": None}
        uprn = tracker.get_slot("bin_uprn")
        source = await (await self.bin_store()).schedule(str(uprn)) if uprn else None
        if source is not None and source.next_collection(str(uprn), bin_type, self.today()) is None:
            dispatcher.utter_message(
                response="utter_bin_type_not_collected",
                bin_label=bin_type.label_in(_language(tracker)),
            )
            return {"bin_type": None}
        return {"bin_type": bin_type.value}


class ActionAskBinAddressChoice(_BinsDependencies, Action):
    """Lists the addresses at the postcode as numbered choices (buttons where they fit)."""

    def name(self) -> str:
        return "action_ask_bin_address_choice"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        postcode = tracker.get_slot("bin_postcode") or ""
        addresses = (await (await self.bin_store()).lookup(postcode)).addresses
        lines = [f"{n}. {address.line}" for n, address in enumerate(addresses, start=1)]
        # Long lists stay text only: no channel shows dozens of buttons.
        buttons = (
            [{"title": a.line, "payload": str(n)} for n, a in enumerate(addresses, start=1)]
            if len(addresses) <= MAX_BUTTONS
            else []
        )
        dispatcher.utter_message(
            response="utter_bin_address_choices",
            buttons=buttons,
            listed="buttons" if buttons else "text",
            count=len(addresses),
            postcode=postcode,
            addresses="\n".join(lines),
        )
        return []


class ActionBinCollectionDay(_BinsDependencies, Action):
    """Answers with the next collection of each bin at the chosen address."""

    def name(self) -> str:
        return "action_bin_collection_day"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        uprn = str(tracker.get_slot("bin_uprn") or "")
        source = await (await self.bin_store()).schedule(uprn)
        address = source.address(uprn) if source else None
        if source is None or address is None:
            dispatcher.utter_message(response="utter_bin_lookup_failed")
            return [SlotSet("bin_postcode", None), SlotSet("bin_uprn", None)]
        today, language = self.today(), _language(tracker)
        upcoming = source.next_collections(uprn, today)
        lines = [
            f"{spoken_date(c.on, today, language)}: {c.bin_type.label_in(language)}"
            for c in upcoming
        ]
        dispatcher.utter_message(
            response="utter_bin_collections" if lines else "utter_bin_no_collections",
            address=address.line,
            postcode=address.postcode,
            collections="\n".join(lines),
        )
        dispatcher.utter_message(response="utter_bin_calendar", calendar_url=calendar_url(uprn))
        return []


class ActionMissedBinReport(_BinsDependencies, Action):
    """Records a missed-bin report when a collection was due, or says when it is due."""

    def name(self) -> str:
        return "action_missed_bin_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        uprn = str(tracker.get_slot("bin_uprn") or "")
        bin_type = BinType.parse(str(tracker.get_slot("bin_type") or ""))
        source = await (await self.bin_store()).schedule(uprn)
        if source is None or bin_type is None:
            dispatcher.utter_message(response="utter_bin_lookup_failed")
            return [SlotSet("bin_type", None)]
        today, language = self.today(), _language(tracker)
        check = check_missed(source, uprn, bin_type, today)
        dates = {
            "bin_label": bin_type.label_in(language),
            "last_collection": spoken_date(check.last, today, language) if check.last else "",
            "next_collection": spoken_date(check.next, today, language) if check.next else "",
        }
        if check.status is MissedStatus.REPORTABLE and check.last is not None:
            channel = tracker.get_latest_input_channel() or "unknown"
            reports = await self.missed_reports()
            now = datetime.combine(today, datetime.now(UTC).time(), UTC)
            reference = await reports.record(uprn, bin_type, check.last, channel, now)
            dispatcher.utter_message(
                response="utter_bin_missed_reported", reference=reference, **dates
            )
        elif check.status is MissedStatus.DUE_TODAY:
            dispatcher.utter_message(response="utter_bin_missed_due_today", **dates)
        else:
            # The variations say what is known: the last collection, the next, both or neither.
            known = [name for name in ("last", "next") if getattr(check, name)]
            dispatcher.utter_message(
                response="utter_bin_missed_not_due", known="_".join(known) or "none", **dates
            )
        return [SlotSet("bin_type", None)]
