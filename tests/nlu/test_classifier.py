from typing import Any

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.errors import ConfigError
from bot.nlu.classifier import FALLBACK_INTENT, CouncilIntentClassifier
from bot.nlu.featurizer import SentenceEmbeddingFeaturizer
from tests.nlu.conftest import featurized_examples


def _config(**overrides: Any) -> dict[str, Any]:
    return {**CouncilIntentClassifier.get_default_config(), **overrides}


@pytest.fixture(scope="module")
def trained(
    featurizer: SentenceEmbeddingFeaturizer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CouncilIntentClassifier, Resource]:
    """One classifier trained for the module: the tests only read it."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("classifier-storage"))
    context = ExecutionContext(GraphSchema({}), "test-model")
    resource = Resource("classifier")
    classifier = CouncilIntentClassifier.create(_config(), storage, resource, context)
    return classifier, classifier.train(featurized_examples(featurizer))


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
