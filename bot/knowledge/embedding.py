"""The sentence encoder selection uses: the NLU pipeline's own offline model.

The knowledge base compares messages with example questions in the same embedding space the
intent classifier uses, so it reads the featurizer's model name and checksum from
``config.yml`` and loads it through :class:`bot.nlu.embedder.Embedder` (checked, offline,
once per process).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import yaml

from bot.errors import ConfigError
from bot.knowledge.selector import TextEncoder
from bot.nlu.embedder import Embedder, FloatArray

__all__ = ["FEATURIZER", "CachingEncoder", "default_encoder"]

FEATURIZER = "bot.nlu.featurizer.SentenceEmbeddingFeaturizer"


@functools.lru_cache(maxsize=2)
def default_encoder(config_path: str = "config.yml") -> Embedder:
    """Return the featurizer's embedder as configured in ``config_path``.

    Raises:
        ConfigError: The file has no featurizer with ``model`` and ``model_sha256``.
        ModelIntegrityError: The model's weights do not match the checksum.
    """
    path = Path(config_path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(config_path, "", f"cannot read: {exc}") from exc
    for step in config.get("pipeline") or []:
        if isinstance(step, dict) and step.get("name") == FEATURIZER:
            if not step.get("model") or not step.get("model_sha256"):
                raise ConfigError(config_path, "pipeline.model", "model and model_sha256 needed")
            return Embedder(str(step["model"]), str(step["model_sha256"]))
    raise ConfigError(config_path, "pipeline", f"no {FEATURIZER} step")


class CachingEncoder:
    """Remembers the embeddings of recent texts.

    The regression gate embeds every example question on each check, and an index rebuilt
    after a publish sees mostly unchanged questions: both reuse embeddings from here.

    Args:
        encoder: The encoder that does the work.
        max_items: How many texts to remember (least recently used are dropped).
    """

    def __init__(self, encoder: TextEncoder, max_items: int = 100_000) -> None:
        self.encoder = encoder
        self.max_items = max_items
        self._cache: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()  # the index updates in a worker thread

    def encode(self, texts: list[str]) -> FloatArray:
        """Return one normalised row per text, embedding only texts not seen recently."""
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        fresh = self.encoder.encode(missing) if missing else None
        with self._lock:
            if fresh is not None:
                self._cache.update(zip(missing, fresh, strict=True))
            rows = []
            for text in texts:
                self._cache.move_to_end(text)
                rows.append(self._cache[text])
            while len(self._cache) > self.max_items:
                self._cache.popitem(last=False)
        if not rows:
            return np.zeros((0, 0), np.float32)
        return np.vstack(rows).astype(np.float32)
