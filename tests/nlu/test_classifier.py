import json
import math
from typing import Any

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.errors import ConfigError
from bot.nlu.calibration import CALIBRATION_FILE
from bot.nlu.classifier import FALLBACK_INTENT, CouncilIntentClassifier
from bot.nlu.featurizer import SentenceEmbeddingFeaturizer
from tests.nlu.conftest import copied

# Every fit here (the module's classifier's included) runs on one torch thread.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A smaller network than the shipped one: the tests train many (cross-validation), and what they
# check does not depend on its size.
SMALL_NETWORK = {"hidden": 256, "min_steps": 150}


def _config(**overrides: Any) -> dict[str, Any]:
    return {**CouncilIntentClassifier.get_default_config(), "network": SMALL_NETWORK, **overrides}


@pytest.fixture(scope="module")
def trained(
    featurized: TrainingData, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CouncilIntentClassifier, Resource]:
    """One classifier trained for the module: the tests only read it."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("classifier-storage"))
    context = ExecutionContext(GraphSchema({}), "test-model")
    resource = Resource("classifier")
    classifier = CouncilIntentClassifier.create(_config(), storage, resource, context)
    return classifier, classifier.train(copied(featurized))


def _parse(
    classifier: CouncilIntentClassifier,
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
    text: str,
) -> Message:
    message = Message(data={"text": text})
    tokenizer.process([message])
    featurizer.process([message])
    classifier.process([message])
    return message


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("what day is my bin emptied", "bin_day"),
        ("i need to pay council tax", "council_tax"),
        ("there's a big pothole on our road", "pothole"),
    ],
)
def test_in_scope_messages_get_their_intent(
    trained: tuple[CouncilIntentClassifier, Resource],
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
    text: str,
    intent: str,
) -> None:
    message = _parse(trained[0], featurizer, tokenizer, text)
    assert message.get("intent")["name"] == intent
    ranking = message.get("intent_ranking")
    assert ranking[0]["name"] == intent
    assert sum(entry["confidence"] for entry in ranking) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "text", ["what's the weather in tokyo", "tell me a funny story", "xq zzv blorp"]
)
def test_out_of_scope_messages_fall_back_keeping_the_ranking(
    trained: tuple[CouncilIntentClassifier, Resource],
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
    text: str,
) -> None:
    message = _parse(trained[0], featurizer, tokenizer, text)
    assert message.get("intent")["name"] == FALLBACK_INTENT
    names = [entry["name"] for entry in message.get("intent_ranking")]
    assert names[0] == FALLBACK_INTENT
    assert {"bin_day", "council_tax", "pothole", "out_of_scope"} <= set(names[1:])


def test_threshold_is_a_config_value(
    trained: tuple[CouncilIntentClassifier, Resource],
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
) -> None:
    strict = CouncilIntentClassifier(
        _config(threshold=1.01), trained[0]._storage, trained[1], trained[0].model
    )
    message = _parse(strict, featurizer, tokenizer, "when is my bin collected")
    assert message.get("intent")["name"] == FALLBACK_INTENT


def test_persist_and_load_round_trip(
    trained: tuple[CouncilIntentClassifier, Resource],
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
    execution_context: ExecutionContext,
) -> None:
    original, resource = trained
    loaded = CouncilIntentClassifier.load(_config(), original._storage, resource, execution_context)
    for text in ["report a pothole please", "sing me something", "council tax bill"]:
        before = _parse(original, featurizer, tokenizer, text)
        after = _parse(loaded, featurizer, tokenizer, text)
        assert after.get("intent") == pytest.approx(before.get("intent"))
        assert after.get("intent_ranking") == before.get("intent_ranking")


def test_untrained_classifier_falls_back(
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
) -> None:
    resource = Resource("empty")
    classifier = CouncilIntentClassifier.create(
        _config(), model_storage, resource, execution_context
    )
    classifier.train(TrainingData([Message(data={"text": "hi", "intent": "greet"})]))
    loaded = CouncilIntentClassifier.load(_config(), model_storage, resource, execution_context)
    message = _parse(loaded, featurizer, tokenizer, "hello")
    assert message.get("intent")["name"] == FALLBACK_INTENT


def test_logistic_head_classifies_and_round_trips(
    training_data: TrainingData,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
) -> None:
    resource = Resource("logistic")
    config = _config(head="logistic")
    classifier = CouncilIntentClassifier.create(config, model_storage, resource, execution_context)
    classifier.train(training_data)
    assert classifier.model is not None and len(classifier.model.weights) == 1
    loaded = CouncilIntentClassifier.load(config, model_storage, resource, execution_context)
    message = _parse(loaded, featurizer, tokenizer, "there's a big pothole on our road")
    assert message.get("intent")["name"] == "pothole"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"head": "forest"}, "pipeline.CouncilIntentClassifier.head"),
        ({"network": {"hiden": 10}}, "pipeline.CouncilIntentClassifier.network"),
        ({"answer_precision": 1.5}, "pipeline.CouncilIntentClassifier.answer_precision"),
        ({"answer_precision": "high"}, "pipeline.CouncilIntentClassifier.answer_precision"),
        ({"out_of_scope_share": 1}, "pipeline.CouncilIntentClassifier.out_of_scope_share"),
        ({"calibration_folds": 1}, "pipeline.CouncilIntentClassifier.calibration_folds"),
        ({"fallback_threshold": None}, "pipeline.CouncilIntentClassifier.fallback_threshold"),
        ({"threshold": "low"}, "pipeline.CouncilIntentClassifier.threshold"),
    ],
)
def test_bad_classifier_config_names_the_key(
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    overrides: dict[str, Any],
    key: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        CouncilIntentClassifier.create(
            _config(**overrides), model_storage, Resource("bad"), execution_context
        )
    assert raised.value.path == "config.yml" and raised.value.key == key


def test_calibration_is_stored_and_reloaded_with_the_model(
    trained: tuple[CouncilIntentClassifier, Resource],
    execution_context: ExecutionContext,
) -> None:
    original, resource = trained
    assert original.calibration is not None
    with original._storage.read_from(resource) as folder:
        stored = json.loads((folder / CALIBRATION_FILE).read_text())
    assert stored == original.calibration.to_dict()
    loaded = CouncilIntentClassifier.load(_config(), original._storage, resource, execution_context)
    assert loaded.calibration == original.calibration
    assert loaded.threshold == original.calibration.threshold
    # An explicit threshold in config.yml overrides the stored one.
    assert CouncilIntentClassifier.load(
        _config(threshold=0.42), original._storage, resource, execution_context
    ).threshold == pytest.approx(0.42)


def test_the_threshold_is_calibrated_on_held_out_examples(
    training_data: TrainingData,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    # 24 examples, all held out once by 3-fold cross-validation: enough when 20 are asked for.
    config = _config(calibration_folds=3, min_calibration_examples=20, answer_precision=0.9)
    classifier = CouncilIntentClassifier.create(
        config, model_storage, Resource("calibrated"), execution_context
    )
    classifier.train(training_data)
    calibration = classifier.calibration
    assert calibration is not None and not calibration.fallback, calibration
    assert calibration.examples == 24
    assert calibration.precision >= 0.9
    assert 0 < calibration.answered_share <= 0.75  # the six out_of_scope ones are never right
    assert not math.isnan(calibration.oos_recall)
    assert classifier.threshold == calibration.threshold
    assert calibration.warning == ""
    report = "\n".join(classifier.report())
    assert f"calibrated threshold {calibration.threshold:.3f}" in report
    assert "90.0% answer precision" in report and "out-of-scope recall" in report


def test_too_few_held_out_examples_fall_back_with_a_warning(
    trained: tuple[CouncilIntentClassifier, Resource],
) -> None:
    # The module's classifier: 24 examples, default minimum 30.
    calibration = trained[0].calibration
    assert calibration is not None and calibration.fallback
    assert calibration.threshold == _config()["fallback_threshold"]
    assert "only 24 held-out examples" in calibration.warning
    assert "WARNING: only 24 held-out examples" in "\n".join(trained[0].report())


def test_an_intent_with_a_single_example_is_named_and_made_conservative(
    training_data: TrainingData,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
) -> None:
    lonely = Message(data={"text": "can i rent an allotment", "intent": "allotment"})
    tokenizer.process([lonely])
    featurizer.process([lonely])
    data = TrainingData([*training_data.training_examples, lonely])
    config = _config(calibration_folds=3, min_calibration_examples=20, fallback_threshold=0.6)
    classifier = CouncilIntentClassifier.create(
        config, model_storage, Resource("lonely"), execution_context
    )
    classifier.train(data)  # training succeeds
    calibration = classifier.calibration
    assert calibration is not None and calibration.fallback
    assert "intent 'allotment' has a single training example" in calibration.warning
    assert calibration.threshold >= 0.6 and classifier.threshold == calibration.threshold
    assert calibration.examples == 24  # the single example is never held out
    message = _parse(classifier, featurizer, tokenizer, "there's a big pothole on our road")
    assert message.get("intent")["name"] == "pothole"


def test_without_out_of_scope_examples_the_warning_says_recall_is_unknown(
    training_data: TrainingData,
    model_storage: LocalModelStorage,
    execution_context: ExecutionContext,
) -> None:
    in_scope = [m for m in training_data.training_examples if m.get("intent") != "out_of_scope"]
    config = _config(calibration_folds=3, min_calibration_examples=10, answer_precision=0.9)
    classifier = CouncilIntentClassifier.create(
        config, model_storage, Resource("no-oos"), execution_context
    )
    classifier.train(TrainingData(in_scope))
    calibration = classifier.calibration
    assert calibration is not None and math.isnan(calibration.oos_recall)
    assert "no 'out_of_scope' examples" in calibration.warning
