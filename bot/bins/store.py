"""Bin schedules in Redis, indexed by postcode and UPRN for millisecond lookups.

Keys (all under ``{ns}:bins:``): ``pc:{postcode}`` JSON list of addresses, ``uprn:{uprn}`` JSON
address, ``rounds`` hash of JSON rounds, ``holidays`` JSON table, ``outcodes`` set of the
borough's outcodes (to tell "outside the borough" from "unknown postcode"), ``ics:{uprn}`` JSON
list of the parsed events of an address's iCalendar feed (such an address's JSON has
``"ics": true``, and its feed, not its rounds, gives its collections). Missed-bin reports
(``missed:*``, :mod:`bot.bins.missed`) share the prefix but are not part of the schedule.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis
import redis.asyncio

from bot.bins.holidays import HolidayTable
from bot.bins.ics import IcsEvent, IcsScheduleSource
from bot.bins.model import Address, BinType, Round
from bot.bins.schedule import RoundScheduleSource, ScheduleSource
from bot.keys import key
from bot.nlu.postcodes import find_postcodes

__all__ = ["BinStore", "PostcodeLookup", "PostcodeStatus", "write_schedule"]


class PostcodeStatus(enum.Enum):
    """What a resident's postcode turned out to be."""

    FOUND = "found"
    NO_ADDRESSES = "no_addresses"  # in the borough, but nowhere the council collects from
    UNKNOWN = "unknown"  # a borough outcode, but not a postcode we know
    OUTSIDE = "outside"  # another council's postcode
    MALFORMED = "malformed"  # postcode-shaped, but not a valid UK postcode
    MISSING = "missing"  # no postcode in the text at all


@dataclass(frozen=True)
class PostcodeLookup:
    """The answer to "which addresses are at this postcode?".

    Attributes:
        status: What was found.
        postcode: The normalised postcode (or the text as written when malformed or missing).
        addresses: Addresses with a council collection, when ``status`` is FOUND.
    """

    status: PostcodeStatus
    postcode: str
    addresses: tuple[Address, ...] = ()


def _prefix(namespace: str) -> str:
    return key(namespace, "bins")


def _address_json(address: Address, has_feed: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uprn": address.uprn,
        "line": address.line,
        "pc": address.postcode,
        "rounds": list(address.rounds),
    }
    if has_feed:
        data["ics"] = True
    return data


def _address(data: dict[str, Any]) -> Address:
    return Address(data["uprn"], data["line"], data["pc"], tuple(data["rounds"]))


def _round_json(rnd: Round) -> str:
    return json.dumps(
        {
            "bins": [b.value for b in rnd.bin_types],
            "weekday": rnd.weekday,
            "interval": rnd.interval_weeks,
            "ref": rnd.reference.isoformat(),
        }
    )


def _round(round_id: str, raw: str) -> Round:
    data = json.loads(raw)
    bins = tuple(BinType(b) for b in data["bins"])
    return Round(round_id, bins, data["weekday"], data["interval"], date.fromisoformat(data["ref"]))


def _events_json(events: Sequence[IcsEvent]) -> str:
    return json.dumps(
        [
            {
                "bins": [b.value for b in event.bin_types],
                "start": event.start.isoformat(),
                "interval": event.interval_weeks,
                "count": event.count,
                "until": event.until.isoformat() if event.until else None,
                "ex": sorted(d.isoformat() for d in event.exdates),
                "r": sorted(d.isoformat() for d in event.rdates),
            }
            for event in events
        ]
    )


def _events(raw: str) -> list[IcsEvent]:
    return [
        IcsEvent(
            tuple(BinType(b) for b in data["bins"]),
            date.fromisoformat(data["start"]),
            data["interval"],
            data["count"],
            date.fromisoformat(data["until"]) if data["until"] else None,
            frozenset(map(date.fromisoformat, data["ex"])),
            frozenset(map(date.fromisoformat, data["r"])),
        )
        for data in json.loads(raw)
    ]


def _holidays_json(table: HolidayTable) -> str:
    return json.dumps(
        {
            "bank": sorted(d.isoformat() for d in table.bank_holidays),
            "changes": {a.isoformat(): b.isoformat() for a, b in table.changes.items()},
        }
    )


def _holidays(raw: str | None) -> HolidayTable:
    data = json.loads(raw) if raw else {"bank": [], "changes": {}}
    return HolidayTable.build(
        (date.fromisoformat(d) for d in data["bank"]),
        {date.fromisoformat(a): date.fromisoformat(b) for a, b in data["changes"].items()},
    )


def write_schedule(
    client: redis.Redis,
    namespace: str,
    addresses: Iterable[Address],
    rounds: Iterable[Round],
    holidays: HolidayTable,
    *,
    feeds: Mapping[str, Sequence[IcsEvent]] | None = None,
) -> int:
    """Replace the stored schedule with these rows in one transaction; return addresses written.

    Loading the same files twice leaves Redis exactly as after the first load. Missed-bin
    reports are kept.

    Args:
        client: A Redis client.
        namespace: Key namespace (``"cr"`` in production).
        addresses: Every address (those without rounds or feed are not collected from).
        rounds: The rounds the addresses name.
        holidays: Bank holidays and collection changes.
        feeds: Parsed iCalendar events by UPRN; an address with a feed is answered from it
            instead of its rounds. Feeds of UPRNs not in ``addresses`` are not stored.
    """
    prefix = _prefix(namespace)
    feeds = feeds or {}
    by_postcode: dict[str, list[dict[str, Any]]] = {}
    pipe = client.pipeline(transaction=True)
    # Missed-bin reports share the prefix and must survive a reload.
    reports = f"{prefix}:missed:"
    old = [
        k
        for k in client.scan_iter(match=f"{prefix}:*", count=1000)
        if not (k.decode() if isinstance(k, bytes) else k).startswith(reports)
    ]
    if old:
        pipe.delete(*old)
    count = 0
    for address in addresses:
        feed = feeds.get(address.uprn)
        data = _address_json(address, has_feed=feed is not None)
        by_postcode.setdefault(address.postcode, []).append(data)
        pipe.set(f"{prefix}:uprn:{address.uprn}", json.dumps(data))
        if feed is not None:
            pipe.set(f"{prefix}:ics:{address.uprn}", _events_json(feed))
        count += 1
    for postcode, rows in by_postcode.items():
        pipe.set(f"{prefix}:pc:{postcode}", json.dumps(rows))
    round_map = {rnd.round_id: _round_json(rnd) for rnd in rounds}
    if round_map:
        pipe.hset(f"{prefix}:rounds", mapping=round_map)
    outcodes = {postcode.split()[0] for postcode in by_postcode}
    if outcodes:
        pipe.sadd(f"{prefix}:outcodes", *outcodes)
    pipe.set(f"{prefix}:holidays", _holidays_json(holidays))
    pipe.execute()
    return count


class BinStore:
    """Reads the schedules :func:`write_schedule` stored (used by the action server).

    Args:
        client: An asyncio Redis client with ``decode_responses=True``.
        namespace: Key namespace (``"cr"`` in production).
    """

    def __init__(self, client: redis.asyncio.Redis, namespace: str = "cr") -> None:
        self.client = client
        self.prefix = _prefix(namespace)

    async def lookup(self, text: str) -> PostcodeLookup:
        """Find the postcode in ``text`` and the collected addresses at it."""
        found = find_postcodes(text)
        valid = [f.postcode for f in found if f.postcode]
        if not valid:
            status = PostcodeStatus.MALFORMED if found else PostcodeStatus.MISSING
            return PostcodeLookup(status, found[0].raw if found else text.strip())
        postcode = valid[0]
        raw = await self.client.get(f"{self.prefix}:pc:{postcode}")
        if raw is None:
            inside = await self.client.sismember(f"{self.prefix}:outcodes", postcode.split()[0])
            status = PostcodeStatus.UNKNOWN if inside else PostcodeStatus.OUTSIDE
            return PostcodeLookup(status, postcode)
        rows = json.loads(raw)
        addresses = tuple(_address(row) for row in rows if row["rounds"] or row.get("ics"))
        if not addresses:
            return PostcodeLookup(PostcodeStatus.NO_ADDRESSES, postcode)
        return PostcodeLookup(PostcodeStatus.FOUND, postcode, addresses)

    async def schedule(self, uprn: str) -> ScheduleSource | None:
        """The schedule source for one address (one Redis round trip), or None if unknown.

        An address loaded with an iCalendar feed gets an :class:`IcsScheduleSource` of its
        feed; any other a :class:`RoundScheduleSource` of its rounds.
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.get(f"{self.prefix}:uprn:{uprn}")
        pipe.get(f"{self.prefix}:ics:{uprn}")
        pipe.hgetall(f"{self.prefix}:rounds")
        pipe.get(f"{self.prefix}:holidays")
        raw_address, raw_feed, raw_rounds, raw_holidays = await pipe.execute()
        if raw_address is None:
            return None
        address = _address(json.loads(raw_address))
        if raw_feed is not None:
            return IcsScheduleSource([address], {uprn: _events(raw_feed)}, _holidays(raw_holidays))
        rounds = {r: _round(r, raw_rounds[r]) for r in address.rounds if r in raw_rounds}
        return RoundScheduleSource([address], rounds, _holidays(raw_holidays))
