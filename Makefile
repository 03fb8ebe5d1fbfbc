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

run: setup
	$(BIN)/python -m core serve-check --host $${SCENESEEK_HOST:-127.0.0.1}
	$(BIN)/streamlit run app/Home.py --server.address $${SCENESEEK_HOST:-127.0.0.1} --server.port $${SCENESEEK_PORT:-8501} --server.maxUploadSize $${SCENESEEK_MAX_UPLOAD_MB:-500}

test: setup
	bash scripts/test.sh

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" -q

clean:
	rm -rf $(VENV) .pytest_cache
