import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.featurizer import SentenceEmbeddingFeaturizer

# A tiny synthetic council dataset: three intents and out-of-scope examples.
EXAMPLES = {
    "bin_day": [
        "when is my bin collected",
        "what day do the bins go out",
        "which day is bin collection",
        "when do you empty the recycling",
        "my bin collection day please",
        "when is the next black bin day",
    ],
    "council_tax": [
        "how do i pay my council tax",
        "can i pay council tax online",
        "set up a direct debit for council tax",
        "how much is my council tax bill",
        "i want to pay my council tax",
        "council tax payment options",
    ],
    "pothole": [
        "there is a pothole in my road",
        "report a pothole",
        "huge hole in the road outside my house",
        "the road surface is broken",
        "pothole damaged my car",
        "can you fix the potholes on my street",
    ],
    "out_of_scope": [
        "tell me a joke",
        "what is the capital of france",
        "who won the football last night",
        "recommend a good film",
        "what is the meaning of life",
        "sing me a song",
    ],
}


@pytest.fixture(scope="session")
def featurizer() -> SentenceEmbeddingFeaturizer:
    """The real featurizer, loaded once for the session."""
    config = SentenceEmbeddingFeaturizer.get_default_config()
    return SentenceEmbeddingFeaturizer(config, "featurizer")


@pytest.fixture
def tokenizer() -> WhitespaceTokenizer:
    return WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())


def featurized_examples(featurizer: SentenceEmbeddingFeaturizer) -> TrainingData:
    """The synthetic dataset, tokenized and featurized as Rasa's training graph would."""
    data = TrainingData(
        [
            Message(data={"text": text, "intent": intent})
            for intent, texts in EXAMPLES.items()
            for text in texts
        ]
    )
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process_training_data(data)
    return featurizer.process_training_data(data)


@pytest.fixture(scope="session")
def featurized(featurizer: SentenceEmbeddingFeaturizer) -> TrainingData:
    """The synthetic dataset, featurized once for the session: read it through training_data.

    Encoding is the slow part of these tests on a busy machine (torch's threads wait on each
    other), and the model gives the same vectors every time.
    """
    return featurized_examples(featurizer)


@pytest.fixture
def training_data(featurized: TrainingData) -> TrainingData:
    """The synthetic dataset, featurized (a fresh copy per test: tests may change it)."""
    return copied(featurized)


def copied(data: TrainingData) -> TrainingData:
    """A deep copy of ``data``: its messages, tokens and features."""
    return TrainingData(copy.deepcopy(data.training_examples))


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread while a module trains the tiny test networks.

    On a busy two-core machine two threads wait on each other: one test network took 13-29 s
    to train instead of 0.6 s on one thread, and a calibrated classifier trains four to six.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def model_storage(tmp_path: Path) -> Iterator[LocalModelStorage]:
    folder = tmp_path / "storage"
    folder.mkdir()
    yield LocalModelStorage(folder)


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test-model")
