# Council Responder: every entry point a newcomer or CI needs.
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
export PYTHONDONTWRITEBYTECODE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install train run chat test lint typecheck pytest bench bench-channels bench-knowledge bench-handoff clean

install:
	@bash scripts/install.sh

# Rasa fingerprints config, domain and data: an unchanged project is not retrained.
train: install
	@$(PY) -m bot.train

run: train
	@$(PY) -m bot.run

chat: train
	@$(PY) -m bot.run --chat

lint: install
	@$(VENV)/bin/ruff check bot actions tests bench
	@$(VENV)/bin/ruff format --check bot actions tests bench

typecheck: install
	@$(VENV)/bin/mypy

pytest: install
	@$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	@$(PY) bench/nlu_clinc150.py

bench-channels: install
	@$(PY) bench/channels.py

bench-knowledge: install
	@$(PY) bench/knowledge.py

bench-handoff: install
	@$(PY) bench/handoff.py

clean:
	rm -rf models .data .mypy_cache .ruff_cache .pytest_cache
