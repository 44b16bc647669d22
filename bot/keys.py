"""Redis key names.

Every key this project writes starts with a namespace: ``"cr"`` in production, a unique one per
test, so that test runs and deployments can share a Redis server without colliding.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_NAMESPACE", "key", "namespace"]

DEFAULT_NAMESPACE = "cr"


def namespace() -> str:
    """Return the namespace of this process: ``COUNCIL_NAMESPACE`` or ``"cr"``."""
    return os.environ.get("COUNCIL_NAMESPACE", "").strip() or DEFAULT_NAMESPACE


def key(ns: str, *parts: str) -> str:
    """Join a namespace and key parts with ``:``."""
    return ":".join((ns, *parts))
