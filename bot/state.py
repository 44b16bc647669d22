"""Rasa tracker and lock stores on the Redis named by a URL.

Rasa's own Redis stores take host, port and db separately and connect lazily, so an unreachable
server shows up only on the first resident message. These subclasses take the ``url`` of
``endpoints.yml`` (``${REDIS_URL}``) and check the server answers when Rasa creates them, so the
server refuses to start instead of failing later.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from rasa.core.lock_store import RedisLockStore
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig

from bot.errors import ConfigError
from bot.redis_conn import connect, masked

__all__ = ["RedisUrlLockStore", "RedisUrlTrackerStore", "redis_params"]


def redis_params(url: str | None, source: str) -> dict[str, Any]:
    """Split a ``redis://`` or ``rediss://`` URL into the arguments Rasa's stores take.

    Args:
        url: The URL from ``endpoints.yml``.
        source: Where the URL came from, for error messages.

    Raises:
        ConfigError: The URL is missing or not a Redis URL.
    """
    if not url:
        raise ConfigError(source, "url", "missing: set it to ${REDIS_URL}")
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ConfigError(source, "url", f"not a redis:// URL: {masked(url)}")
    db_text = parts.path.lstrip("/") or "0"
    if not db_text.isdigit():
        raise ConfigError(source, "url", f"database must be a number, got {db_text!r}")
    return {
        "host": parts.hostname,
        "port": parts.port or 6379,
        "db": int(db_text),
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "use_ssl": parts.scheme == "rediss",
    }


class RedisUrlTrackerStore(RedisTrackerStore):
    """Rasa's Redis tracker store, configured by URL and checked at start-up.

    ``record_exp`` (seconds) is the retention of a conversation after its last event.
    """

    def __init__(self, domain: Domain, host: str | None = None, **kwargs: Any) -> None:
        url = host  # Rasa passes endpoints.yml's `url` as `host`
        params = redis_params(url, "endpoints.yml: tracker_store")
        super().__init__(domain, **params, **kwargs)
        connect(url)  # raises RedisUnavailableError with the masked URL


class RedisUrlLockStore(RedisLockStore):
    """Rasa's Redis lock store, configured by URL and checked at start-up."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        url = endpoint_config.url
        params = redis_params(url, "endpoints.yml: lock_store")
        key_prefix = endpoint_config.kwargs.get("key_prefix")
        super().__init__(**params, key_prefix=key_prefix)
        connect(url)
