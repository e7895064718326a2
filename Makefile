# The README's two commands: `make demo` and `make test`.
# Both create .venv on first use and install the package with everything it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SHARED ?= ../shared
SHARED_WEIGHTS = $(SHARED)/weights/vgg16_caffe_features_fp16.pth

# Offline overrides when ../shared is beside the checkout; your own NST_* variables win.
ifneq ($(wildcard $(SHARED_WEIGHTS)),)
export NST_WEIGHTS    ?= $(abspath $(SHARED_WEIGHTS))
export NST_VGG        ?= vgg16
export NST_INPUT_NORM ?= caffe
endif
ifneq ($(wildcard $(SHARED)/images/MANIFEST.csv),)
export NST_DATA_DIR ?= $(abspath $(SHARED)/images)
endif

DEMO_ARGS ?= --size 256 --steps 200 -o outputs/demo.png

.PHONY: demo test test-fast notebooks hooks bench clean

$(BIN)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

## demo: stylise the default sample pair (Tübingen x The Starry Night) into outputs/demo.png
demo: $(BIN)/.installed
	$(BIN)/python -m nst_helpers $(DEMO_ARGS)

## test: unit tests, then every notebook in quick mode (offline: random weights if ../shared is absent)
test: $(BIN)/.installed
	NST_QUICK=1 NST_WEIGHTS=$${NST_WEIGHTS:-random} MPLBACKEND=Agg \
	  $(BIN)/python -m pytest -q --nbval-lax tests $(wildcard notebooks/*.ipynb)

## test-fast: unit tests without the slow marker
test-fast: $(BIN)/.installed
	MPLBACKEND=Agg $(BIN)/python -m pytest -q -m "not slow" tests

## hooks: strip notebook outputs on every commit (nbstripout as a git filter)
hooks: $(BIN)/.installed
	$(BIN)/nbstripout --install --attributes .gitattributes

## bench: speed table (see README, Performance)
bench: $(BIN)/.installed
	$(BIN)/python -m nst_helpers.bench

clean:
	rm -rf outputs .pytest_cache
