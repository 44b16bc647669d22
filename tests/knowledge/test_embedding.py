from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.knowledge.embedding import default_encoder


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("pipeline: []", "pipeline"),
        (
            "pipeline:\n  - name: bot.nlu.featurizer.SentenceEmbeddingFeaturizer\n    model: x",
            "pipeline.model",
        ),
        ("pipeline: [", ""),
    ],
)
def test_config_problems_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        default_encoder(str(path))
    assert caught.value.path == str(path) and caught.value.key == key
