"""The widget's files: small, and nothing in them a strict CSP or a privacy promise forbids."""

from __future__ import annotations

import re

from bot.webchat.assets import STATIC, widget_size_gzip

SCRIPT = (STATIC / "widget.js").read_text(encoding="utf-8")
CODE = re.sub(r"/\*.*?\*/", "", SCRIPT, flags=re.DOTALL)  # without the comments
STYLES = (STATIC / "widget.css").read_text(encoding="utf-8")


def test_script_and_stylesheet_together_are_under_30_kb_compressed() -> None:
    size = widget_size_gzip()
    assert 1000 < size < 30 * 1024, size


def test_the_script_writes_no_html_no_style_attributes_and_evaluates_nothing() -> None:
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert forbidden not in CODE, forbidden
    assert "new Function" not in CODE
    assert not re.search(r"""setAttribute\(\s*["']style""", CODE)
    assert "style:" not in CODE and "cssText" not in CODE


def test_nothing_is_fetched_from_anywhere_but_the_edge_and_no_cookie_is_touched() -> None:
    # every request goes to `edge + path`: no absolute address anywhere
    assert re.findall(r"https?://[\w.-]+", CODE + STYLES) == []
    assert "document.cookie" not in CODE and "localStorage" not in CODE
    assert len(re.findall(r"fetch\(edge \+", CODE)) == len(re.findall(r"fetch\(", CODE)) == 3
    assert "@import" not in STYLES and "url(" not in STYLES


def strings(language: str) -> dict[str, str]:
    """A language's table of ``STRINGS`` in the script: key -> text."""
    start = CODE.index(f"\n    {language}: {{")
    table = CODE[start : CODE.index("\n    },", start)]
    return dict(re.findall(r'^\s{6}(\w+):\s*"((?:[^"\\]|\\.)*)"', table, re.MULTILINE))


def test_every_word_shown_is_in_the_strings_table() -> None:
    keys = set(strings("en"))
    used = set(re.findall(r"""\bt\(\s*["'](\w+)["']""", CODE))
    used |= {"sms", "whatsapp"}  # t(channel), one per continue channel
    assert used - keys == set()
    assert keys - used == set(), "unused strings"


def test_the_welsh_table_has_the_same_words_to_fill_in() -> None:
    english, welsh = strings("en"), strings("cy")
    # left out: the same in both languages (English is used)
    assert set(english) - set(welsh) == {"agentName", "whatsapp"}
    assert set(welsh) <= set(english)
    for name, text in welsh.items():
        assert sorted(re.findall(r"\{\w+\}", text)) == sorted(
            re.findall(r"\{\w+\}", english[name])
        ), name
