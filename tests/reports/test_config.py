"""The profile's ``reports`` section: the demo's, Glanfor's, and bad ones named by key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.errors import ConfigError, MissingSecretError
from bot.profile import CouncilProfile
from bot.reports.config import secret
from bot.reports.gazetteer import gazetteer

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "council.yml"
GLANFOR = ROOT / "tests" / "data" / "profiles" / "glanfor.yml"


def test_the_demo_council_sends_reports_to_its_open311_stand_in() -> None:
    profile = CouncilProfile.load(DEMO)
    reports = profile.reports
    assert reports is not None and reports.back_office == "open311"
    assert reports.open311 is not None
    assert reports.open311.endpoint == "http://127.0.0.1:8311/open311/v2"
    assert reports.open311.api_key_variable == "COUNCIL_OPEN311_API_KEY"
    assert reports.open311.unconfirmed_after_minutes == 120
    assert reports.team_for("003", "customer_services") == "environment"
    assert reports.team_for("999", "customer_services") == "customer_services"
    assert reports.area is not None and reports.area.bounds.contains(52.2, -1.5)
    neighbour = reports.area.neighbour_at(52.3, -1.5)
    assert neighbour is not None and neighbour.name == "Brackwell District Council"
    assert reports.photos.keep_location is False and reports.photos.storage == "local"
    assert profile.retention.problem_report_days == 365
    # the council's own gazetteer, named by the profile relative to its folder
    assert reports.gazetteer == ROOT / "data" / "demo" / "gazetteer.csv"


def test_glanfor_has_no_open311_and_mails_its_reports() -> None:
    profile = CouncilProfile.load(GLANFOR)
    reports = profile.reports
    assert reports is not None and reports.back_office == "email" and reports.open311 is None
    assert reports.email is not None and reports.email.smtp_port == 2525
    assert [s.code for s in reports.services] == ["pothole", "street_light", "fly_tipping"]
    assert reports.photos.s3 is not None and reports.photos.s3.bucket == "glanfor-reports"
    # left out of its retention section: the default
    assert profile.retention.problem_report_days == 365
    assert reports.gazetteer == GLANFOR.parent / "glanfor-gazetteer.csv"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _demo_in(folder: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The demo profile, changed, in ``folder`` (its own files named by absolute paths)."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["closed_days"]["bank_holidays"] = str(ROOT / "data" / "demo" / "bank-holidays.json")
    data["reports"]["gazetteer"] = str(ROOT / "data" / "demo" / "gazetteer.csv")
    change(data)
    path = folder / "council.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (_set("reports.back_office", "fax"), "reports.back_office", "must be one of"),
        (_set("reports.back_office", "webhook"), "reports.webhook", "is missing"),
        (_set("reports.open311.endpoint", "ftp://x"), "reports.open311.endpoint", "http(s)"),
        (_set("reports.open311.api_key_variable", "s3cr3t"), "reports.open311.api_key_variable",
         "never the secret itself"),
        (_set("reports.open311.poll_minutes", 0), "reports.open311.poll_minutes", "whole number"),
        (_set("reports.open311.unconfirmed_after_minutes", 0),
         "reports.open311.unconfirmed_after_minutes", "whole number"),
        (_set("reports.colour", "blue"), "reports.colour", "unknown key"),
        (_set("reports.services", [{"code": "1", "team": "roads"}]), "reports.services[0].team",
         "unknown team"),
        (_set("reports.photos.storage", "ftp"), "reports.photos.storage", "local or s3"),
        (_set("reports.photos.max_bytes", 40_000_000_000), "reports.photos.max_bytes", "1000"),
        (_set("reports.area.bounds", [52.3, -1.6, 52.1, -1.3]), "reports.area.bounds",
         "minimum first"),
        (_set("reports.area.neighbours", [{"name": "X"}]), "reports.area.neighbours[0].bounds",
         "min_lat"),
        (_set("retention.problem_reports", 0), "retention.problem_reports", "whole number"),
    ],
)  # fmt: skip
def test_a_bad_reports_section_names_the_file_key_and_reason(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], key: str, reason: str
) -> None:
    path = _demo_in(tmp_path, change)
    with pytest.raises(ConfigError) as caught:
        CouncilProfile.load(path)
    assert caught.value.path == str(path) and caught.value.key == key
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["reports"].pop("gazetteer"), "is missing"),
        (_set("reports.gazetteer", "places.csv"), "no such file"),
        (_set("reports.gazetteer", ""), "is missing"),
    ],
)
def test_a_profile_without_its_gazetteer_names_the_file_and_key(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    path = _demo_in(tmp_path, change)
    with pytest.raises(ConfigError) as caught:
        CouncilProfile.load(path)
    assert (caught.value.path, caught.value.key) == (str(path), "reports.gazetteer")
    assert reason in caught.value.reason


def test_a_profile_naming_its_own_gazetteer_is_placed_with_it(tmp_path: Path) -> None:
    (tmp_path / "places").mkdir()
    (tmp_path / "places" / "ours.csv").write_text(
        "kind,name,postcode,uprn,latitude,longitude\nstreet,Tiny Lane,AV1 1AA,,52.17,-1.47\n",
        encoding="utf-8",
    )
    path = _demo_in(tmp_path, _set("reports.gazetteer", "places/ours.csv"))
    reports = CouncilProfile.load(path).reports
    assert reports is not None and reports.gazetteer == tmp_path / "places" / "ours.csv"
    found = gazetteer(reports.gazetteer).place("Tiny Lane").place
    assert found is not None and found.postcode == "AV1 1AA"
    assert gazetteer(reports.gazetteer).place("Mill Lane").place is None  # not the demo's


def test_a_bad_row_in_the_gazetteer_refuses_the_profile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,name,postcode,uprn,latitude,longitude\nhouse,X,,,1,1\n")
    with pytest.raises(ConfigError) as caught:
        CouncilProfile.load(_demo_in(tmp_path, _set("reports.gazetteer", "bad.csv")))
    assert (caught.value.path, caught.value.key) == (str(bad), "line 2: kind")


def test_an_email_council_must_list_its_categories(tmp_path: Path) -> None:
    data = yaml.safe_load(GLANFOR.read_text(encoding="utf-8"))
    data["closed_days"]["bank_holidays"] = str(ROOT / "data" / "demo" / "bank-holidays.json")
    data["reports"]["gazetteer"] = str(GLANFOR.parent / data["reports"]["gazetteer"])
    del data["reports"]["services"]
    path = tmp_path / "glanfor.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="the profile lists the categories"):
        CouncilProfile.load(path)


def test_secrets_come_from_the_environment_by_name() -> None:
    assert secret({"COUNCIL_OPEN311_API_KEY": "k"}, "COUNCIL_OPEN311_API_KEY", "open311") == "k"
    with pytest.raises(MissingSecretError) as caught:
        secret({}, "COUNCIL_OPEN311_API_KEY", "Open311 api_key")
    assert caught.value.variable == "COUNCIL_OPEN311_API_KEY"
