"""Load bin schedules into Redis: ``python -m bot.bins.load --demo`` or three CSV files.

Every bad row is printed with its file and line number and the rest are loaded; the command
exits 1 when any row was rejected so a scheduled import shows up as failed. Loading the same
files again gives the same Redis contents.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import redis

from bot.bins.csv_source import read_schedule
from bot.bins.demo import DEMO_DIR, DEMO_FILES
from bot.bins.store import write_schedule
from bot.errors import ConfigError
from bot.keys import namespace as default_namespace
from bot.redis_conn import connect

__all__ = ["LoadResult", "load_files", "main"]


@dataclass(frozen=True)
class LoadResult:
    """What a load did.

    Attributes:
        loaded: Addresses written.
        errors: The rejected rows.
    """

    loaded: int
    errors: list[ConfigError]


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


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", action="store_true", help="load the Ashvale demo files")
    parser.add_argument("--addresses", type=Path)
    parser.add_argument("--rounds", type=Path)
    parser.add_argument("--holidays", type=Path)
    parser.add_argument("--namespace", default=None, help="key namespace (default: cr)")
    parser.add_argument("--redis-url", default=None, help="default: REDIS_URL")
    args = parser.parse_args(argv)
    if args.demo:
        paths = [DEMO_DIR / DEMO_FILES[kind] for kind in ("addresses", "rounds", "holidays")]
    elif args.addresses and args.rounds and args.holidays:
        paths = [args.addresses, args.rounds, args.holidays]
    else:
        parser.error("give --demo, or all of --addresses, --rounds and --holidays")
    client = connect(args.redis_url)
    try:
        result = load_files(client, args.namespace or default_namespace(), *paths)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    for error in result.errors:
        print(f"bad row: {error}", file=sys.stderr)
    print(f"loaded {result.loaded} addresses, rejected {len(result.errors)} rows")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
