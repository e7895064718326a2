# The README's two commands: `make demo` and `make test` (plus `make lint`, `make bench`, `make hooks`).
# Each creates .venv on first use and installs the package with every extra declared in pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SHARED ?= ../shared
SHARED_WEIGHTS = $(SHARED)/weights/vgg16_caffe_features_fp16.pth

# The offline setup, in this one place (CI's .ci/run calls make): when ../shared sits beside the
# checkout, use its VGG16 weights and sample images. Your own NST_* variables win.
ifneq ($(wildcard $(SHARED_WEIGHTS)),)
export NST_WEIGHTS    ?= $(abspath $(SHARED_WEIGHTS))
export NST_VGG        ?= vgg16
export NST_INPUT_NORM ?= caffe
endif
ifneq ($(wildcard $(SHARED)/images/MANIFEST.csv),)
export NST_DATA_DIR ?= $(abspath $(SHARED)/images)
endif
export MPLBACKEND ?= Agg

DEMO_ARGS ?= --size 256 --steps 200 -o outputs/demo.png
LINTED     = nst_helpers tests benchmarks notebooks

.PHONY: demo test test-fast test-browser lint format hooks bench clean

$(BIN)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

## demo: stylise the default sample pair (Tübingen x The Starry Night) into outputs/demo.png
demo: $(BIN)/.installed
	$(BIN)/python -m nst_helpers $(DEMO_ARGS)

## test: unit tests, then every notebook in quick mode (offline: random weights if ../shared is absent)
test: $(BIN)/.installed
	NST_QUICK=1 NST_WEIGHTS=$${NST_WEIGHTS:-random} \
	  $(BIN)/python -m pytest -q --nbval-lax tests $(wildcard notebooks/*.ipynb)

## test-fast: unit tests without the slow marker (so without the browser tests too)
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m "not slow" tests

## test-browser: only the notebooks in JupyterLab in headless Chromium (screenshots in outputs/browser/)
test-browser: $(BIN)/.installed
	NST_QUICK=1 NST_WEIGHTS=$${NST_WEIGHTS:-random} $(BIN)/python -m pytest -q -m browser tests/browser

## lint: ruff (lint + format check) over code, tests, benchmarks and notebooks; mypy over the package
lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

## format: apply ruff's fixes and formatting
format: $(BIN)/.installed
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

## hooks: strip notebook outputs on every commit (nbstripout as a git filter)
hooks: $(BIN)/.installed
	$(BIN)/nbstripout --install --attributes .gitattributes

## bench: speed table (see README, Performance, and benchmarks/README.md)
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf outputs .pytest_cache
