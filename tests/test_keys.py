"""Key names: the namespace is a Redis Cluster hash tag; old keys are renamed once."""

from __future__ import annotations

import redis
from redis.crc import key_slot

from bot.keys import key, literal, migrate, prefix, tagged


def test_the_namespace_is_the_hash_tag_of_every_key() -> None:
    assert key("cr", "inbox", "dead") == "{cr}:inbox:dead"
    assert prefix("cr") == "{cr}:"
    # a namespace that is already a hash tag is kept (the test fixtures' form)
    assert tagged("{test:1a2b}") == "{test:1a2b}"
    assert key("{test:1a2b}", "inbox") == "{test:1a2b}:inbox"
    # an empty "{}" is no hash tag for Redis: the whole namespace is tagged
    assert tagged("a{}b") == "{a{}b}"


def test_keys_of_one_namespace_share_a_slot() -> None:
    names = [key("cr", "inbox"), key("cr", "handoff", "case", "HO-1"), key("cr", "kb", "live")]
    assert len({key_slot(name.encode()) for name in names}) == 1
    assert key_slot(b"cr:inbox") != key_slot(b"cr:kb:live")  # without the tag they spread


def test_a_literal_matches_only_itself_in_a_scan(redis_client: redis.Redis, namespace: str) -> None:
    # a conversation id with glob characters must not match its neighbours
    odd, neighbour = key(namespace, "seen", "a*[b]?\\c"), key(namespace, "seen", "aXbYc")
    redis_client.set(odd, "1")
    redis_client.set(neighbour, "1")
    assert set(redis_client.scan_iter(match=literal(odd), count=1000)) == {odd}
    assert set(redis_client.scan_iter(match=literal(key(namespace, "seen")) + ":*")) == {
        odd,
        neighbour,
    }


def test_migrate_renames_keys_written_before_the_hash_tag(
    redis_client: redis.Redis, namespace: str
) -> None:
    old_ns = namespace.strip("{}")  # the same namespace as the old, untagged layout wrote it
    redis_client.set(f"{old_ns}:kb:seq:bins", "3")
    redis_client.xadd(f"{old_ns}:inbox", {"message": "{}"})
    redis_client.set(key(old_ns, "taken"), "new")
    redis_client.set(f"{old_ns}:taken", "old")
    try:
        assert migrate(redis_client, old_ns) == 2
        assert redis_client.get(key(old_ns, "kb", "seq", "bins")) == "3"
        assert redis_client.xlen(key(old_ns, "inbox")) == 1
        assert redis_client.get(key(old_ns, "taken")) == "new"  # never overwritten
        assert redis_client.get(f"{old_ns}:taken") == "old"
    finally:
        redis_client.delete(f"{old_ns}:taken")
