"""The CSV schedule files: addresses, rounds and holidays.

Each bad row is reported as a :class:`~bot.errors.ConfigError` naming its file and line and the
rest are kept, so one typo in a 2,000-row export does not stop a council's bin lookups.

``addresses.csv``: ``uprn,address,postcode,rounds`` (rounds separated by ``;``; empty when the
council does not collect there, e.g. a business, or when an iCalendar feed serves the address;
the column may be left out altogether). ``rounds.csv``:
``round,bin_types,weekday,frequency,reference_date`` (bin types ``general;food``, weekday
``Monday``, frequency ``weekly`` or ``fortnightly``). ``holidays.csv``:
``date,kind,moved_to,name`` with kind ``bank_holiday`` (rule-based shifts) or ``change``
(collections scheduled on ``date`` happen on ``moved_to``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TypeVar

from bot.bins.holidays import HolidayTable
from bot.bins.model import Address, BinType, Round
from bot.bins.schedule import RoundScheduleSource
from bot.errors import ConfigError
from bot.nlu.postcodes import normalise_postcode

__all__ = [
    "ADDRESS_COLUMNS",
    "HOLIDAY_COLUMNS",
    "ROUND_COLUMNS",
    "read_addresses",
    "read_holidays",
    "read_rounds",
    "read_schedule",
]

ADDRESS_COLUMNS = ("uprn", "address", "postcode", "rounds")
ROUND_COLUMNS = ("round", "bin_types", "weekday", "frequency", "reference_date")
HOLIDAY_COLUMNS = ("date", "kind", "moved_to", "name")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_FREQUENCIES = {"weekly": 1, "fortnightly": 2}

T = TypeVar("T")
Row = dict[str, str]


class _BadRow(ValueError):
    """A row's problem, turned into a ConfigError with the file and line by ``_rows``."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _rows(
    path: Path,
    columns: tuple[str, ...],
    parse: Callable[[Row], T],
    errors: list[ConfigError],
    optional: tuple[str, ...] = (),
) -> Iterator[T]:
    """Parse each data row of ``path``; bad rows go to ``errors`` with their line number.

    Columns named in ``optional`` may be absent from the file; they then read as empty.
    """
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        present = [c for c in columns if c in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in present and c not in optional]
        if missing:
            raise ConfigError(str(path), "line 1", f"missing columns: {', '.join(missing)}")
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row or any(row[c] is None for c in present):
                errors.append(ConfigError(str(path), where, "wrong number of fields"))
                continue
            try:
                yield parse({c: row[c].strip() if c in present else "" for c in columns})
            except _BadRow as bad:
                errors.append(ConfigError(str(path), f"{where}: {bad.column}", bad.reason))


def _date(row: Row, column: str) -> date:
    try:
        return date.fromisoformat(row[column])
    except ValueError:
        raise _BadRow(column, f"not a YYYY-MM-DD date: {row[column]!r}") from None


def _round(row: Row) -> Round:
    if not row["round"]:
        raise _BadRow("round", "empty round id")
    bin_types = []
    for code in filter(None, row["bin_types"].split(";")):
        try:
            bin_types.append(BinType(code.strip()))
        except ValueError:
            raise _BadRow("bin_types", f"unknown bin type {code!r}") from None
    if not bin_types:
        raise _BadRow("bin_types", "no bin types")
    weekday = row["weekday"].lower()
    if weekday not in _WEEKDAYS:
        raise _BadRow("weekday", f"not a weekday: {row['weekday']!r}")
    frequency = row["frequency"].lower()
    if frequency not in _FREQUENCIES:
        raise _BadRow("frequency", f"not weekly or fortnightly: {row['frequency']!r}")
    reference = _date(row, "reference_date")
    if reference.weekday() != _WEEKDAYS.index(weekday):
        raise _BadRow("reference_date", f"{reference} is not a {row['weekday']}")
    return Round(
        row["round"], tuple(bin_types), _WEEKDAYS.index(weekday), _FREQUENCIES[frequency], reference
    )


def read_rounds(path: Path, errors: list[ConfigError]) -> dict[str, Round]:
    """Read ``rounds.csv``; bad rows (and repeated ids) are appended to ``errors``."""
    rounds: dict[str, Round] = {}
    for rnd in _rows(path, ROUND_COLUMNS, _round, errors):
        if rnd.round_id in rounds:
            errors.append(ConfigError(str(path), "round", f"{rnd.round_id} defined twice"))
            continue
        rounds[rnd.round_id] = rnd
    return rounds


def read_addresses(
    path: Path, rounds: dict[str, Round], errors: list[ConfigError]
) -> list[Address]:
    """Read ``addresses.csv`` against known ``rounds``; bad rows are appended to ``errors``.

    The ``rounds`` column may be left out (a council whose schedules are iCalendar feeds).
    """
    seen: set[str] = set()

    def parse(row: Row) -> Address:
        uprn = row["uprn"]
        if not uprn.isdigit() or len(uprn) > 12:
            raise _BadRow("uprn", f"not a UPRN (up to 12 digits): {uprn!r}")
        if uprn in seen:
            raise _BadRow("uprn", f"{uprn} appears twice")
        if not row["address"]:
            raise _BadRow("address", "empty address")
        postcode = normalise_postcode(row["postcode"])
        if postcode is None:
            raise _BadRow("postcode", f"not a UK postcode: {row['postcode']!r}")
        round_ids = tuple(r.strip() for r in row["rounds"].split(";") if r.strip())
        unknown = [r for r in round_ids if r not in rounds]
        if unknown:
            raise _BadRow("rounds", f"unknown round {', '.join(unknown)}")
        seen.add(uprn)
        return Address(uprn, " ".join(row["address"].split()), postcode, round_ids)

    return list(_rows(path, ADDRESS_COLUMNS, parse, errors, optional=("rounds",)))


def read_holidays(path: Path, errors: list[ConfigError]) -> HolidayTable:
    """Read ``holidays.csv``; bad rows are appended to ``errors``."""

    def parse(row: Row) -> tuple[date, date | None]:
        day = _date(row, "date")
        if row["kind"] == "bank_holiday":
            return day, None
        if row["kind"] == "change":
            return day, _date(row, "moved_to")
        raise _BadRow("kind", f"not bank_holiday or change: {row['kind']!r}")

    bank_holidays: list[date] = []
    changes: dict[date, date] = {}
    for day, moved_to in _rows(path, HOLIDAY_COLUMNS, parse, errors):
        if moved_to is None:
            bank_holidays.append(day)
        else:
            changes[day] = moved_to
    return HolidayTable.build(bank_holidays, changes)


def read_schedule(
    addresses: Path, rounds: Path, holidays: Path
) -> tuple[RoundScheduleSource, list[ConfigError]]:
    """Read the three files into a schedule source, with every bad row found.

    Raises:
        ConfigError: A file cannot be read or lacks a required column.
    """
    errors: list[ConfigError] = []
    known_rounds = read_rounds(rounds, errors)
    table = read_holidays(holidays, errors)
    source = RoundScheduleSource(
        read_addresses(addresses, known_rounds, errors), known_rounds, table
    )
    return source, errors
