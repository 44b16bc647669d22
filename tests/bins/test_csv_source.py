from __future__ import annotations

from pathlib import Path

import pytest

from bot.bins.csv_source import read_schedule
from bot.bins.model import BinType
from bot.errors import ConfigError

ROUNDS = """round,bin_types,weekday,frequency,reference_date
MON-A,general;food,Monday,fortnightly,2026-01-05
TUE-A,recycling,Tuesday,weekly,2026-01-06
BAD-1,plastic,Monday,weekly,2026-01-05
BAD-2,general,Funday,weekly,2026-01-05
BAD-3,general,Monday,monthly,2026-01-05
BAD-4,general,Monday,weekly,2026-01-06
"""
ADDRESSES = """uprn,address,postcode,rounds
1001,2 Mill Lane,av1 2bx,MON-A;TUE-A
1002,4 Mill Lane,AV1 2BX,MON-A
1003,6 Mill Lane,AV1 2BX,NOPE
abc,8 Mill Lane,AV1 2BX,MON-A
1001,10 Mill Lane,AV1 2BX,MON-A
1004,12 Mill Lane,ZZ99 9ZZZ,MON-A
1005,,AV1 2BX,MON-A
1006,"Unit 1, Business Park",AV6 9ZZ,
1007,too,many,fields,here
"""
HOLIDAYS = """date,kind,moved_to,name
2026-12-25,bank_holiday,,Christmas Day
2026-12-31,change,2027-01-02,New Year
2026-13-01,bank_holiday,,Nonsense
2026-12-30,moved,2027-01-02,Bad kind
"""


def _write(tmp_path: Path, addresses: str = ADDRESSES) -> list[Path]:
    paths = []
    for name, text in (("a.csv", addresses), ("r.csv", ROUNDS), ("h.csv", HOLIDAYS)):
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    return paths


def test_bad_rows_are_reported_with_file_and_line_and_the_rest_kept(tmp_path: Path) -> None:
    addresses, rounds, holidays = _write(tmp_path)
    source, errors = read_schedule(addresses, rounds, holidays)
    where = sorted((Path(e.path).name, e.key) for e in errors)
    assert where == [
        ("a.csv", "line 10"),
        ("a.csv", "line 4: rounds"),
        ("a.csv", "line 5: uprn"),
        ("a.csv", "line 6: uprn"),
        ("a.csv", "line 7: postcode"),
        ("a.csv", "line 8: address"),
        ("h.csv", "line 4: date"),
        ("h.csv", "line 5: kind"),
        ("r.csv", "line 4: bin_types"),
        ("r.csv", "line 5: weekday"),
        ("r.csv", "line 6: frequency"),
        ("r.csv", "line 7: reference_date"),
    ]
    assert all(str(e).startswith(str(tmp_path)) for e in errors)
    assert [a.uprn for a in source.all_addresses()] == ["1001", "1002", "1006"]
    first = source.address("1001")
    assert first is not None and first.postcode == "AV1 2BX" and first.rounds == ("MON-A", "TUE-A")
    assert source.rounds["MON-A"].bin_types == (BinType.GENERAL, BinType.FOOD)
    assert source.rounds["MON-A"].interval_weeks == 2
    business = source.address("1006")
    assert (
        business is not None and business.line == "Unit 1, Business Park" and business.rounds == ()
    )
    assert len(source.holidays.bank_holidays) == 1 and len(source.holidays.changes) == 1


def test_missing_column_rejects_the_whole_file(tmp_path: Path) -> None:
    addresses, rounds, holidays = _write(tmp_path, "uprn,address,rounds\n1,2 Mill Lane,MON-A\n")
    with pytest.raises(ConfigError) as caught:
        read_schedule(addresses, rounds, holidays)
    assert caught.value.path == str(addresses)
    assert "postcode" in caught.value.reason


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    _, rounds, holidays = _write(tmp_path)
    with pytest.raises(ConfigError) as caught:
        read_schedule(tmp_path / "missing.csv", rounds, holidays)
    assert caught.value.path.endswith("missing.csv")
