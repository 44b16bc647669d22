"""REDIS_URL naming a Sentinel: clients reach the primary it names, Rasa's stores too.

The single-server tests of the inbox, the handoff queue and Rasa's stores are re-run here
(``redis_url`` is the sentinel's, conftest.py).
"""

from __future__ import annotations

import pytest
import redis
from channels.test_inbox import (
    test_accept_dedupes_replayed_ids,
    test_worker_processes_acks_and_queues_replies,
)
from handoff.conftest import handoff_clock, queue
from handoff.test_queue import (
    test_concurrent_opens_of_one_conversation_make_one_case,
    test_only_one_of_many_racing_agents_wins,
)
from test_state import test_lock_store_uses_redis, test_tracker_round_trip_in_redis

from bot.errors import ConfigError
from bot.redis_conn import masked
from bot.redis_sentinel import parse
from bot.state import redis_params

__all__ = [
    "handoff_clock",
    "queue",
    "test_accept_dedupes_replayed_ids",
    "test_concurrent_opens_of_one_conversation_make_one_case",
    "test_lock_store_uses_redis",
    "test_only_one_of_many_racing_agents_wins",
    "test_tracker_round_trip_in_redis",
    "test_worker_processes_acks_and_queues_replies",
]


def test_the_url_names_sentinels_service_and_database() -> None:
    found = parse("redis+sentinel://:p%40ss@s1:26380,s2/council/2")
    assert found.sentinels == (("s1", 26380), ("s2", 26379))
    assert (found.service, found.db, found.password, found.ssl) == ("council", 2, "p@ss", False)
    assert masked("redis+sentinel://:p%40ss@s1:26380,s2/council/2") == (
        "redis+sentinel://:***@s1:26380,s2/council/2"
    )
    assert redis_params("rediss+sentinel://s1/council", "endpoints.yml")["use_ssl"] is True


@pytest.mark.parametrize(
    "url", ["redis+sentinel:///council", "redis+sentinel://s1", "redis+sentinel://s1/c/x"]
)
def test_a_bad_sentinel_url_names_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(url)
    assert info.value.key == "REDIS_URL"


def test_the_client_talks_to_the_primary(redis_client: redis.Redis, namespace: str) -> None:
    assert redis_client.info("replication")["role"] == "master"
    redis_client.set(f"{namespace}:k", "v")
    assert redis_client.get(f"{namespace}:k") == "v"
