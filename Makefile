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
LINTED     = nst_helpers tests benchmarks notebooks tools
# test-widgets7: Colab preinstalls ipywidgets 7.7 (7.7.1 today); the widget tests run under it too.
IPYWIDGETS7 ?= 7.7.1
VENV7        = $(VENV)/widgets7
WIDGET_TESTS = tests/test_uploads.py tests/test_widget_parts.py tests/test_widgets.py tests/test_replay_widget.py

.PHONY: demo test test-fast test-browser test-widgets7 lint format hooks bench set-repo-url clean

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

## test-widgets7: the widget tests under ipywidgets $(IPYWIDGETS7), the version Colab preinstalls
test-widgets7: $(VENV7)/.installed
	$(VENV7)/bin/python -c "import ipywidgets; print('ipywidgets', ipywidgets.__version__)"
	$(VENV7)/bin/python -m pytest -q -p no:cacheprovider -W 'ignore:The `ipykernel.comm.Comm` class:DeprecationWarning' $(WIDGET_TESTS)

# A small venv inside .venv: ipywidgets 7.7 and its own dependencies, over .venv's packages (torch is
# not installed twice: a .pth file adds .venv's site-packages after the venv's own, so 7.7 wins).
$(VENV7)/.installed: $(BIN)/.installed
	$(BIN)/python -m venv --clear $(VENV7)
	$(BIN)/python -c 'import sysconfig; print("import site; site.addsitedir(%r)" % sysconfig.get_paths()["purelib"])' \
	  > "$$($(VENV7)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nst_main_venv.pth"
	$(VENV7)/bin/python -m pip install --quiet "ipywidgets==$(IPYWIDGETS7)"
	$(VENV7)/bin/python -c "import ipywidgets, torch; assert ipywidgets.__version__ == '$(IPYWIDGETS7)', ipywidgets.__version__"
	touch $@

## lint: ruff (lint + format check) over code, tests, benchmarks, notebooks and tools; mypy over the package
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

## set-repo-url: move the project to another GitHub repository: make set-repo-url URL=https://github.com/OWNER/NAME
set-repo-url: $(BIN)/.installed
	$(BIN)/python tools/set_repo_url.py "$(URL)"

## bench: speed table (see README, Performance, and benchmarks/README.md)
bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench.py

## gpu-check: on a CUDA machine, < 5 min: s/step per precision, TFLOP/s, syncs, preview, memory -> outputs/gpu_check.json
.PHONY: gpu-check
gpu-check: $(BIN)/.installed
	$(BIN)/python benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf outputs .pytest_cache
