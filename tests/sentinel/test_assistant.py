"""The real assistant (Rasa server, action server) on Redis behind a Sentinel.

endpoints.yml's ``${REDIS_URL}`` is the sentinel's URL: Rasa's tracker and lock stores
(bot.state) and every other client reach the primary it names.
"""

from __future__ import annotations

import pytest
from e2e.test_assistant import test_asking_for_a_person_hands_off_and_pauses, test_greeting
from e2e.test_routine import test_routine_question_answered_from_the_knowledge_base

pytestmark = pytest.mark.e2e

__all__ = [
    "test_asking_for_a_person_hands_off_and_pauses",
    "test_greeting",
    "test_routine_question_answered_from_the_knowledge_base",
]
