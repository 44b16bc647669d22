"""Rasa's tracker and lock stores (bot.state) on a Redis Cluster.

Rasa builds a single-server client from the URL; on a cluster node the stores swap it for a
cluster client with the same settings, so each conversation's tracker and lock (one key each)
go to the primary of their slot. The single-server tests are re-run here, plus the listing of
trackers spread over all three primaries.
"""

from __future__ import annotations

from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from test_state import (
    test_a_held_lock_is_renewed_while_its_holder_works,
    test_lock_store_uses_redis,
    test_tracker_round_trip_in_redis,
)

from bot.redis_cluster import ClusterClient
from bot.state import RedisUrlTrackerStore

__all__ = [
    "test_a_held_lock_is_renewed_while_its_holder_works",
    "test_lock_store_uses_redis",
    "test_tracker_round_trip_in_redis",
]


async def test_trackers_spread_over_the_primaries_are_all_listed(cluster_url: str) -> None:
    store = RedisUrlTrackerStore(
        Domain.empty(), host=cluster_url, key_prefix="clustertest", record_exp=60
    )
    assert isinstance(store.red, ClusterClient)
    residents = [f"resident-{n}" for n in range(12)]
    keys = [f"clustertest:tracker:{r}" for r in residents]
    try:
        for resident in residents:
            await store.save(DialogueStateTracker.from_events(resident, [UserUttered("hi")]))
        assert len({store.red.get_node_from_key(k).name for k in keys}) == 3  # every primary
        assert set(await store.keys()) >= set(keys)  # Rasa's KEYS asked every primary
        loaded = await store.retrieve("resident-7")
        assert loaded is not None and loaded.latest_message is not None
    finally:
        store.red.delete(*keys)
