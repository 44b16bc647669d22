"""Load bin schedules into Redis: the demo, three CSV files, or iCalendar feeds.

Usage::

    python -m bot.bins.load --demo
    python -m bot.bins.load --addresses addresses.csv --rounds rounds.csv --holidays holidays.csv
    python -m bot.bins.load --addresses addresses.csv --ics-dir feeds/ [--holidays holidays.csv]

With ``--ics-dir`` each address is answered from the feed ``<uprn>.ics`` in that folder (one
iCalendar document per address, read by :func:`bot.bins.ics.parse_calendar`); the address
file's ``rounds`` column may then be left out. An address without a feed falls back to its
rounds (give ``--rounds`` for a borough that mixes both), or is not collected from when it has
none. ``--holidays`` is optional with feeds: feeds carry their own holiday moves, and the bank
holidays only count working days for missed-bin reports.

Every bad row or feed is printed with its file and line number and the rest are loaded; a
rejected feed leaves its address out, as a bad row does. The command exits 1 when anything was
rejected so a scheduled import shows up as failed (2 when a whole file or the feed folder is
unusable: nothing is loaded then). Loading the same files again gives the same Redis contents,
and addresses no longer in the files disappear.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bot.bins.csv_source import read_addresses, read_holidays, read_rounds, read_schedule
from bot.bins.demo import DEMO_DIR, DEMO_FILES
from bot.bins.holidays import HolidayTable
from bot.bins.ics import IcsEvent, parse_calendar
from bot.bins.store import write_schedule
from bot.errors import ConfigError
from bot.keys import namespace as default_namespace
from bot.redis_conn import connect

__all__ = ["LoadResult", "load_feeds", "load_files", "main"]

_MAX_UPRN_DIGITS = 12


@dataclass(frozen=True)
class LoadResult:
    """What a load did.

    Attributes:
        loaded: Addresses written.
        errors: The rejected rows and feeds.
        feeds: Addresses written with an iCalendar feed.
    """

    loaded: int
    errors: list[ConfigError]
    feeds: int = 0


@dataclass
class _Feeds:
    """The feeds of a folder: parsed ones by UPRN, and the UPRNs whose feed was rejected."""

    parsed: dict[str, list[IcsEvent]] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)


def load_files(
    client: redis.Redis, namespace: str, addresses: Path, rounds: Path, holidays: Path
) -> LoadResult:
    """Read the three CSV files and replace the stored schedule with their good rows.

    Raises:
        ConfigError: A file cannot be read or lacks a required column (nothing is loaded).
    """
    source, errors = read_schedule(addresses, rounds, holidays)
    loaded = write_schedule(
        client, namespace, source.all_addresses(), source.rounds.values(), source.holidays
    )
    return LoadResult(loaded, errors)


def _read_feeds(directory: Path, errors: list[ConfigError]) -> _Feeds:
    """Parse every ``<uprn>.ics`` in ``directory``; each bad one is appended to ``errors``."""
    try:
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".ics")
    except OSError as exc:
        raise ConfigError(
            str(directory), "", f"cannot read the feed folder: {exc.strerror}"
        ) from exc
    feeds = _Feeds()
    for path in paths:
        uprn = path.stem
        if not uprn.isdigit() or len(uprn) > _MAX_UPRN_DIGITS:
            errors.append(ConfigError(str(path), "", "the file name must be <uprn>.ics"))
            continue
        try:
            # utf-8-sig: a byte order mark would otherwise hide BEGIN:VCALENDAR.
            feeds.parsed[uprn] = parse_calendar(path.read_text(encoding="utf-8-sig"), str(path))
        except ConfigError as exc:
            errors.append(exc)
            feeds.rejected.add(uprn)
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ConfigError(str(path), "", f"cannot read: {exc}"))
            feeds.rejected.add(uprn)
    return feeds


def load_feeds(
    client: redis.Redis,
    namespace: str,
    addresses: Path,
    ics_dir: Path,
    *,
    rounds: Path | None = None,
    holidays: Path | None = None,
) -> LoadResult:
    """Read the addresses and their iCalendar feeds and replace the stored schedule with them.

    Args:
        client: A Redis client.
        namespace: Key namespace (``"cr"`` in production).
        addresses: ``addresses.csv`` (the ``rounds`` column is optional).
        ics_dir: Folder of ``<uprn>.ics`` feeds, one per address.
        rounds: ``rounds.csv`` for addresses without a feed, if any.
        holidays: ``holidays.csv``: bank holidays for counting working days.

    A bad feed is reported (with its file and line) and its address left out; a feed whose
    UPRN is not a loaded address is reported and ignored.

    Raises:
        ConfigError: A file or the folder cannot be read, or a file lacks a required column
            (nothing is loaded).
    """
    errors: list[ConfigError] = []
    known_rounds = read_rounds(rounds, errors) if rounds else {}
    table = read_holidays(holidays, errors) if holidays else HolidayTable()
    rows = read_addresses(addresses, known_rounds, errors)
    feeds = _read_feeds(ics_dir, errors)
    kept = [row for row in rows if row.uprn not in feeds.rejected]
    uprns = {row.uprn for row in kept}
    for uprn in sorted(set(feeds.parsed) - uprns):
        where = str(ics_dir / f"{uprn}.ics")
        errors.append(
            ConfigError(where, "", f"no address with UPRN {uprn} was loaded from {addresses}")
        )
        del feeds.parsed[uprn]
    loaded = write_schedule(
        client, namespace, kept, known_rounds.values(), table, feeds=feeds.parsed
    )
    return LoadResult(loaded, errors, len(feeds.parsed))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--demo", action="store_true", help="load the demo council's files (data/demo/)"
    )
    parser.add_argument("--addresses", type=Path)
    parser.add_argument("--rounds", type=Path)
    parser.add_argument("--holidays", type=Path)
    parser.add_argument("--ics-dir", type=Path, help="folder of <uprn>.ics feeds")
    parser.add_argument("--namespace", default=None, help="key namespace (default: cr)")
    parser.add_argument("--redis-url", default=None, help="default: REDIS_URL")
    args = parser.parse_args(argv)
    if args.demo and (args.addresses or args.rounds or args.holidays or args.ics_dir):
        parser.error("--demo loads the demo files only: give it alone")
    feeds = args.ics_dir is not None
    if args.demo:
        paths = [DEMO_DIR / DEMO_FILES[kind] for kind in ("addresses", "rounds", "holidays")]
    elif args.addresses and (feeds or (args.rounds and args.holidays)):
        paths = [args.addresses, args.rounds, args.holidays]
    else:
        parser.error(
            "give --demo, all of --addresses, --rounds and --holidays, or --addresses and --ics-dir"
        )
    client = connect(args.redis_url)
    ns = args.namespace or default_namespace()
    try:
        if feeds:
            result = load_feeds(
                client, ns, args.addresses, args.ics_dir, rounds=args.rounds, holidays=args.holidays
            )
        else:
            result = load_files(client, ns, *paths)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    for error in result.errors:
        kind = "feed" if error.path.lower().endswith(".ics") else "row"
        print(f"bad {kind}: {error}", file=sys.stderr)
    if feeds:
        print(
            f"loaded {result.loaded} addresses ({result.feeds} from iCalendar feeds), "
            f"rejected {len(result.errors)} rows or feeds"
        )
    else:
        print(f"loaded {result.loaded} addresses, rejected {len(result.errors)} rows")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
