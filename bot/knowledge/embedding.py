"""The sentence encoder selection uses: the NLU pipeline's own offline model.

The knowledge base compares messages with example questions in the same embedding space the
intent classifier uses, so it reads the featurizer's model name and checksum from
``config.yml`` and loads it through :class:`bot.nlu.embedder.Embedder` (checked, offline,
once per process). The featurizer also puts each message's embedding into the parse data
(:data:`bot.nlu.featurizer.EMBEDDING`): :func:`message_embedding` reads it back, so the
action server does not encode the message a second time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bot.errors import ConfigError
from bot.knowledge.selector import TextEncoder
from bot.nlu.embedder import Embedder, FloatArray

__all__ = [
    "EMBEDDING",
    "FEATURIZER",
    "CachingEncoder",
    "default_encoder",
    "embedding_output",
    "message_embedding",
    "one_blas_thread",
]

FEATURIZER = "bot.nlu.featurizer.SentenceEmbeddingFeaturizer"

EMBEDDING = "text_embedding"
"""Parse-data key of the message's sentence embedding, set by the featurizer for selection.

Its value is :func:`embedding_output`'s: ``{"model_sha256", "dimension", "vector"}``, the vector
as base64 of little-endian float32 (exact, and a quarter of the size of a JSON list). Defined
here, not in the featurizer, so the action server reads it without importing Rasa's engine.
"""


@functools.lru_cache(maxsize=1)
def one_blas_thread() -> None:
    """Make NumPy's BLAS use one thread in this process (servers: one message at a time).

    A message's matrix products are too small to share: on two busy cores OpenBLAS's hand-offs
    made them about three times slower (measured: 15 ms with two threads, 5.5 ms with one),
    as ``bot.nlu.embedder`` found for torch. Batch work (training, the index's rebuild) is
    torch's, which this leaves alone.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def embedding_output(vector: FloatArray, model_sha256: str) -> dict[str, Any]:
    """The parse-data value carrying ``vector`` (1-D), tagged with the model that made it."""
    data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return {
        "model_sha256": model_sha256,
        "dimension": int(vector.shape[0]),
        "vector": base64.b64encode(data).decode("ascii"),
    }


@functools.lru_cache(maxsize=2)
def _featurizer_model(config_path: str) -> tuple[str, str]:
    """``(model, model_sha256)`` of the featurizer step in ``config_path``."""
    path = Path(config_path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(config_path, "", f"cannot read: {exc}") from exc
    for step in config.get("pipeline") or []:
        if isinstance(step, dict) and step.get("name") == FEATURIZER:
            if not step.get("model") or not step.get("model_sha256"):
                raise ConfigError(config_path, "pipeline.model", "model and model_sha256 needed")
            return str(step["model"]), str(step["model_sha256"]).lower()
    raise ConfigError(config_path, "pipeline", f"no {FEATURIZER} step")


@functools.lru_cache(maxsize=2)
def default_encoder(config_path: str = "config.yml") -> Embedder:
    """Return the featurizer's embedder as configured in ``config_path``.

    Raises:
        ConfigError: The file has no featurizer with ``model`` and ``model_sha256``.
        ModelIntegrityError: The model's weights do not match the checksum.
    """
    return Embedder(*_featurizer_model(config_path))


def message_embedding(
    parse_data: Mapping[str, Any], config_path: str = "config.yml"
) -> FloatArray | None:
    """The message's embedding from its parse data, or None to encode it here instead.

    None when the parse data has none (an older model, the HTTP API's parse without our
    featurizer), or one from another model than the one ``config_path`` names, or a damaged one.
    """
    value = parse_data.get(EMBEDDING)
    if not isinstance(value, Mapping):
        return None
    if value.get("model_sha256") != _featurizer_model(config_path)[1]:
        return None
    try:
        raw = base64.b64decode(str(value.get("vector")), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 4 * int(value.get("dimension") or -1):
        return None
    vector: FloatArray = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return vector if np.all(np.isfinite(vector)) else None


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
