"""Bin schedules in Redis, indexed by postcode and UPRN for millisecond lookups.

Keys (all under ``{ns}:bins:``): ``pc:{postcode}`` JSON list of addresses, ``uprn:{uprn}`` JSON
address, ``rounds`` hash of JSON rounds, ``holidays`` JSON table, ``outcodes`` set of the
borough's outcodes (to tell "outside the borough" from "unknown postcode").
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis
import redis.asyncio

from bot.bins.holidays import HolidayTable
from bot.bins.model import Address, BinType, Round
from bot.bins.schedule import RoundScheduleSource
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


def _address_json(address: Address) -> dict[str, Any]:
    return {
        "uprn": address.uprn,
        "line": address.line,
        "pc": address.postcode,
        "rounds": list(address.rounds),
    }


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
) -> int:
    """Replace the stored schedule with these rows in one transaction; return addresses written.

    Loading the same files twice leaves Redis exactly as after the first load.
    """
    prefix = _prefix(namespace)
    by_postcode: dict[str, list[dict[str, Any]]] = {}
    pipe = client.pipeline(transaction=True)
    old = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if old:
        pipe.delete(*old)
    count = 0
    for address in addresses:
        data = _address_json(address)
        by_postcode.setdefault(address.postcode, []).append(data)
        pipe.set(f"{prefix}:uprn:{address.uprn}", json.dumps(data))
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
        addresses = tuple(a for a in map(_address, json.loads(raw)) if a.rounds)
        if not addresses:
            return PostcodeLookup(PostcodeStatus.NO_ADDRESSES, postcode)
        return PostcodeLookup(PostcodeStatus.FOUND, postcode, addresses)

    async def schedule(self, uprn: str) -> RoundScheduleSource | None:
        """The schedule source for one address (one Redis round trip), or None if unknown."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(f"{self.prefix}:uprn:{uprn}")
        pipe.hgetall(f"{self.prefix}:rounds")
        pipe.get(f"{self.prefix}:holidays")
        raw_address, raw_rounds, raw_holidays = await pipe.execute()
        if raw_address is None:
            return None
        address = _address(json.loads(raw_address))
        rounds = {r: _round(r, raw_rounds[r]) for r in address.rounds if r in raw_rounds}
        return RoundScheduleSource([address], rounds, _holidays(raw_holidays))
