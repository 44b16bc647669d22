"""Residents' rights on a Redis Cluster: export, erase and the retention sweep.

They read and delete across the namespace (one slot) and Rasa's trackers and locks (spread over
the primaries); the single-server tests are re-run here, the CLI included (its REDIS_URL is the
cluster's).
"""

from __future__ import annotations

from residents.test_rights import (
    cleanup,
    layout,
    test_cli_export_and_erase,
    test_export_then_erase_leaves_nothing_of_the_resident,
)
from residents.test_sweep import test_sweep_removes_only_what_is_past_its_period

__all__ = [
    "cleanup",
    "layout",
    "test_cli_export_and_erase",
    "test_export_then_erase_leaves_nothing_of_the_resident",
    "test_sweep_removes_only_what_is_past_its_period",
]
