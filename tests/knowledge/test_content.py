from pathlib import Path

import pytest
import yaml

from bot.errors import ConfigError
from bot.knowledge.__main__ import run
from bot.knowledge.content import dump_entries, load_entries
from bot.knowledge.model import Entry, entry_problems

from .conftest import ROOT, make_entry

ANSWERABLE = {
    "bin_request", "bulky_waste", "recycling_centre", "council_tax_pay", "council_tax_discount",
    "council_tax_move", "report_pothole", "report_street_light", "report_fly_tipping",
    "parking_permit", "parking_fine", "opening_hours", "planning_application", "housing_repair",
}  # fmt: skip
DOMAIN_KEYS = {"version", "intents", "entities", "slots", "responses", "actions", "forms"}


def test_demo_content_covers_every_answerable_intent(demo_entries: list[Entry]) -> None:
    assert {e.topic for e in demo_entries} == ANSWERABLE
    discounts = [e.id for e in demo_entries if e.topic == "council_tax_discount"]
    assert {"council-tax-single-person-discount", "council-tax-student-exemption"} <= set(discounts)
    for entry in demo_entries:
        assert entry_problems(entry) == [], entry.id
        assert {"default", "sms", "whatsapp"} <= set(entry.answers)


def test_content_files_are_not_rasa_domain_files() -> None:
    for path in (ROOT / "responses" / "knowledge").glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        assert set(data) == {"knowledge_base"}, path
        assert not DOMAIN_KEYS & set(data)


def test_dump_then_load_round_trips(tmp_path: Path, demo_entries: list[Entry]) -> None:
    dump_entries(demo_entries, tmp_path)
    assert sorted(load_entries(tmp_path), key=lambda e: e.id) == sorted(
        demo_entries, key=lambda e: e.id
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("knowledge_base: {}", "knowledge_base"),
        ("knowledge_base:\n  - id: x\n    topic: y", "knowledge_base[0].review_by"),
        ("knowledge_base: [", ""),
    ],
)
def test_bad_content_file_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "broken.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_entries(tmp_path)
    assert caught.value.path.endswith("broken.yml") and caught.value.key == key


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    dump_entries([make_entry()], tmp_path)
    (tmp_path / "copy.yml").write_text((tmp_path / "bulky_waste.yml").read_text())
    with pytest.raises(ConfigError, match="appears twice"):
        load_entries(tmp_path)


async def test_cli_import_then_export(
    tmp_path: Path, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COUNCIL_NAMESPACE", namespace)
    source = ROOT / "responses" / "knowledge"
    summary = await run("import", source, "cli", redis_url)
    assert summary.startswith(f"imported {len(load_entries(source))} entries")
    assert "(0 changed)" in await run("import", source, "cli", redis_url)
    out = tmp_path / "out"
    assert "exported" in await run("export", out, "cli", redis_url)
    # one file per topic (the gate's conversations in source/gate/ are not entries)
    assert sorted(p.name for p in out.glob("*.yml")) == sorted(p.name for p in source.glob("*.yml"))
    assert load_entries(out) == load_entries(source)
