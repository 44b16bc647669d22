"""Rasa component: intent classification with an out-of-scope decision.

The classifier is a small neural network (or, configured so, multinomial logistic regression) on
the featurizer's output: the per-layer features when the featurizer has ``layers``, else the
sentence embedding. Whether to trust its answer is decided on a score that blends the winning
probability with how close the message's sentence embedding is to the training examples of the
winning intent (mean cosine of its ``k`` nearest): a message unlike anything seen in training is
doubted even when the network is confident. Below the threshold, or when the winner is the
trained ``out_of_scope`` intent, the message gets ``nlu_fallback`` (so the ``nlu_fallback``
rules fire), with the network's ranking kept. Inference is plain numpy on persisted arrays.

The threshold is calibrated for each trained model (:mod:`bot.nlu.calibration`): training
cross-validates the network on the cached features, scores every example with a model that did not
see it, and picks the lowest threshold whose answers are right ``answer_precision`` of the time.
The :class:`~bot.nlu.calibration.Calibration` is stored with the model and logged.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, replace
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
from bot.nlu.calibration import (
    CALIBRATION_FILE,
    Calibration,
    calibrate,
    outcome,
    stratified_folds,
    traffic_weights,
)
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
_MIN_INTENT_EXAMPLES = 2  # fewer: the intent cannot be held out, so it is not calibrated

logger = logging.getLogger(__name__)


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

    def trust(
        self, inputs: FloatArray, vectors: FloatArray, k: int, closeness_weight: float
    ) -> tuple[FloatArray, FloatArray]:
        """Return (probabilities, trust score) for classifier inputs and sentence embeddings."""
        probabilities = self.probabilities(inputs)
        closeness = self.closeness(vectors, probabilities.argmax(axis=1), k)
        trust = (1 - closeness_weight) * probabilities.max(axis=1) + closeness_weight * closeness
        return probabilities, trust

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
    """Intent classifier with a calibrated out-of-scope decision (see the module docstring).

    Config:
        head: ``mlp`` (a one-hidden-layer network) or ``logistic`` (logistic regression).
        C: Inverse regularisation strength of the logistic regression.
        network: Overrides of :class:`NetworkSettings` for the ``mlp`` head.
        k: Neighbours in the closeness score.
        closeness_weight: Weight of the closeness in the score (the rest is the probability).
        answer_precision: The share of answers that must be right; the threshold is calibrated
            to the lowest score that meets it on held-out examples.
        out_of_scope_share: The share of real traffic expected to be out of scope: held-out
            ``out_of_scope`` examples are weighted to make up this share (none: as they come).
        calibration_folds: Folds of the cross-validation that gives the held-out scores.
        calibration_examples: Folds are run (in turn) only until this many examples have been
            held out: a council's data runs them all, a large data set stops early (time).
        min_calibration_examples: Fewer held-out examples than this: no calibration.
        fallback_threshold: The conservative threshold used when calibration is not possible.
        threshold: An explicit threshold overriding the calibrated one (none: calibrated).
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
            "answer_precision": 0.98,
            "out_of_scope_share": None,
            "calibration_folds": 5,
            "calibration_examples": 3000,
            "min_calibration_examples": 30,
            "fallback_threshold": 0.55,
            "threshold": None,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: IntentModel | None = None,
        calibration: Calibration | None = None,
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
        _check_options(config)
        self.config = config
        self._storage = model_storage
        self._resource = resource
        self.model = model
        self.calibration = calibration

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

    @property
    def threshold(self) -> float:
        """The threshold in use: ``threshold`` from the config, else the calibrated one."""
        if self.config.get("threshold") is not None:
            return float(self.config["threshold"])
        if self.calibration is not None:
            return self.calibration.threshold
        return float(self.config["fallback_threshold"])

    def train(self, training_data: TrainingData) -> Resource:
        """Fit on every intent example that has an embedding, calibrate, and persist."""
        inputs, vectors, labels = [], [], []
        for message in training_data.intent_examples:
            vector = sentence_embedding(message)
            if vector is not None:
                inputs.append(_inputs(message, vector))
                vectors.append(vector)
                labels.append(str(message.get(INTENT)))
        if len(set(labels)) < 2:
            # Nothing to tell apart: stay untrained, every message becomes nlu_fallback.
            logger.warning(
                "CouncilIntentClassifier: fewer than two intents with examples (%s): every "
                "message will be handed off",
                ", ".join(sorted(set(labels))) or "none",
            )
            return self._resource
        features, embeddings = np.vstack(inputs), np.vstack(vectors)
        self.model = self._fit(features, embeddings, labels)
        self.calibration = self._calibrate(features, embeddings, labels)
        for line in self.report():
            logger.info("CouncilIntentClassifier: %s", line)
        self._persist()
        return self._resource

    def _fit(self, inputs: FloatArray, vectors: FloatArray, labels: list[str]) -> IntentModel:
        if self.config["head"] == "logistic":
            return IntentModel.fit_logistic(inputs, vectors, labels, float(self.config["C"]))
        return IntentModel.fit_network(inputs, vectors, labels, self.network)

    def held_out_scores(
        self, inputs: FloatArray, vectors: FloatArray, labels: list[str]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Cross-validate the head on the cached features: (score, correct, out_of_scope).

        Only examples that were held out get a row. An example answered as ``out_of_scope``
        gets the score ``-inf`` (never answered, whatever the threshold); ``correct`` is False
        for out-of-scope examples and misclassified ones.
        """
        folds = stratified_folds(labels, int(self.config["calibration_folds"]))
        gold = np.array(labels)
        scores: list[npt.NDArray[np.float64]] = []
        correct: list[npt.NDArray[np.bool_]] = []
        out_of_scope: list[npt.NDArray[np.bool_]] = []
        for fold in range(int(self.config["calibration_folds"])):
            held, kept = folds == fold, folds != fold
            if sum(len(done) for done in scores) >= int(self.config["calibration_examples"]):
                break
            if not held.any() or len(set(gold[kept])) < 2:
                continue
            model = self._fit(inputs[kept], vectors[kept], list(gold[kept]))
            probabilities, trust = model.trust(
                inputs[held],
                vectors[held],
                int(self.config["k"]),
                float(self.config["closeness_weight"]),
            )
            predicted = np.array(model.classes)[probabilities.argmax(axis=1)]
            refused = predicted == OUT_OF_SCOPE_INTENT
            scores.append(np.where(refused, -np.inf, trust))
            correct.append((predicted == gold[held]) & ~refused)
            out_of_scope.append(gold[held] == OUT_OF_SCOPE_INTENT)
        if not scores:
            return np.zeros(0), np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.bool_)
        return np.concatenate(scores), np.concatenate(correct), np.concatenate(out_of_scope)

    def _calibrate(self, inputs: FloatArray, vectors: FloatArray, labels: list[str]) -> Calibration:
        score_array, correct_array, oos_array = self.held_out_scores(inputs, vectors, labels)
        scores, correct, out_of_scope = (
            score_array.tolist(),
            correct_array.tolist(),
            oos_array.tolist(),
        )
        weights = traffic_weights(out_of_scope, self.config.get("out_of_scope_share"))
        fallback_threshold = float(self.config["fallback_threshold"])
        calibration = calibrate(
            scores,
            correct,
            target_precision=float(self.config["answer_precision"]),
            fallback_threshold=fallback_threshold,
            min_examples=int(self.config["min_calibration_examples"]),
            out_of_scope=out_of_scope,
            weights=weights,
        )
        counts = Counter(labels)
        too_small = sorted(name for name, count in counts.items() if count < _MIN_INTENT_EXAMPLES)
        warnings = [calibration.warning] if calibration.warning else []
        if too_small:
            # The data say nothing about these intents: answer them no more readily than the
            # conservative threshold allows.
            threshold = max(calibration.threshold, fallback_threshold)
            at = outcome(threshold, scores, correct, out_of_scope=out_of_scope, weights=weights)
            names = ", ".join(f"'{name}'" for name in too_small)
            subject = f"intent {names} has" if len(too_small) == 1 else f"intents {names} have"
            warnings.append(
                f"{subject} a single training example, too few to check how well it is "
                "recognised (add ten or more): the conservative threshold "
                f"{threshold:.3f} is used until then"
            )
            calibration = replace(
                calibration,
                threshold=threshold,
                answered_share=at.answered_share,
                precision=at.precision,
                oos_recall=at.oos_recall,
                fallback=True,
            )
        if OUT_OF_SCOPE_INTENT not in counts:
            warnings.append(
                f"no '{OUT_OF_SCOPE_INTENT}' examples: out-of-scope recall cannot be estimated "
                "(add examples of questions the council does not handle)"
            )
        return replace(calibration, warning="; ".join(warnings))

    def report(self) -> list[str]:
        """Lines for the training output: the threshold and what it is expected to do."""
        if self.calibration is None:
            return [f"no calibration: threshold {self.threshold:.3f}"]
        lines = [self.calibration.summary()]
        if self.config.get("threshold") is not None:
            lines.append(
                f"threshold {self.threshold:.3f} set in config.yml overrides the calibrated one"
            )
        return lines

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
            if self.calibration is not None:
                (folder / CALIBRATION_FILE).write_text(
                    json.dumps(self.calibration.to_dict(), indent=2, allow_nan=False)
                )

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CouncilIntentClassifier:
        """Load the persisted arrays and calibration (plain data: nothing is unpickled)."""
        calibration = None
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
                if (folder / CALIBRATION_FILE).exists():
                    calibration = Calibration.from_dict(
                        json.loads((folder / CALIBRATION_FILE).read_text())
                    )
        except ValueError:  # nothing persisted: trained on fewer than two intents
            model = None
        return cls(config, model_storage, resource, model, calibration)

    def scores(self, inputs: FloatArray, vectors: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return (probabilities, trust score) for classifier inputs and sentence embeddings."""
        assert self.model is not None
        return self.model.trust(
            inputs, vectors, int(self.config["k"]), float(self.config["closeness_weight"])
        )

    def process(self, messages: list[Message]) -> list[Message]:
        """Set ``intent`` and ``intent_ranking`` on each message."""
        threshold = self.threshold
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
            if top == OUT_OF_SCOPE_INTENT or trust[0] < threshold:
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


def _check_options(config: dict[str, Any]) -> None:
    # A bad calibration option is a ConfigError naming config.yml and the key.
    def bad(key: str, reason: str) -> ConfigError:
        return ConfigError("config.yml", f"pipeline.CouncilIntentClassifier.{key}", reason)

    def number(key: str) -> float | None:
        value = config.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(key, f"{value!r} is not a number")
        return float(value)

    precision = number("answer_precision")
    if precision is None or not 0 < precision <= 1:
        raise bad("answer_precision", f"{config.get('answer_precision')!r} is not in (0, 1]")
    share = number("out_of_scope_share")
    if share is not None and not 0 < share < 1:
        raise bad("out_of_scope_share", f"{share!r} is not between 0 and 1")
    for key in ("fallback_threshold", "threshold"):
        number(key)
    if config.get("fallback_threshold") is None:
        raise bad("fallback_threshold", "a number is needed")
    for key, least in (
        ("calibration_folds", 2),
        ("calibration_examples", 1),
        ("min_calibration_examples", 0),
    ):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise bad(key, f"{value!r} is not a whole number of at least {least}")


def _inputs(message: Message, vector: FloatArray) -> FloatArray:
    # The per-layer features when the featurizer makes them, else the sentence embedding.
    layered = layer_features(message)
    return vector if layered is None else layered
