import asyncio
import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.errors import ConfigError, RedisUnavailableError
from bot.state import RedisUrlLockStore, RedisUrlTrackerStore, redis_params


def test_redis_params_from_url() -> None:
    params = redis_params(
        "rediss://user:p%40ss@cache.example:6380/3", "endpoints.yml: tracker_store"
    )
    assert params == {
        "host": "cache.example",
        "port": 6380,
        "db": 3,
        "username": "user",
        "password": "p@ss",
        "use_ssl": True,
    }


@pytest.mark.parametrize("url", [None, "", "http://x", "redis:///0", "redis://h/zero"])
def test_bad_url_names_file_and_key(url: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        redis_params(url, "endpoints.yml: tracker_store")
    assert info.value.key == "url"


def test_unreachable_redis_stops_start_up() -> None:
    with pytest.raises(RedisUnavailableError):
        RedisUrlTrackerStore(Domain.empty(), host="redis://127.0.0.1:1/0")
    with pytest.raises(RedisUnavailableError):
        RedisUrlLockStore(EndpointConfig(url="redis://127.0.0.1:1/0"))


async def test_tracker_round_trip_in_redis(redis_url: str, redis_client: object) -> None:
    store = RedisUrlTrackerStore(
        Domain.empty(), host=redis_url, key_prefix="statetest", record_exp=60
    )
    tracker = DialogueStateTracker.from_events("resident-1", [UserUttered("hello")])
    await store.save(tracker)
    loaded = await store.retrieve("resident-1")
    assert loaded is not None
    assert loaded.latest_message is not None
    assert loaded.latest_message.text == "hello"
    ttl = store.red.ttl("statetest:tracker:resident-1")
    assert 0 < ttl <= 60
    store.red.delete("statetest:tracker:resident-1")


def test_lock_store_uses_redis(redis_url: str) -> None:
    store = RedisUrlLockStore(EndpointConfig(url=redis_url, key_prefix="locktest"))
    ticket = store.issue_ticket("resident-2")
    assert store.get_lock("resident-2") is not None
    store.finish_serving("resident-2", ticket)
    store.delete_lock("resident-2")


async def test_a_dead_servers_lock_holds_up_the_conversation_only_seconds(redis_url: str) -> None:
    config = EndpointConfig(url=redis_url, key_prefix="locktest", lock_lifetime=0.3)
    killed, restarted = RedisUrlLockStore(config), RedisUrlLockStore(config)
    killed.issue_ticket("resident-3", killed.lock_lifetime)  # then the process was killed
    started = time.monotonic()
    async with restarted.lock("resident-3", wait_time_in_seconds=0.05):
        waited = time.monotonic() - started
    assert waited < 1.0  # Rasa's own lifetime kept it for 60 s
    assert restarted.get_lock("resident-3") is None


async def test_a_held_lock_is_renewed_while_its_holder_works(redis_url: str) -> None:
    config = EndpointConfig(url=redis_url, key_prefix="locktest", lock_lifetime=0.3)
    first, second = RedisUrlLockStore(config), RedisUrlLockStore(config)
    events: list[str] = []
    holding = asyncio.Event()

    async def slow_action() -> None:
        async with first.lock("resident-4", wait_time_in_seconds=0.05):
            holding.set()
            await asyncio.sleep(1.0)  # a slow action: over three lifetimes
            events.append("first done")

    async def next_message() -> None:
        await holding.wait()
        async with second.lock("resident-4", wait_time_in_seconds=0.05):
            events.append("second in")

    await asyncio.wait_for(asyncio.gather(slow_action(), next_message()), 5)
    assert events == ["first done", "second in"]


def test_lock_lifetime_must_be_positive_seconds(redis_url: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisUrlLockStore(EndpointConfig(url=redis_url, lock_lifetime="soon"))
    assert info.value.key == "lock_store.lock_lifetime"


class CountingProxy:
    """A loopback TCP relay to the test Redis that counts the connections made through it."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.listener = socket.create_server(("127.0.0.1", 0))
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        netloc += f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.url = urlunsplit(parts._replace(netloc=netloc))
        self.accepted = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()


def test_each_store_uses_one_connection_the_one_checked_at_start_up(redis_url: str) -> None:
    proxy = CountingProxy(redis_url)
    try:
        tracker_store = RedisUrlTrackerStore(Domain.empty(), host=proxy.url, key_prefix="leak")
        lock_store = RedisUrlLockStore(EndpointConfig(url=proxy.url, key_prefix="leak"))
        assert tracker_store.red.ping() and lock_store.red.ping()
        # no throw-away client just for the start-up check: one connection per store
        assert proxy.accepted == 2
    finally:
        proxy.close()
