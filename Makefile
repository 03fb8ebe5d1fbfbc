# SceneSeek: `make run` sets up and starts the app; `make test` runs every test.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fast bench clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

# The front checks the accounts (serve-check), listens on SCENESEEK_HOST:SCENESEEK_PORT and
# starts Streamlit behind it on a private loopback port; Ctrl-C stops both.
run: setup
	$(BIN)/python -m core front

test: setup
	bash scripts/test.sh

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" -q

clean:
	rm -rf $(VENV) .pytest_cache
