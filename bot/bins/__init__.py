"""Bin collections: schedules (CSV rounds or iCalendar feeds), Redis lookups, missed-bin reports.

The conversation lives in ``actions/bins.py``; see ``docs/bins.md``.
"""

from __future__ import annotations

__all__ = ["lookup_benchmark"]


def lookup_benchmark(n: int = 2000, url: str | None = None) -> dict[str, float]:
    """Lookup latency over the demo dataset in milliseconds (see :mod:`bot.bins.bench`)."""
    # Imported here so ``python -m bot.bins.<module>`` does not import the benchmark twice.
    from bot.bins.bench import lookup_benchmark as run

    return run(n, url)
