"""The council's address gazetteer: where a problem is, from a resident's words or a pin.

A gazetteer file (named by the profile's ``reports.gazetteer``; the demo's is
``data/demo/gazetteer.csv``; columns in :data:`bot.reports.demo_places.COLUMNS`) lists
addresses, streets (one row per stretch of a street in one postcode), landmarks and
neighbouring councils' postcode districts, each with WGS84 coordinates.
:meth:`Gazetteer.place` reads a postcode, an address, a street or a landmark in a message;
:meth:`Gazetteer.nearest` names the street nearest a pin (for the summary a resident confirms).
:func:`place_pin` and :func:`place_text` add the council's area (``reports.area`` of the
profile): outside it, the answer names the neighbouring council when the area knows it; a pin
outside every known area or far from any street (in the sea) is ``NOWHERE``.
"""

from __future__ import annotations

import csv
import math
import re
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ConfigError
from bot.nlu.postcodes import find_postcodes

if TYPE_CHECKING:  # config reads the gazetteer at start-up: no import cycle at run time
    from bot.reports.config import Area

__all__ = [
    "MAX_PIN_DISTANCE_M",
    "Gazetteer",
    "Place",
    "Placed",
    "Status",
    "distance_m",
    "gazetteer",
    "place_pin",
    "place_text",
]

MAX_PIN_DISTANCE_M = 2_000.0
"""A pin further than this from every street in the gazetteer is not somewhere we can send
a crew (a pin dropped in the sea, or far outside the mapped streets)."""

_KINDS = ("address", "street", "landmark", "outcode")
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")
_METRES_PER_DEGREE_LAT = 110_540.0
_METRES_PER_DEGREE_LON = 111_320.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two points (equirectangular: exact enough within a borough)."""
    mean = math.radians((lat1 + lat2) / 2)
    north = (lat2 - lat1) * _METRES_PER_DEGREE_LAT
    east = (lon2 - lon1) * _METRES_PER_DEGREE_LON * math.cos(mean)
    return math.hypot(north, east)


def _words(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.lower().replace("'", "")).split())


@dataclass(frozen=True)
class Place:
    """Somewhere in the gazetteer.

    Attributes:
        kind: ``address``, ``street``, ``landmark``, ``postcode`` or ``pin``.
        name: The address line, street or landmark ("Central Library").
        street: The street it is on ("" for a postcode or a neighbour's district).
        postcode: Its postcode ("" when the row has none).
        latitude: Degrees north.
        longitude: Degrees east.
    """

    kind: str
    name: str
    street: str
    postcode: str
    latitude: float
    longitude: float

    @property
    def address_string(self) -> str:
        """How the place reads in a summary and in Open311's ``address_string``."""
        parts = [self.name]
        if self.street and self.street != self.name and self.kind != "address":
            parts.append(self.street)
        if self.postcode and self.postcode != self.name:
            parts.append(self.postcode)
        return ", ".join(p for p in parts if p)


class Status(Enum):
    """What placing a location found."""

    FOUND = "found"
    AMBIGUOUS = "ambiguous"  # a street name several parts of the borough share
    OUTSIDE = "outside"  # another council's area
    NOWHERE = "nowhere"  # a pin outside every known area, or far from any street
    UNKNOWN = "unknown"  # words that name no place we know


@dataclass(frozen=True)
class Placed:
    """The answer of a placing: its status, the place, the candidates or the other council.

    Attributes:
        status: What was found.
        place: The place (``FOUND``), or where the words pointed (``OUTSIDE``, when known).
        candidates: The places a name matched (``AMBIGUOUS``).
        council: The neighbouring council (``OUTSIDE``, "" when the area does not know it).
    """

    status: Status
    place: Place | None = None
    candidates: tuple[Place, ...] = ()
    council: str = ""


@dataclass
class Gazetteer:
    """Places by name and position (loaded from a file; a few thousand rows, in memory)."""

    places: list[Place] = field(default_factory=list)
    _by_postcode: dict[str, list[Place]] = field(default_factory=lambda: defaultdict(list))
    _by_name: dict[str, list[Place]] = field(default_factory=lambda: defaultdict(list))
    _streets: list[Place] = field(default_factory=list)
    _outcodes: dict[str, Place] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Gazetteer:
        """Read a gazetteer file.

        Raises:
            ConfigError: The file is missing, or a row has a bad kind or coordinate (the key
                names the line and column).
        """
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                return cls.from_rows(csv.DictReader(handle), str(path))
        except OSError as exc:
            raise ConfigError(str(path), "", f"cannot read the gazetteer: {exc.strerror}") from None

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, str]], source: str = "gazetteer") -> Gazetteer:
        """Build from rows with the file's columns.

        Raises:
            ConfigError: A row has a bad kind or coordinate.
        """
        found = cls()
        landmarks = []
        for line, row in enumerate(rows, start=2):
            kind = (row.get("kind") or "").strip()
            if kind not in _KINDS:
                raise ConfigError(source, f"line {line}: kind", f"must be one of {_KINDS}")
            try:
                lat, lon = float(row["latitude"]), float(row["longitude"])
            except (KeyError, TypeError, ValueError):
                raise ConfigError(source, f"line {line}: latitude", "not a number") from None
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ConfigError(source, f"line {line}: latitude", "out of range")
            name = (row.get("name") or "").strip()
            street = name
            if kind == "address":
                street = " ".join(w for w in name.split(",")[-1].split() if not w.isdigit())
            place = Place(kind, name, street, (row.get("postcode") or "").strip(), lat, lon)
            if kind == "landmark":
                landmarks.append(place)
            else:
                found.add(place)
        for landmark in landmarks:
            # a landmark reads "Central Library, Mill Lane, AV1 2BX": its nearest street
            near = found.nearest(landmark.latitude, landmark.longitude)
            street = near.street if near else ""
            found.add(Place("landmark", landmark.name, street, *astuple(landmark)[3:]))
        return found

    def add(self, place: Place) -> None:
        """Index one place."""
        if place.kind == "outcode":
            self._outcodes[place.name.upper()] = place
            return
        self.places.append(place)
        if place.postcode:
            self._by_postcode[place.postcode].append(place)
        if place.kind in {"street", "landmark"}:
            self._by_name[_words(place.name)].append(place)
        if place.kind == "street":
            self._streets.append(place)

    def nearest(
        self, latitude: float, longitude: float, within_m: float = MAX_PIN_DISTANCE_M
    ) -> Place | None:
        """The nearest address or street within ``within_m`` metres, as its street."""
        best: tuple[float, Place] | None = None
        for place in self.places:
            if place.kind not in {"address", "street"}:
                continue
            metres = distance_m(latitude, longitude, place.latitude, place.longitude)
            if metres <= within_m and (best is None or metres < best[0]):
                best = (metres, place)
        if best is None:
            return None
        near = best[1]
        return Place("pin", near.street, near.street, near.postcode, latitude, longitude)

    def place(self, text: str) -> Placed:
        """Where ``text`` points: a postcode, a house address, a landmark or a street.

        With a postcode, an address, landmark or street named with it wins. Never raises for
        what a resident wrote; :attr:`Placed.status` says what was found.
        """
        words = _words(text)
        postcodes = [m.postcode for m in find_postcodes(text) if m.postcode]
        if postcodes:
            return self._at_postcode(postcodes[0], words)
        houses = [p for p in self.places if p.kind == "address" and _words(p.name) in words]
        if len({(p.name, p.postcode) for p in houses}) == 1:
            return Placed(Status.FOUND, houses[0])
        for kind in ("landmark", "street"):
            named = self._named(words, kind)
            if len(named) == 1:
                return Placed(Status.FOUND, named[0])
            if named:
                return Placed(Status.AMBIGUOUS, candidates=tuple(named))
        return Placed(Status.UNKNOWN)

    def _named(self, words: str, kind: str) -> list[Place]:
        padded = f" {words} "
        matches = [
            (len(name), place)
            for name, places in self._by_name.items()
            for place in places
            if place.kind == kind and f" {name} " in padded
        ]
        if not matches:
            return []
        longest = max(length for length, _ in matches)
        return [place for length, place in matches if length == longest]

    def _at_postcode(self, postcode: str, words: str) -> Placed:
        here = self._by_postcode.get(postcode, [])
        if not here:
            outcode = self._outcodes.get(postcode.split()[0])
            if outcode is not None:
                where = Place(
                    "postcode", postcode, "", postcode, outcode.latitude, outcode.longitude
                )
                return Placed(Status.OUTSIDE, where)
            return Placed(Status.UNKNOWN)
        for kind in ("address", "landmark", "street"):
            named = [p for p in here if p.kind == kind and f" {_words(p.name)} " in f" {words} "]
            if named:
                return Placed(Status.FOUND, max(named, key=lambda p: len(p.name)))
        streets = [p for p in here if p.kind == "street"]
        lat = sum(p.latitude for p in streets) / len(streets)
        lon = sum(p.longitude for p in streets) / len(streets)
        return Placed(Status.FOUND, Place("postcode", postcode, "", postcode, lat, lon))


def place_pin(gazetteer: Gazetteer, area: Area | None, latitude: float, longitude: float) -> Placed:
    """Where a location pin is: our street, another council's area, or nowhere we know."""
    if area is not None and not area.bounds.contains(latitude, longitude):
        neighbour = area.neighbour_at(latitude, longitude)
        if neighbour is None:
            return Placed(Status.NOWHERE)
        where = Place("pin", "", "", "", latitude, longitude)
        return Placed(Status.OUTSIDE, where, council=neighbour.name)
    near = gazetteer.nearest(latitude, longitude)
    return Placed(Status.FOUND, near) if near else Placed(Status.NOWHERE)


def place_text(gazetteer: Gazetteer, area: Area | None, text: str) -> Placed:
    """Where the words point, with the neighbouring council named when the area knows it."""
    placed = gazetteer.place(text)
    if placed.status is Status.OUTSIDE and placed.place is not None and area is not None:
        neighbour = area.neighbour_at(placed.place.latitude, placed.place.longitude)
        return Placed(Status.OUTSIDE, placed.place, council=neighbour.name if neighbour else "")
    found = placed.place if placed.status is Status.FOUND else None
    if found and area and not area.bounds.contains(found.latitude, found.longitude):
        return place_pin(gazetteer, area, found.latitude, found.longitude)
    return placed


_lock = threading.Lock()
_loaded: dict[Path, Gazetteer] = {}


def gazetteer(path: Path) -> Gazetteer:
    """The gazetteer at ``path``, read once per process.

    Raises:
        ConfigError: The file is missing or has a bad row.
    """
    with _lock:
        if path not in _loaded:
            _loaded[path] = Gazetteer.load(path)
        return _loaded[path]
