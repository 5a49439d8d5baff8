# tvmx: `make demo` and `make test` set everything up on a fresh Debian 12 (as root) and run.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
TVMX := $(VENV)/bin/tvmx
APT_PACKAGES := clang lld llvm binutils-riscv64-unknown-elf gcc-riscv64-unknown-elf \
                picolibc-riscv64-unknown-elf device-tree-compiler g++ python3-venv chromium
DEMO_DIR := build/demo

.PHONY: setup apt venv demo test lint bench bench-tune clean fuzz coverage

setup: apt venv

# The cross toolchain, picolibc, dtc (for Spike) and g++ (for accelerator models), from Debian.
apt:
	@if dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -qv 'install ok installed' \
	    || [ $$(dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | wc -l) -ne $(words $(APT_PACKAGES)) ]; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(PY) -m tvmx.samples cnn -o $(DEMO_DIR)/cnn.onnx
	$(TVMX) doctor
	$(TVMX) compile $(DEMO_DIR)/cnn.onnx --target rv64gc -o $(DEMO_DIR)/cnn-rv64gc -v
	$(TVMX) run $(DEMO_DIR)/cnn-rv64gc --seed 1
	$(TVMX) verify $(DEMO_DIR)/cnn.onnx --target rv64gc -o $(DEMO_DIR)/cnn-rv64gc --seed 1
	$(TVMX) quantize $(DEMO_DIR)/cnn.onnx -o $(DEMO_DIR)/cnn.int8.onnx --random-calibration 16
	$(TVMX) verify $(DEMO_DIR)/cnn.int8.onnx --target gemmini -o $(DEMO_DIR)/cnn.int8-gemmini --seed 1 -v

test: setup
	$(VENV)/bin/pytest -q

# Long, randomized fuzzing of the ONNX, target and .npz readers (`make test` runs a short, fixed set):
# TVMX_FUZZ_EXAMPLES examples per fuzz test (default 5000)
fuzz: setup
	TVMX_FUZZ_EXAMPLES=$${TVMX_FUZZ_EXAMPLES:-5000} TVMX_FUZZ_RANDOM=1 $(VENV)/bin/pytest -q -s tests/test_fuzz.py

lint: setup
	$(VENV)/bin/ruff check tvmx tests benchmarks
	$(VENV)/bin/mypy tvmx

bench: setup
	$(PY) benchmarks/compile_time.py
	$(PY) benchmarks/gemmini_matmul.py
	$(PY) benchmarks/gemmini_models.py

# every ONNX op TVM's importer knows, one small model each, on rv64gc vs onnxruntime -> docs/onnx_coverage.md
coverage: setup
	$(PY) benchmarks/coverage.py -o docs/onnx_coverage.md

# tvmx tune on the int8 layers of a ResNet-style CNN on gemmini: per layer and whole model, local and Dask
bench-tune: setup
	$(PY) benchmarks/tune.py

clean:
	rm -rf build
