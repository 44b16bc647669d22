"""Rasa component: intent classification with an out-of-scope decision.

The classifier is a small neural network (or, configured so, multinomial logistic regression) on
the featurizer's output: the per-layer features when the featurizer has ``layers``, else the
sentence embedding. Whether to trust its answer is decided on a score that blends the winning
probability with how close the message's sentence embedding is to the training examples of the
winning intent (mean cosine of its ``k`` nearest): a message unlike anything seen in training is
doubted even when the network is confident. Below ``threshold``, or when the winner is the
trained ``out_of_scope`` intent, the message gets ``nlu_fallback`` (so the ``nlu_fallback``
rules fire), with the network's ranking kept. Inference is plain numpy on persisted arrays.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.errors import ConfigError
from bot.nlu.embedder import FloatArray
from bot.nlu.featurizer import SentenceEmbeddingFeaturizer, layer_features, sentence_embedding

__all__ = [
    "FALLBACK_INTENT",
    "HEADS",
    "OUT_OF_SCOPE_INTENT",
    "CouncilIntentClassifier",
    "IntentModel",
    "NetworkSettings",
]

FALLBACK_INTENT = "nlu_fallback"
OUT_OF_SCOPE_INTENT = "out_of_scope"
HEADS = ("mlp", "logistic")
_RANKING_LENGTH = 10


def _gelu(x: FloatArray) -> FloatArray:
    # The tanh form, as trained (torch.nn.GELU(approximate="tanh")).
    result: FloatArray = 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return result


@dataclass(frozen=True)
class NetworkSettings:
    """How the one-hidden-layer network is trained (see docs/nlu.md for why these values)."""

    hidden: int = 1024
    epochs: int = 20
    min_steps: int = 400  # small data sets (a council's) get more epochs, not fewer updates
    batch_size: int = 256
    learning_rate: float = 0.003
    label_smoothing: float = 0.1
    dropout: float = 0.3
    input_dropout: float = 0.1
    noise: float = 0.02
    out_of_scope_weight: float = 3.0
    seed: int = 0


@dataclass
class IntentModel:
    """Fitted layers and the training embeddings used for the closeness score."""

    classes: list[str]
    weights: list[FloatArray]  # per layer, (inputs, outputs); GELU between layers
    biases: list[FloatArray]
    examples: FloatArray  # (n_examples, dim) normalised sentence embeddings
    example_labels: npt.NDArray[np.int64]  # (n_examples,) class index of each example

    @staticmethod
    def _targets(labels: list[str]) -> tuple[list[str], npt.NDArray[np.int64]]:
        classes = sorted(set(labels))
        index = {name: i for i, name in enumerate(classes)}
        return classes, np.array([index[label] for label in labels], dtype=np.int64)

    @classmethod
    def fit_logistic(
        cls, inputs: FloatArray, examples: FloatArray, labels: list[str], c: float
    ) -> IntentModel:
        """Fit multinomial logistic regression on ``inputs``."""
        from sklearn.linear_model import LogisticRegression

        classes, y = cls._targets(labels)
        regression = LogisticRegression(C=c, max_iter=2000)
        regression.fit(inputs, y)
        coef, intercept = regression.coef_, regression.intercept_
        if len(classes) == 2:  # sklearn keeps one row for two classes
            coef = np.vstack([-coef[0], coef[0]])
            intercept = np.array([-intercept[0], intercept[0]])
        weights = [coef.T.astype(np.float32)]
        return cls(classes, weights, [intercept.astype(np.float32)], examples, y)

    @classmethod
    def fit_network(
        cls,
        inputs: FloatArray,
        examples: FloatArray,
        labels: list[str],
        settings: NetworkSettings,
    ) -> IntentModel:
        """Fit a one-hidden-layer network with label smoothing and input noise.

        Smoothing and noise keep the network from being certain far from its training data,
        which is what lets the probability separate out-of-scope messages.
        """
        import torch

        classes, y = cls._targets(labels)
        torch.manual_seed(settings.seed)
        layers = [
            torch.nn.Linear(inputs.shape[1], settings.hidden),
            torch.nn.Linear(settings.hidden, len(classes)),
        ]
        network = torch.nn.Sequential(
            torch.nn.Dropout(settings.input_dropout),
            layers[0],
            torch.nn.GELU(approximate="tanh"),
            torch.nn.Dropout(settings.dropout),
            layers[1],
        )
        class_weights = torch.ones(len(classes))
        if OUT_OF_SCOPE_INTENT in classes:
            class_weights[classes.index(OUT_OF_SCOPE_INTENT)] = settings.out_of_scope_weight
        loss_of = torch.nn.CrossEntropyLoss(
            weight=class_weights, label_smoothing=settings.label_smoothing
        )
        batches = math.ceil(len(y) / settings.batch_size)
        epochs = max(settings.epochs, math.ceil(settings.min_steps / batches))
        optimiser = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=settings.learning_rate, total_steps=epochs * batches
        )
        x, target = torch.from_numpy(np.ascontiguousarray(inputs)), torch.from_numpy(y)
        network.train()
        for _ in range(epochs):
            order = torch.randperm(len(y))
            for start in range(0, len(y), settings.batch_size):
                batch = order[start : start + settings.batch_size]
                noisy = x[batch] + settings.noise * torch.randn(len(batch), x.shape[1])
                loss = loss_of(network(noisy), target[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
        return cls(
            classes,
            [layer.weight.detach().numpy().T.copy() for layer in layers],
            [layer.bias.detach().numpy().copy() for layer in layers],
            examples,
            y,
        )

    def probabilities(self, inputs: FloatArray) -> FloatArray:
        """Return class probabilities, one row per input row."""
        values = inputs
        for depth, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            values = values @ weight + bias
            if depth < len(self.weights) - 1:
                values = _gelu(values)
        logits = values - values.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: FloatArray = exp / exp.sum(axis=1, keepdims=True)
        return result

    def closeness(
        self, vectors: FloatArray, predicted: npt.NDArray[np.int64], k: int
    ) -> FloatArray:
        """Mean cosine of each vector to its ``k`` nearest examples of its predicted class."""
        similarities = vectors @ self.examples.T
        result = np.empty(len(vectors), dtype=np.float32)
        for row, label in enumerate(predicted):
            same = similarities[row, self.example_labels == label]
            top = np.sort(same)[-k:] if same.size else np.zeros(1)
            result[row] = float(top.mean())
        return result


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER],
    is_trainable=True,
)
class CouncilIntentClassifier(GraphComponent, IntentClassifier):
    """Intent classifier with an out-of-scope decision (see the module docstring).

    Config:
        head: ``mlp`` (a one-hidden-layer network) or ``logistic`` (logistic regression).
        C: Inverse regularisation strength of the logistic regression.
        network: Overrides of :class:`NetworkSettings` for the ``mlp`` head.
        k: Neighbours in the closeness score.
        closeness_weight: Weight of the closeness in the score (the rest is the probability).
        threshold: Below this score the intent is ``nlu_fallback``.
    """

    @staticmethod
    def required_components() -> list[type]:
        """Needs the sentence embeddings."""
        return [SentenceEmbeddingFeaturizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Return the defaults, chosen on the demo data and CLINC150 (see docs/nlu.md)."""
        return {
            "head": "mlp",
            "C": 20.0,
            "network": {},
            "k": 5,
            "closeness_weight": 0.5,
            "threshold": 0.55,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: IntentModel | None = None,
    ) -> None:
        if config["head"] not in HEADS:
            raise ConfigError(
                "config.yml",
                "pipeline.CouncilIntentClassifier.head",
                f"{config['head']!r} is not one of {', '.join(HEADS)}",
            )
        try:
            self.network = NetworkSettings(**(config.get("network") or {}))
        except TypeError as error:
            raise ConfigError(
                "config.yml", "pipeline.CouncilIntentClassifier.network", str(error)
            ) from None
        self.config = config
        self._storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CouncilIntentClassifier:
        """Create an untrained classifier."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fit on every intent example that has an embedding, and persist."""
        inputs, vectors, labels = [], [], []
        for message in training_data.intent_examples:
            vector = sentence_embedding(message)
            if vector is not None:
                inputs.append(_inputs(message, vector))
                vectors.append(vector)
                labels.append(str(message.get(INTENT)))
        if len(set(labels)) < 2:
            # Nothing to tell apart: stay untrained, every message becomes nlu_fallback.
            return self._resource
        if self.config["head"] == "logistic":
            self.model = IntentModel.fit_logistic(
                np.vstack(inputs), np.vstack(vectors), labels, float(self.config["C"])
            )
        else:
            self.model = IntentModel.fit_network(
                np.vstack(inputs), np.vstack(vectors), labels, self.network
            )
        self._persist()
        return self._resource

    def _persist(self) -> None:
        assert self.model is not None
        layers = {f"weight{i}": weight for i, weight in enumerate(self.model.weights)}
        layers |= {f"bias{i}": bias for i, bias in enumerate(self.model.biases)}
        with self._storage.write_to(self._resource) as folder:
            np.savez_compressed(
                folder / "model.npz",
                examples=self.model.examples,
                example_labels=self.model.example_labels,
                **layers,
            )
            (folder / "classes.json").write_text(json.dumps(self.model.classes))

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CouncilIntentClassifier:
        """Load the persisted arrays (plain arrays: nothing is unpickled)."""
        try:
            with model_storage.read_from(resource) as folder:
                arrays = np.load(folder / "model.npz", allow_pickle=False)
                classes = json.loads((folder / "classes.json").read_text())
                depth = sum(1 for name in arrays.files if name.startswith("weight"))
                model = IntentModel(
                    classes,
                    [arrays[f"weight{i}"] for i in range(depth)],
                    [arrays[f"bias{i}"] for i in range(depth)],
                    arrays["examples"],
                    arrays["example_labels"],
                )
        except ValueError:  # nothing persisted: trained on fewer than two intents
            model = None
        return cls(config, model_storage, resource, model)

    def scores(self, inputs: FloatArray, vectors: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return (probabilities, trust score) for classifier inputs and sentence embeddings."""
        assert self.model is not None
        probabilities = self.model.probabilities(inputs)
        predicted = probabilities.argmax(axis=1)
        closeness = self.model.closeness(vectors, predicted, int(self.config["k"]))
        weight = float(self.config["closeness_weight"])
        trust = (1 - weight) * probabilities.max(axis=1) + weight * closeness
        return probabilities, trust

    def process(self, messages: list[Message]) -> list[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message."""
        for message in messages:
            vector = sentence_embedding(message)
            if self.model is None or vector is None:
                message.set(
                    INTENT,
                    {INTENT_NAME_KEY: FALLBACK_INTENT, "confidence": 1.0},
                    add_to_output=True,
                )
                message.set(INTENT_RANKING_KEY, [], add_to_output=True)
                continue
            probabilities, trust = self.scores(
                _inputs(message, vector)[np.newaxis, :], vector[np.newaxis, :]
            )
            order = np.argsort(-probabilities[0])[:_RANKING_LENGTH]
            ranking = [
                {INTENT_NAME_KEY: self.model.classes[i], "confidence": float(probabilities[0, i])}
                for i in order
            ]
            top = ranking[0][INTENT_NAME_KEY]
            if top == OUT_OF_SCOPE_INTENT or trust[0] < float(self.config["threshold"]):
                intent = {INTENT_NAME_KEY: FALLBACK_INTENT, "confidence": float(1 - trust[0])}
                ranking.insert(0, dict(intent))
            else:
                intent = {
                    INTENT_NAME_KEY: ranking[0][INTENT_NAME_KEY],
                    "confidence": float(trust[0]),
                }
            message.set(INTENT, intent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages


def _inputs(message: Message, vector: FloatArray) -> FloatArray:
    # The per-layer features when the featurizer makes them, else the sentence embedding.
    layered = layer_features(message)
    return vector if layered is None else layered
