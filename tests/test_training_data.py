"""The intent contract: the names the rest of the system relies on, with enough examples."""

from collections import defaultdict
from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.loading import load_data

ROOT = Path(__file__).resolve().parent.parent

CONTRACT = {
    "bin_collection_day", "missed_bin", "bin_request", "bulky_waste", "recycling_centre",
    "council_tax_pay", "council_tax_discount", "council_tax_move", "report_pothole",
    "report_street_light", "report_fly_tipping", "parking_permit", "parking_fine",
    "opening_hours", "planning_application", "housing_repair", "greet", "goodbye", "thanks",
    "report_problem",
    "human_agent", "complaint", "safeguarding", "out_of_scope",
}  # fmt: skip
DIALOGUE = {"inform", "affirm", "deny"}


@pytest.fixture(scope="module")
def examples() -> dict[str, list[str]]:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for message in load_data(str(ROOT / "data" / "nlu")).intent_examples:
        by_intent[message.get("intent")].append(message.get("text"))
    return by_intent


def test_intent_names_are_the_contract(examples: dict[str, list[str]]) -> None:
    assert set(examples) == CONTRACT | DIALOGUE


@pytest.mark.parametrize("intent", sorted(CONTRACT | DIALOGUE))
def test_enough_distinct_examples(examples: dict[str, list[str]], intent: str) -> None:
    distinct = {text.strip().lower() for text in examples[intent]}
    assert len(distinct) >= 20


def test_handoff_intents_are_well_covered(examples: dict[str, list[str]]) -> None:
    assert len(examples["safeguarding"]) >= 50
    assert len(examples["out_of_scope"]) >= 60


def test_no_example_belongs_to_two_intents(examples: dict[str, list[str]]) -> None:
    owner: dict[str, str] = {}
    for intent, texts in examples.items():
        for text in texts:
            key = text.strip().lower()
            assert owner.setdefault(key, intent) == intent, f"{text!r} in {owner[key]} and {intent}"
