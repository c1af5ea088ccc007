# Developer entry points. Each target creates the virtual environment it needs (.venv) and
# installs the package into it, so both work on a fresh clone:
#
#   make demo   train, convert, validate and time the language-ID GRU (edgegru demo)
#   make test   the whole test suite (Python, C unit tests plain and with sanitizers, Cortex-M4
#               build and QEMU run) with the fastest kernels, then again with the reference
#               kernels (EDGEGRU_KERNELS=ref) the tests that run the host Python runtime
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

# Tests that never read EDGEGRU_KERNELS (C programs, firmware on QEMU, the fuzzer, style): the
# second pass leaves them out; the C suites test every kernel set against the reference already.
KERNEL_FREE_TESTS := test_aarch64 test_c_suite test_cortex_m test_cortex_m_kernels \
                     test_firmware_config test_firmware_symbols test_int16x8_firmware test_riscv \
                     test_fuzz test_style

test: $(VENV)/.installed-dev system-deps
	$(PY) -m pytest
	EDGEGRU_KERNELS=ref $(PY) -m pytest $(KERNEL_FREE_TESTS:%=--ignore=tests/%.py)

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
