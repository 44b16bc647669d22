"""The demo council's fictional borough: deterministic generator of the demo schedule files.

``python -m bot.bins.demo [folder]`` rewrites ``data/demo/{addresses,rounds,holidays}.csv``;
the same code (and the same council profile, whose short name two street names borrow) always
produces the same bytes, so the committed files can be checked against it.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import date, timedelta
from pathlib import Path

from bot.bins.csv_source import ADDRESS_COLUMNS, HOLIDAY_COLUMNS, ROUND_COLUMNS
from bot.profile import current as council_profile

__all__ = ["DEMO_DIR", "DEMO_FILES", "OUTCODES", "generate", "main"]

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo"
DEMO_FILES = {"addresses": "addresses.csv", "rounds": "rounds.csv", "holidays": "holidays.csv"}
OUTCODES = ("AV1", "AV2", "AV3", "AV4", "AV5", "AV6")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
# Week "A" rounds are collected in the week of Monday 5 January 2026, "B" rounds a week later.
_WEEK_A = date(2026, 1, 5)
_STREETS = (
    "Mill Lane",
    "Orchard Close",
    "Station Road",
    "Park Avenue",
    "Elm Road",
    "High Street",
    "Church Lane",
    "Meadow Way",
    "Willow Crescent",
    "{place} Road",
    "Kingfisher Drive",
    "Oak Grove",
    "Beech Walk",
    "Riverside Court",
    "Chestnut Rise",
    "Victoria Terrace",
    "Heron Mews",
    "Queens Road",
    "Larch Gardens",
    "Foundry Row",
    "Bramble Close",
    "Cedar Way",
)
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# Postcodes the NLU examples use, so the demo answers them.
_FIXED = {
    "AV1 2BX": ["2 Mill Lane", "4 Mill Lane", "6 Mill Lane", "8 Mill Lane"],
    "AV5 1QA": ["The Old Rectory, Church Lane"],
}
_ALSO = ("AV3 4DT", "AV2 7HN", "AV4 9LP", "AV6 3ER", "AV2 5GG", "AV1 2BA")
_BUSINESS_ONLY = "AV6 9ZZ"
# England and Wales bank holidays 2026-2027 (gov.uk).
_BANK_HOLIDAYS = (
    ("2026-01-01", "New Year's Day"),
    ("2026-04-03", "Good Friday"),
    ("2026-04-06", "Easter Monday"),
    ("2026-05-04", "Early May bank holiday"),
    ("2026-05-25", "Spring bank holiday"),
    ("2026-08-31", "Summer bank holiday"),
    ("2026-12-25", "Christmas Day"),
    ("2026-12-28", "Boxing Day (substitute day)"),
    ("2027-01-01", "New Year's Day"),
    ("2027-03-26", "Good Friday"),
    ("2027-03-29", "Easter Monday"),
    ("2027-05-03", "Early May bank holiday"),
    ("2027-05-31", "Spring bank holiday"),
    ("2027-08-30", "Summer bank holiday"),
    ("2027-12-27", "Christmas Day (substitute day)"),
    ("2027-12-28", "Boxing Day (substitute day)"),
)
# Year-end moves the one-day-later rule gets wrong (it would land on New Year's Day or a Sunday).
_CHANGES = (
    ("2026-12-31", "2027-01-02", "Thursday 31 December collections on Saturday 2 January"),
    ("2027-01-01", "2027-01-02", "Friday 1 January collections on Saturday 2 January"),
    ("2027-12-31", "2028-01-01", "Friday 31 December collections on Saturday 1 January"),
)


def _rounds() -> list[list[str]]:
    rows = []
    for index, day in enumerate(_DAYS):
        week_a = _WEEK_A + timedelta(days=index)
        rows.append([f"{day[:3].upper()}-FOOD", "food", day, "weekly", week_a.isoformat()])
        for week, reference in (("A", week_a), ("B", week_a + timedelta(days=7))):
            for code, kind in (("GEN", "general"), ("REC", "recycling"), ("GDN", "garden")):
                round_id = f"{day[:3].upper()}-{code}-{week}"
                rows.append([round_id, kind, day, "fortnightly", reference.isoformat()])
    return rows


def _postcodes(rng: random.Random) -> list[str]:
    postcodes = list(_FIXED) + list(_ALSO)
    while len(postcodes) < 46:
        inward = f"{rng.randint(1, 9)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"
        postcode = f"{rng.choice(OUTCODES)} {inward}"
        if postcode not in postcodes and postcode != _BUSINESS_ONLY:
            postcodes.append(postcode)
    return postcodes


def _addresses(rng: random.Random) -> list[list[str]]:
    place = council_profile().short_name
    rows = []
    uprn = 100_090_000_000
    for postcode in _postcodes(rng):
        day = rng.choice(_DAYS)[:3].upper()
        general_week, recycling_week = rng.choice((("A", "B"), ("B", "A")))
        if postcode in _FIXED:
            lines = _FIXED[postcode]
        else:
            streets = [s.format(place=place) for s in rng.sample(_STREETS, 2)]
            lines = [f"{n} {streets[n % 2]}" for n in range(1, rng.randint(44, 52) + 1)]
        for line in lines:
            uprn += 1
            rounds = [f"{day}-FOOD", f"{day}-GEN-{general_week}", f"{day}-REC-{recycling_week}"]
            if rng.random() < 0.6:  # garden waste is a paid subscription
                rounds.append(f"{day}-GDN-{recycling_week}")
            rows.append([str(uprn), line, postcode, ";".join(rounds)])
    for unit in range(1, 6):
        uprn += 1
        rows.append([str(uprn), f"Unit {unit}, {place} Business Park", _BUSINESS_ONLY, ""])
    return rows


def _holidays() -> list[list[str]]:
    rows = [[day, "bank_holiday", "", name] for day, name in _BANK_HOLIDAYS]
    return rows + [[day, "change", moved_to, name] for day, moved_to, name in _CHANGES]


def generate(folder: Path = DEMO_DIR, seed: int = 2026) -> dict[str, Path]:
    """Write the demo files into ``folder`` and return their paths by kind."""
    rng = random.Random(seed)  # noqa: S311 (fictional data, not security)
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "addresses": (ADDRESS_COLUMNS, _addresses(rng)),
        "rounds": (ROUND_COLUMNS, _rounds()),
        "holidays": (HOLIDAY_COLUMNS, _holidays()),
    }
    paths = {}
    for kind, (header, rows) in contents.items():
        path = folder / DEMO_FILES[kind]
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        paths[kind] = path
    return paths


def main(argv: list[str] | None = None) -> None:
    """Command line: write the demo files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=DEMO_DIR)
    args = parser.parse_args(argv)
    for path in generate(args.folder).values():
        print(path)


if __name__ == "__main__":
    main()
