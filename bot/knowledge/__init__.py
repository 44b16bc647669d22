"""The knowledge base: answers editors maintain, served to residents without retraining.

See ``docs/knowledge.md``. Import from the submodules: :mod:`bot.knowledge.model` (entries and
versions), :mod:`bot.knowledge.store` (``KnowledgeBase``), :mod:`bot.knowledge.selector`
(answer selection), :mod:`bot.knowledge.gate` (regression gate), :mod:`bot.knowledge.content`
(YAML files) and :mod:`bot.knowledge.embedding` (the offline encoder).
"""

from __future__ import annotations

__all__: list[str] = []
