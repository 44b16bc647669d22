"""Fixtures of the end-to-end tests whose servers are other processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.testing.providers import ProviderThread


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderThread]:
    """The providers' stand-in on a thread of its own, for the module's servers to call.

    It replaces the plugin's per-test ``provider`` (:mod:`bot.testing.plugin`): the servers
    of a module outlive a test, and they are in other processes than the test's event loop.
    """
    fake = ProviderThread().start()
    yield fake
    fake.stop()
