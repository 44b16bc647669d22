"""The stores' own tests, run again on a Redis Cluster of three primaries.

Each store's multi-key Lua scripts and transactions keep their keys in the namespace's hash
slot (bot.keys), so they behave on a cluster as on one server. The tests are imported from their
folders (same code, same assertions); ``redis_url`` is the cluster here (conftest.py).
"""

from __future__ import annotations

from bins.test_missed import test_reports_get_sequential_references_and_expire
from channels.test_delivery import (
    test_a_failed_receipt_reaches_agents_once,
    test_a_reply_moves_from_sent_to_read,
)
from channels.test_inbox import (
    test_a_stopped_consumer_is_taken_over_and_removed,
    test_accept_dedupes_replayed_ids,
    test_another_worker_claims_stale_entries,
    test_failing_handler_is_retried_in_its_lane_then_dead_lettered,
    test_worker_processes_acks_and_queues_replies,
)
from channels.test_outbox import (
    adapters,
    open_windows,
    test_outage_is_retried_with_backoff_then_sent,
    test_permanent_failure_is_surfaced_not_dropped,
    test_unsent_entry_survives_a_crash,
)
from channels.test_stream import test_two_consumers_taking_over_at_once_share_nothing
from channels.test_window import test_whatsapp_window
from handoff.test_alerts import hook, test_two_processes_alerting_at_once_post_once
from handoff.test_broker import test_each_resident_counts_once_a_day
from handoff.test_queue import (
    test_concurrent_closes_succeed_once,
    test_concurrent_opens_of_one_conversation_make_one_case,
    test_notes_are_kept_in_order,
    test_only_one_of_many_racing_agents_wins,
    test_reassign_moves_the_case_and_drops_the_lease,
    test_resolve_and_return_to_bot,
)
from handoff.test_replies import test_canned_responses, test_outbox_sender_adds_to_the_stream
from handoff.test_sla import test_each_breach_is_notified_once
from knowledge.test_store import (
    test_archive_withdraws,
    test_draft_is_not_served_until_published,
    test_rollback_republishes_old_content,
)

__all__ = [
    "adapters",
    "hook",
    "open_windows",
    "test_a_failed_receipt_reaches_agents_once",
    "test_a_reply_moves_from_sent_to_read",
    "test_a_stopped_consumer_is_taken_over_and_removed",
    "test_accept_dedupes_replayed_ids",
    "test_another_worker_claims_stale_entries",
    "test_archive_withdraws",
    "test_canned_responses",
    "test_concurrent_closes_succeed_once",
    "test_concurrent_opens_of_one_conversation_make_one_case",
    "test_draft_is_not_served_until_published",
    "test_each_breach_is_notified_once",
    "test_each_resident_counts_once_a_day",
    "test_failing_handler_is_retried_in_its_lane_then_dead_lettered",
    "test_notes_are_kept_in_order",
    "test_only_one_of_many_racing_agents_wins",
    "test_outage_is_retried_with_backoff_then_sent",
    "test_outbox_sender_adds_to_the_stream",
    "test_permanent_failure_is_surfaced_not_dropped",
    "test_reassign_moves_the_case_and_drops_the_lease",
    "test_reports_get_sequential_references_and_expire",
    "test_resolve_and_return_to_bot",
    "test_rollback_republishes_old_content",
    "test_two_consumers_taking_over_at_once_share_nothing",
    "test_two_processes_alerting_at_once_post_once",
    "test_unsent_entry_survives_a_crash",
    "test_whatsapp_window",
    "test_worker_processes_acks_and_queues_replies",
]
