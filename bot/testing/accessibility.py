"""Accessibility checks for console pages in Chromium: axe-core and reflow.

axe-core comes from npm, pinned in ``bot/testing/axe/package-lock.json`` and installed with
``npm ci --prefix bot/testing/axe`` (``make test`` does it, in ``scripts/test-setup.sh``). It
runs in the page through Playwright's evaluation channel, which the console's CSP
(``script-src 'self'``) does not apply to, so the page keeps its real policy while checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

__all__ = ["AXE_JS", "WCAG_TAGS", "axe_violations", "describe", "horizontal_overflow"]

AXE_JS = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core's browser bundle, installed from the lock beside this module."""

WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
"""The rules run: WCAG 2.0, 2.1 and 2.2, levels A and AA (the project's target)."""


async def axe_violations(page: Page, *, tags: tuple[str, ...] = WCAG_TAGS) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now and return its violations (empty: clean).

    Raises:
        FileNotFoundError: axe-core is not installed (``npm ci --prefix bot/testing/axe``).
    """
    if not AXE_JS.is_file():
        raise FileNotFoundError(
            f"{AXE_JS} is missing: run `npm ci --prefix bot/testing/axe` (make test-setup does)"
        )
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    result: dict[str, Any] = await page.evaluate(
        "options => window.axe.run(document, options)", options
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and element, for an assertion message."""
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(map(str, node['target']))}"
        for v in violations
        for node in v["nodes"]
    )


async def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: nothing to scroll sideways)."""
    overflow: int = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow
