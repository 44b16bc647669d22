from datetime import UTC, date, datetime

import pytest

from bot.knowledge.model import Entry, changed_fields, entry_problems

from .conftest import make_entry


def test_round_trip_keeps_every_field() -> None:
    entry = make_entry(
        answers={"default": "Long answer", "sms": "Short"},
        publish_from=datetime(2027, 1, 1, 9, tzinfo=UTC),
        expire_at=datetime(2027, 2, 1, tzinfo=UTC),
        title="Sofas",
        status="published",
    )
    assert Entry.from_dict(entry.to_dict()) == entry


def test_times_without_zone_are_utc() -> None:
    data = make_entry().to_dict() | {"expire_at": "2027-03-01T10:00:00"}
    assert Entry.from_dict(data).expire_at == datetime(2027, 3, 1, 10, tzinfo=UTC)


def test_channel_variant_falls_back_to_default() -> None:
    entry = make_entry(answers={"default": "Full", "sms": "Short"})
    assert entry.answer_for("sms") == "Short"
    assert entry.answer_for("telegram") == "Full"
    assert entry.answer_for(None) == "Full"


def test_publication_window() -> None:
    entry = make_entry(
        publish_from=datetime(2027, 1, 1, tzinfo=UTC), expire_at=datetime(2027, 1, 2, tzinfo=UTC)
    )
    assert not entry.live_at(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert entry.live_at(datetime(2027, 1, 1, tzinfo=UTC))
    assert not entry.live_at(datetime(2027, 1, 2, tzinfo=UTC))


def test_valid_entry_has_no_problems() -> None:
    assert entry_problems(make_entry()) == []


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"default": "   "}, "answers.default: the answer must not be empty"),
        ({"default": "See htps://www.ashvale.gov.uk/x"}, "not a valid web address"),
        ({"default": "See https://ashvale/x and https://www..gov.uk"}, "not a valid web address"),
        ({"default": "See https://"}, "not a valid web address"),
        ({"default": "See http://www.ashvale.gov.uk/x"}, "must start with https://"),
        ({"default": "ok", "fax": "x"}, "unknown channel"),
        ({"default": "ok", "sms": "x" * 400}, "at most 320"),
    ],
)
def test_bad_answers_are_named(answers: dict[str, str], expected: str) -> None:
    problems = entry_problems(make_entry(answers=answers))
    assert any(expected in p for p in problems), problems


def test_other_problems() -> None:
    bad = make_entry(
        "Bad Id",
        topic=" ",
        questions=(" ",),
        owner_team="",
        status="live",
        publish_from=datetime(2027, 2, 1, tzinfo=UTC),
        expire_at=datetime(2027, 1, 1, tzinfo=UTC),
    )
    fields = {p.split(":")[0] for p in entry_problems(bad)}
    assert fields == {"id", "topic", "questions", "owner_team", "status", "expire_at"}


def test_changed_fields() -> None:
    before = make_entry()
    after = make_entry(answers={"default": "New"}, review_by=date(2028, 1, 1))
    assert changed_fields(before, after) == ("answers", "review_by")
    assert "id" in changed_fields(None, after)
