"""Deleting a run's keys on a Redis Cluster: the tracker store's keys spread over slots too.

The tests are imported from tests/test_cleanup.py (same code, same assertions); ``redis_url``
is the cluster here (conftest.py).
"""

from __future__ import annotations

from test_cleanup import (
    test_every_key_under_the_prefixes_goes_in_chunks,
    test_the_asyncio_client_deletes_the_same,
)

__all__ = [
    "test_every_key_under_the_prefixes_goes_in_chunks",
    "test_the_asyncio_client_deletes_the_same",
]
