"""The demo borough's gazetteer: where each demo address, street and landmark is.

``python -m bot.reports.demo_places`` writes ``data/demo/gazetteer.csv`` from
``data/demo/addresses.csv`` and ``data/demo/landmarks.csv``: the same input always gives the
same bytes (coordinates come from hashes of the postcodes and streets, not from a random
generator), so the committed file can be checked against it. The demo borough is fictional;
its six postcode districts (AV1-AV6) sit inside the demo profile's ``reports.area.bounds``
([52.10, -1.60, 52.25, -1.35]). Districts of the two neighbours the profile names (to the
north and to the south) are listed as ``outcode`` rows, so a postcode there is placed in the
right council's area.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
from collections import defaultdict
from pathlib import Path

from bot.bins.demo import DEMO_DIR

__all__ = ["COLUMNS", "GAZETTEER_FILE", "LANDMARKS", "generate", "main"]

GAZETTEER_FILE = DEMO_DIR / "gazetteer.csv"
COLUMNS = ("kind", "name", "postcode", "uprn", "latitude", "longitude")
"""``kind``: ``address`` (one per UPRN), ``street`` (a street within one postcode, at the middle
of its addresses), ``landmark`` (a named place near a street), ``outcode`` (a postcode district
of a neighbouring council, at its centre)."""

# District centres, three by two across the borough.
_DISTRICTS = {
    "AV1": (52.175, -1.475),
    "AV2": (52.205, -1.525),
    "AV3": (52.205, -1.425),
    "AV4": (52.145, -1.525),
    "AV5": (52.145, -1.425),
    "AV6": (52.175, -1.560),
}
_NEIGHBOURS = {"BK1": (52.31, -1.50), "BK2": (52.33, -1.42), "LM1": (52.03, -1.50)}
LANDMARKS = DEMO_DIR / "landmarks.csv"
"""Rows ``name,street,postcode``: a landmark stands by one demo street (by the postcode's stretch
of it when given, else the first one listed)."""
_HOUSE_METRES = 12.0
_METRES_PER_DEGREE_LAT = 110_540.0


def _unit(*parts: str) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    per_lon = _METRES_PER_DEGREE_LAT * math.cos(math.radians(lat))
    return lat + north_m / _METRES_PER_DEGREE_LAT, lon + east_m / per_lon


def _postcode_centre(postcode: str) -> tuple[float, float]:
    lat, lon = _DISTRICTS[postcode.split()[0]]
    north = (_unit(postcode, "n") - 0.5) * 3_000
    east = (_unit(postcode, "e") - 0.5) * 3_000
    return _offset(lat, lon, north, east)


def _house_number(line: str) -> int:
    first = line.split()[0]
    return int(first) if first.isdigit() else 0


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _rows(addresses: Path, landmarks: Path) -> list[list[str]]:
    records = _read(addresses)
    rows: list[list[str]] = []
    streets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for record in records:
        postcode, line = record["postcode"], record["address"]
        street = line.split(",")[-1].strip()
        street = " ".join(w for w in street.split() if not w.isdigit())
        lat, lon = _postcode_centre(postcode)
        # each street of a postcode runs in its own direction from near the postcode's centre
        angle = _unit(postcode, street) * 2 * math.pi
        start = _offset(lat, lon, (_unit(street, postcode) - 0.5) * 300, 0.0)
        along = _house_number(line) * _HOUSE_METRES / 2
        side = 10.0 if _house_number(line) % 2 else -10.0
        point = _offset(
            *start,
            along * math.cos(angle) - side * math.sin(angle),
            along * math.sin(angle) + side * math.cos(angle),
        )
        streets[(street, postcode)].append(point)
        lat_lon = [f"{point[0]:.6f}", f"{point[1]:.6f}"]
        rows.append(["address", line, postcode, record["uprn"], *lat_lon])
    for (street, postcode), points in sorted(streets.items()):
        lat = sum(p[0] for p in points) / len(points)
        lon = sum(p[1] for p in points) / len(points)
        rows.append(["street", street, postcode, "", f"{lat:.6f}", f"{lon:.6f}"])
    for landmark in _read(landmarks):
        name, street = landmark["name"], landmark["street"]
        where = landmark["postcode"] or min(p for s, p in streets if s == street)
        points = streets[(street, where)]
        lat, lon = _offset(*points[0], 25.0, 25.0)
        rows.append(["landmark", name, where, "", f"{lat:.6f}", f"{lon:.6f}"])
    for outcode, (lat, lon) in _NEIGHBOURS.items():
        rows.append(["outcode", outcode, "", "", f"{lat:.6f}", f"{lon:.6f}"])
    return rows


def generate(
    addresses: Path = DEMO_DIR / "addresses.csv",
    target: Path = GAZETTEER_FILE,
    landmarks: Path = LANDMARKS,
) -> Path:
    """Write the gazetteer of the demo ``addresses`` and ``landmarks`` to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(_rows(addresses, landmarks))
    return target


def main(argv: list[str] | None = None) -> None:
    """Command line: write the demo gazetteer."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addresses", type=Path, default=DEMO_DIR / "addresses.csv")
    parser.add_argument("--landmarks", type=Path, default=LANDMARKS)
    parser.add_argument("target", nargs="?", type=Path, default=GAZETTEER_FILE)
    args = parser.parse_args(argv)
    print(generate(args.addresses, args.target, args.landmarks))


if __name__ == "__main__":
    main()
