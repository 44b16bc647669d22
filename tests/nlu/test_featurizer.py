import os

import numpy as np
import pytest
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.featurizer import SentenceEmbeddingFeaturizer, layer_features, sentence_embedding


def test_training_messages_get_one_normalised_sentence_feature(training_data: TrainingData) -> None:
    vectors = [sentence_embedding(message) for message in training_data.training_examples]
    assert all(vector is not None and vector.shape == (384,) for vector in vectors)
    norms = np.linalg.norm(np.vstack([v for v in vectors if v is not None]), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_batch_and_single_encoding_agree(
    featurizer: SentenceEmbeddingFeaturizer,
    tokenizer: WhitespaceTokenizer,
    training_data: TrainingData,
) -> None:
    batch = training_data.training_examples[0]
    single = Message(data={"text": batch.get("text")})
    tokenizer.process([single])
    featurizer.process([single])
    first, second = sentence_embedding(batch), sentence_embedding(single)
    assert first is not None and second is not None
    assert float(first @ second) > 0.999


def test_similar_texts_are_closer_than_unrelated_ones(
    featurizer: SentenceEmbeddingFeaturizer,
) -> None:
    bins, bins_again, tax = featurizer.embedder.encode(
        ["when is my bin collected", "what day are the bins emptied", "pay my council tax"]
    )
    assert float(bins @ bins_again) > float(bins @ tax)


def test_message_without_text_is_left_alone(featurizer: SentenceEmbeddingFeaturizer) -> None:
    message = Message(data={"intent": "greet"})
    featurizer.process([message])
    assert sentence_embedding(message) is None


def test_the_model_is_loaded_once_per_process(featurizer: SentenceEmbeddingFeaturizer) -> None:
    again = SentenceEmbeddingFeaturizer(SentenceEmbeddingFeaturizer.get_default_config(), "again")
    assert again.embedder._model is featurizer.embedder._model


def test_layer_features_come_with_the_same_sentence_embedding(
    featurizer: SentenceEmbeddingFeaturizer,
) -> None:
    config = {**SentenceEmbeddingFeaturizer.get_default_config(), "layers": [1, 6]}
    layered = SentenceEmbeddingFeaturizer(config, "layered")
    texts = ["when is my bin day", "a long message about the pothole outside number 12", "hi"]
    plain = [Message(data={"text": text}) for text in texts]
    both = [Message(data={"text": text}) for text in texts]
    featurizer.process(plain)
    layered.process(both)
    for one, other in zip(plain, both, strict=True):
        embedding, features = sentence_embedding(other), layer_features(other)
        assert embedding is not None and features is not None
        assert embedding == pytest.approx(sentence_embedding(one), abs=1e-5)
        assert features.shape == (2 * embedding.size,)
        # Each layer's block is unit length; the last configured layer is the embedding itself.
        assert np.linalg.norm(features[: embedding.size]) == pytest.approx(1.0, abs=1e-5)
        assert features[embedding.size :] == pytest.approx(embedding, abs=1e-5)
    assert layer_features(plain[0]) is None
