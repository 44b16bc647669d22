"""Placing a problem: a resident's words or pin become a position and a street in the summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.profile import current as council_profile
from bot.reports.config import Area, Bounds, Neighbour
from bot.reports.demo_places import GAZETTEER_FILE, generate
from bot.reports.gazetteer import Gazetteer, Status, distance_m, place_pin, place_text

AREA = Area(
    Bounds(52.10, -1.60, 52.25, -1.35),
    (
        Neighbour("Brackwell District Council", Bounds(52.25, -1.60, 52.40, -1.35)),
        Neighbour("Lowmoor Borough Council", Bounds(51.95, -1.60, 52.10, -1.35)),
    ),
)


@pytest.fixture(scope="module")
def places() -> Gazetteer:
    return Gazetteer.load(GAZETTEER_FILE)


def test_committed_gazetteer_is_what_the_generator_writes(tmp_path: Path) -> None:
    assert generate(target=tmp_path / "g.csv").read_bytes() == GAZETTEER_FILE.read_bytes()


def test_every_demo_address_has_a_position_inside_the_demo_profiles_area(
    places: Gazetteer,
) -> None:
    addresses = [p for p in places.places if p.kind == "address"]
    assert len(addresses) >= 2000
    area = council_profile().reports
    assert area is not None and area.area is not None
    assert all(area.area.bounds.contains(p.latitude, p.longitude) for p in places.places)
    # neighbours' house numbers are a few metres apart, as on a real street
    two, four = (places.place(f"{n} Mill Lane AV1 2BX").place for n in (2, 4))
    assert two is not None and four is not None
    assert 5 < distance_m(two.latitude, two.longitude, four.latitude, four.longitude) < 40


@pytest.mark.parametrize(
    ("text", "kind", "reads"),
    [
        ("AV1 2BX", "postcode", "AV1 2BX"),
        ("av12bx", "postcode", "AV1 2BX"),
        ("outside 4 Mill Lane, AV1 2BX", "address", "4 Mill Lane, AV1 2BX"),
        ("by the library on Mill Lane", "street", ""),  # several Mill Lanes: not this one
        ("near Ashvale Library", "landmark", "Ashvale Library, Mill Lane, AV1 2BX"),
        ("opposite St Mary's church", "landmark", "St Mary's Church, Church Lane, AV5 1QA"),
        ("The Old Rectory, Church Lane", "address", "The Old Rectory, Church Lane, AV5 1QA"),
    ],
)
def test_words_are_placed(places: Gazetteer, text: str, kind: str, reads: str) -> None:
    placed = places.place(text)
    if not reads:
        assert placed.status is Status.AMBIGUOUS
        assert len(placed.candidates) > 1 and {c.kind for c in placed.candidates} == {kind}
        return
    assert placed.status is Status.FOUND and placed.place is not None
    assert (placed.place.kind, placed.place.address_string) == (kind, reads)


def test_a_street_with_its_postcode_is_one_place(places: Gazetteer) -> None:
    ambiguous = places.place("pothole on Mill Lane")
    assert ambiguous.status is Status.AMBIGUOUS
    postcode = ambiguous.candidates[0].postcode
    placed = places.place(f"Mill Lane {postcode}")
    assert placed.status is Status.FOUND and placed.place is not None
    assert placed.place.kind == "street" and placed.place.postcode == postcode


def test_words_that_name_nothing(places: Gazetteer) -> None:
    assert places.place("somewhere near the big tree").status is Status.UNKNOWN
    assert places.place("AV1 9ZZ").status is Status.UNKNOWN  # our district, no such postcode
    assert places.place("SW1A 1AA").status is Status.UNKNOWN  # a district nobody listed


def test_a_neighbours_postcode_names_the_neighbour(places: Gazetteer) -> None:
    placed = place_text(places, AREA, "it's on the main road, BK1 4RT")
    assert placed.status is Status.OUTSIDE and placed.council == "Brackwell District Council"
    lowmoor = place_text(places, AREA, "LM1 2AB")
    assert lowmoor.council == "Lowmoor Borough Council"


def test_a_pin_gets_the_nearest_street_for_the_summary(places: Gazetteer) -> None:
    library = places.place("Ashvale Library")
    assert library.place is not None
    placed = place_pin(places, AREA, library.place.latitude, library.place.longitude)
    assert placed.status is Status.FOUND and placed.place is not None
    assert placed.place.kind == "pin" and placed.place.address_string == "Mill Lane, AV1 2BX"
    assert placed.place.latitude == library.place.latitude  # the pin itself, not the street's


def test_pins_outside_the_area_in_the_sea_or_far_from_any_street(places: Gazetteer) -> None:
    north = place_pin(places, AREA, 52.30, -1.50)
    assert north.status is Status.OUTSIDE and north.council == "Brackwell District Council"
    assert place_pin(places, AREA, 50.0, -3.0).status is Status.NOWHERE  # the Channel
    corner = place_pin(places, AREA, 52.101, -1.351)  # inside the bounds, no street for miles
    assert corner.status is Status.NOWHERE
    assert place_pin(places, None, 50.0, -3.0).status is Status.NOWHERE  # no area configured


def test_a_bad_gazetteer_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "g.csv"
    bad.write_text("kind,name,postcode,uprn,latitude,longitude\nstreet,A Road,AV1 1AA,,north,1\n")
    with pytest.raises(ConfigError, match=r"g\.csv: line 2: latitude: not a number"):
        Gazetteer.load(bad)
    with pytest.raises(ConfigError, match="cannot read the gazetteer"):
        Gazetteer.load(tmp_path / "missing.csv")
