# make pretrain / make test install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.llmkit-installed
ARGS ?=

.PHONY: install browser pretrain reader finetune evaluate test lint format bench device-wheels clean

# Re-installs only when pyproject.toml (or the torch pin) changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	@echo "$(TORCH)" > $(STAMP)

install: $(STAMP)

pretrain: install
	$(BIN)/llmkit pretrain --recipe recipes/pretrain/tiny.yaml --overwrite $(ARGS)

# The base `make finetune` starts from: the tiny model with 10x the steps of `make pretrain`,
# long enough to copy from its context (README, "The demo's base model").
reader: install
	@echo "Pretraining runs/pretrain-reader (recipes/pretrain/reader.yaml): about 19 minutes" \
		"on a 2-core CPU; the progress bar's ETA tells yours."
	$(BIN)/llmkit pretrain --recipe recipes/pretrain/reader.yaml --overwrite $(ARGS)

# Fine-tunes runs/pretrain-reader (made by `make reader` when missing) on the embedded QA
# set; prints exact match and F1 on the test split before and after. (ARGS are fine-tuning
# options, so they are not passed on to the base's pretraining.)
finetune: install
	@test -f runs/pretrain-reader/config.json || $(MAKE) reader ARGS=
	$(BIN)/llmkit finetune --recipe recipes/finetune/qa.yaml --overwrite $(ARGS)

# Perplexity of runs/pretrain-tiny (make pretrain) on held-out embedded text.
evaluate: install
	$(BIN)/llmkit evaluate --recipe recipes/evaluate/perplexity.yaml --overwrite $(ARGS)

# Headless Chromium for tests/test_inspect.py (renders attention.html); installed only when
# missing (Debian's package; needs root, as in CI).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: install browser
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  # each prints llmkit against a baseline run in the same invocation
	$(BIN)/python bench/pretrain_throughput.py
	$(BIN)/python bench/data_throughput.py
	$(BIN)/python bench/eval_throughput.py
	$(BIN)/python bench/quantize.py

# Wheels of llmkit's pinned libraries (the versions in .venv) for the lent GPU machine, whose
# image has torch with CUDA and Python 3.12 but no registry: bench/gpu_check.sh installs them.
# pyarrow (55 MB) stays out, to keep under the device tool's 64 MiB: the image has its own.
DEVICE_WHEELS := transformers huggingface.hub hf.xet httpx2 httpcore2 truststore h11 anyio \
	click regex datasets dill multiprocess fsspec accelerate peft tokenizers safetensors datasketch
device-wheels: install
	rm -rf .device/wheels
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
		-d .device/wheels $$($(BIN)/python -m pip freeze | \
		grep -iE '^($(shell echo $(DEVICE_WHEELS) | tr ' ' '|'))==')
	@du -sh .device/wheels

clean:
	rm -rf runs .cache .pytest_cache
