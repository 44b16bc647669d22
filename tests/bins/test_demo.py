from __future__ import annotations

from pathlib import Path

from bot.bins.demo import DEMO_DIR, DEMO_FILES, OUTCODES, generate
from bot.bins.model import BinType
from bot.bins.schedule import RoundScheduleSource
from bot.nlu.postcodes import normalise_postcode


def test_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    paths = generate(tmp_path)
    for kind, name in DEMO_FILES.items():
        assert paths[kind].read_bytes() == (DEMO_DIR / name).read_bytes(), name


def test_demo_borough_size_and_shape(demo_source: RoundScheduleSource) -> None:
    addresses = demo_source.all_addresses()
    postcodes = {a.postcode for a in addresses}
    assert len(addresses) >= 2000
    assert len(postcodes) >= 40
    assert all(normalise_postcode(p) == p and p.split()[0] in OUTCODES for p in postcodes)
    assert {p.split()[0] for p in postcodes} == set(OUTCODES)
    kinds = {b for r in demo_source.rounds.values() for b in r.bin_types}
    assert kinds == set(BinType)
    assert {r.interval_weeks for r in demo_source.rounds.values()} == {1, 2}
    assert {r.weekday for r in demo_source.rounds.values()} == {0, 1, 2, 3, 4}
    assert {d.year for d in demo_source.holidays.bank_holidays} == {2026, 2027}
    assert len(demo_source.holidays.bank_holidays) == 16
