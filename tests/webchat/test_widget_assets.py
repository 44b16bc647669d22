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


def test_every_word_shown_is_in_the_strings_table() -> None:
    # the text passed to t() names a key of the English table
    table = SCRIPT[SCRIPT.index("var STRINGS") : SCRIPT.index("cy: {}")]
    keys = set(re.findall(r"^\s{6}(\w+):", table, re.MULTILINE))
    used = set(re.findall(r"""\bt\(\s*["'](\w+)["']""", SCRIPT))
    used |= {"sms", "whatsapp"}  # t(channel), one per continue channel
    assert used - keys == set()
    assert keys - used == set(), "unused strings"
