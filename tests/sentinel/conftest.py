"""Tests of this folder run on Redis behind a local Sentinel (bot.testing.sentinel)."""

from __future__ import annotations

import pytest

from bot.testing.sentinel import sentinel_url

__all__ = ["redis_url", "sentinel_url"]


@pytest.fixture(scope="session")
def redis_url(sentinel_url: str) -> str:
    """The sentinel's URL, for every fixture and test of this folder."""
    return sentinel_url
