"""Bin collections: schedules (CSV rounds or iCalendar feeds), Redis lookups, missed-bin reports.

The conversation lives in ``actions/bins.py``; see ``docs/bins.md``.
"""

from __future__ import annotations

__all__: list[str] = []
