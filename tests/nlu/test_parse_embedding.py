"""The featurizer puts the message's embedding into the parse data, for the knowledge base."""

from __future__ import annotations

import numpy as np
from rasa.shared.nlu.training_data.message import Message

from bot.knowledge.embedding import EMBEDDING, embedding_output, message_embedding
from bot.nlu.featurizer import SentenceEmbeddingFeaturizer, sentence_embedding


def _parsed(featurizer: SentenceEmbeddingFeaturizer, text: str) -> tuple[Message, dict]:
    message = Message(data={"text": text})
    featurizer.process([message])
    return message, message.as_dict(only_output_properties=True)


def test_the_parse_data_carries_the_sentence_embedding_exactly(
    featurizer: SentenceEmbeddingFeaturizer,
) -> None:
    message, parse_data = _parsed(featurizer, "how do I pay my council tax online")
    carried = message_embedding(parse_data)
    assert carried is not None
    assert np.array_equal(carried, sentence_embedding(message))
    assert np.allclose(
        carried, featurizer.embedder.encode(["how do I pay my council tax online"])[0], atol=1e-5
    )


def test_a_message_without_text_carries_none(featurizer: SentenceEmbeddingFeaturizer) -> None:
    message = Message(data={"intent": "greet"})
    featurizer.process([message])
    assert EMBEDDING not in message.as_dict(only_output_properties=True)


def test_an_embedding_of_another_model_or_damaged_is_not_used() -> None:
    vector = np.linspace(-1, 1, 384, dtype=np.float32)
    good = embedding_output(
        vector, SentenceEmbeddingFeaturizer.get_default_config()["model_sha256"]
    )
    assert np.array_equal(message_embedding({EMBEDDING: good}), vector)
    assert message_embedding({}) is None
    assert message_embedding({EMBEDDING: "AAAA"}) is None
    assert message_embedding({EMBEDDING: {**good, "model_sha256": "0" * 64}}) is None
    assert message_embedding({EMBEDDING: {**good, "vector": good["vector"][:-8]}}) is None
    assert message_embedding({EMBEDDING: {**good, "vector": "not base64!"}}) is None
    nan = embedding_output(np.full(384, np.nan, np.float32), good["model_sha256"])
    assert message_embedding({EMBEDDING: nan}) is None
