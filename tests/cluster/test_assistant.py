"""The real assistant (Rasa server, action server) on a Redis Cluster of three primaries.

Its tracker and lock stores (endpoints.yml, bot.state), the knowledge base, bins and handoff
queue all use the cluster (``redis_url`` is the cluster's here): a few of the end-to-end
conversations are re-run on it.
"""

from __future__ import annotations

import pytest
from e2e.test_assistant import test_asking_for_a_person_hands_off_and_pauses, test_greeting
from e2e.test_routine import (
    test_bin_day_asks_for_a_postcode_then_answers,
    test_published_edit_is_live_within_five_seconds,
    test_routine_question_answered_from_the_knowledge_base,
)

pytestmark = pytest.mark.e2e

__all__ = [
    "test_asking_for_a_person_hands_off_and_pauses",
    "test_bin_day_asks_for_a_postcode_then_answers",
    "test_greeting",
    "test_published_edit_is_live_within_five_seconds",
    "test_routine_question_answered_from_the_knowledge_base",
]
