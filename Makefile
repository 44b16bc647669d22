# Council Responder: every entry point a newcomer or CI needs.
VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
export PYTHONDONTWRITEBYTECODE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install train run chat test test-fast test-setup lint typecheck pytest pytest-fast pytest-profile bench bench-channels bench-knowledge bench-handoff bench-fullstack bench-webchat bench-reports clean

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

# Chromium for the browser tests (installed with apt-get when root). Redis needs no setup: with
# TEST_REDIS_URL unset the test session starts the product's embedded server and stops it.
test-setup: install
	@bash scripts/test-setup.sh

# pytest exits 5 when it collected no tests: that fails too, with a clear message.
define run_pytest
	@status=0; $(PY) -m pytest $(1) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest: no tests were collected" >&2; fi; exit $$status
endef

pytest: install test-setup
	$(call run_pytest,$(PYTEST_ARGS))

# The real assistant's conversations again under a second, different council (issue 11): its
# name, numbers, teams, bins, Welsh and back office come from tests/data/profiles/glanfor.yml,
# not from code. A subset that reads the profile (one more Rasa server; the trained model is
# shared): the whole e2e suite runs under it with
#   make pytest PYTEST_ARGS="tests/e2e --profile tests/data/profiles/glanfor.yml"
SECOND_PROFILE := tests/data/profiles/glanfor.yml
SECOND_PROFILE_TESTS := tests/e2e/test_assistant.py tests/e2e/test_routine.py \
	tests/e2e/test_welsh.py tests/e2e/test_responses.py tests/e2e/test_reports.py \
	tests/e2e/test_quality.py::test_test_conversations_are_still_answered

pytest-profile: install
	$(call run_pytest,$(SECOND_PROFILE_TESTS) --profile $(SECOND_PROFILE) $(PYTEST_ARGS))

# Everything but the end-to-end (real Rasa) and browser tests: no Chromium needed. Two
# pytest-xdist workers, each with its own embedded Redis: much of this suite waits on sockets
# and servers, not the CPU (PYTEST_ARGS="-n 0" runs it in one process, e.g. for --pdb). Each
# worker collects every module, so compiled modules and pytest's rewritten tests are cached
# under .pytest_cache/pycache, outside the source folders.
pytest-fast: export PYTHONDONTWRITEBYTECODE :=
pytest-fast: export PYTHONPYCACHEPREFIX := $(CURDIR)/.pytest_cache/pycache
pytest-fast: install
	$(call run_pytest,-n 2 -m "not e2e and not browser" $(PYTEST_ARGS))

test: lint typecheck pytest pytest-profile

test-fast: lint typecheck pytest-fast

bench: install
	@$(PY) bench/nlu_clinc150.py

bench-channels: install
	@$(PY) bench/channels.py

bench-knowledge: install
	@$(PY) bench/knowledge.py

bench-handoff: install
	@$(PY) bench/handoff.py

bench-webchat: install
	@$(PY) bench/webchat.py $(BENCH_ARGS)

# problem reports to the Open311 stand-in through failures and an outage (BENCH_ARGS=--short)
bench-reports: install
	@$(PY) bench/reports.py $(BENCH_ARGS)

# The whole assistant (real model, actions, Redis) over signed webhooks vs Rasa's REST channel.
# Needs a trained model (make train); BENCH_ARGS=--short for a quick development run.
bench-fullstack: install
	@$(PY) bench/fullstack.py $(BENCH_ARGS)

clean:
	rm -rf models .data .mypy_cache .ruff_cache .pytest_cache
