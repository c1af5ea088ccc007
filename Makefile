# Developer entry points. Each target creates the virtual environment it needs (.venv) and
# installs the package into it, so both work on a fresh clone:
#
#   make demo   train, convert, validate and time the language-ID GRU (edgegru demo)
#   make test   the whole test suite (Python, C unit tests plain and with sanitizers, Cortex-M4
#               build and QEMU run) with the fastest kernels, then the Python runtime's tests
#               again with the reference kernels (EDGEGRU_KERNELS=ref)
#   make lint   ruff (Python) and clang-format (C) checks
#
# The C runtime alone: see ext/Makefile (make -C ext check).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

SOURCES := pyproject.toml setup.py $(wildcard src/edgegru/*.py src/edgegru/*.pyx src/edgegru/*.pxd) \
           $(shell find ext/include ext/src -name '*.[ch]')

.PHONY: demo test lint system-deps clean

demo: $(VENV)/.installed-demo
	$(VENV)/bin/edgegru demo

# The second pass, with the scalar reference kernels: the tests of the Python runtime itself
# (predict, streams, plans, pickling, bad input, int16x8, graphs). The C suites test every kernel
# set against the reference already, and the conversion, ONNX and firmware tests do not depend on
# the host kernels.
REF_TESTS := test_runtime test_stream test_low_memory test_kernels test_pickle test_nonfinite \
             test_hostile_files test_quantize test_int16x8_runtime test_int16x8_stream \
             test_graph_runtime test_graph_stream

test: $(VENV)/.installed-dev system-deps
	$(PY) -m pytest
	EDGEGRU_KERNELS=ref $(PY) -m pytest $(REF_TESTS:%=tests/%.py)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests tools benchmarks examples
	$(VENV)/bin/ruff format --check src tests tools benchmarks examples
	clang-format --dry-run --Werror $$(find ext -name '*.[ch]' -not -path '*/build/*')

system-deps:
	sh tools/install-system-deps.sh

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-%: $(PY) $(SOURCES)
	$(PY) -m pip install -q ".[$*]"
	if [ "$*" = dev ]; then $(PY) -m pip install -q --no-deps --ignore-requires-python aeon==1.6.0; fi
	touch $@

clean:
	rm -rf build $(VENV) ext/build src/edgegru/*.so src/edgegru/_runtime.c
