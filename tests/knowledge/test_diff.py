from bot.knowledge.diff import entry_diff

from .conftest import make_entry


def test_only_changed_fields_with_line_marks() -> None:
    before = make_entry(questions=("Old sofa?", "Fridge?"), answers={"default": "A\nB"})
    after = make_entry(
        questions=("Old sofa?", "Freezer?"), answers={"default": "A\nC", "sms": "Short"}
    )
    diffs = {d.name: d.lines for d in entry_diff(before, after)}
    assert set(diffs) == {"questions", "answers.default", "answers.sms"}
    assert diffs["questions"] == (
        (" ", "Old sofa?"),
        ("-", "Fridge?"),
        ("+", "Freezer?"),
    )
    assert ("+", "Short") in diffs["answers.sms"]
    assert entry_diff(before, before) == []
