# Cello's developer commands. `make help` lists them.
# Everything runs inside .venv, created on first use from python3.

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
export VIRTUAL_ENV := $(abspath $(VENV))
export CARGO_TARGET_DIR ?= $(abspath target)

# More interpreters for the abi3 check: the one wheel must import and pass
# the tests on each (tests/test_fast_path.py checks which fast paths each
# takes). Found in pyenv or on PATH (or given as PYTHON_3.12=...); a version
# with no interpreter is skipped.
ABI3_VERSIONS ?= 3.12 3.13
abi3_python = $(or $(PYTHON_$(1)),$(firstword $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python$(1)) $(shell command -v python$(1) 2>/dev/null)))

.PHONY: help run test build build-release test-rust test-python test-abi3 abi3-wheel lint fmt bench conformance autobahn clean chromium h2load

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet --group test
	touch $(STAMP)

build: $(STAMP) ## Build the extension (dev profile) into .venv
	$(BIN)/maturin develop --quiet

build-release: $(STAMP) ## Build the extension (release profile) into .venv
	$(BIN)/maturin develop --quiet --release

run: build-release ## Serve examples/hello.py on http://127.0.0.1:8000
	$(BIN)/python examples/hello.py --env production

test: build chromium h2load test-rust test-python lint test-abi3 ## Set up everything and run every test and check

test-rust: ## Rust unit and integration tests of the core
	cargo test --quiet -p cello-core -p cello-asgi -p cello-py

test-python: build chromium h2load ## pytest: behaviour tests, examples, property tests
	$(BIN)/python -m pytest

test-abi3: $(addprefix test-abi3-,$(ABI3_VERSIONS)) ## Build the abi3 wheel and run the tests with Python 3.12 and 3.13

abi3-wheel: $(STAMP)
	rm -rf target/wheels
	$(BIN)/maturin build --quiet --out target/wheels

test-abi3-%: abi3-wheel
	@if [ -z "$(call abi3_python,$*)" ]; then echo "test-abi3: no Python $* found, skipped"; exit 0; fi; \
	set -ex; \
	rm -rf target/venv$* target/abi3-tests-$*; \
	$(call abi3_python,$*) -m venv target/venv$*; \
	target/venv$*/bin/python -m pip install --quiet --upgrade "pip>=25.1"; \
	target/venv$*/bin/python -m pip install --quiet target/wheels/*.whl; \
	target/venv$*/bin/python -m pip install --quiet --group test; \
	mkdir -p target/abi3-tests-$* && cp -r tests examples conformance benchmarks tools pyproject.toml target/abi3-tests-$*/; \
	cd target/abi3-tests-$* && ../venv$*/bin/python -m pytest -q -p no:cacheprovider

lint: $(STAMP) ## rustfmt, clippy (-D warnings), ruff, stubtest and the import-cycle check
	cargo fmt --all --check
	cargo clippy --quiet --workspace --all-targets -- -D warnings
	$(BIN)/ruff check python tests examples benchmarks conformance tools
	$(BIN)/ruff format --check python tests examples benchmarks conformance tools
	$(BIN)/python -m mypy.stubtest cello._cello
	$(BIN)/python tools/cycles.py

fmt: $(STAMP) ## Format Rust and Python sources
	cargo fmt --all
	$(BIN)/ruff format python tests examples benchmarks conformance tools
	$(BIN)/ruff check --fix python tests examples benchmarks conformance tools

conformance: build ## Corpus and fuzzer through every door, with a per-door summary
	$(BIN)/python -m conformance

bench: build-release ## Run the side-by-side benchmark and write docs/benchmarks.md
	bash benchmarks/run.sh

# The OpenAPI tests open /docs and /redoc in a headless browser: Debian's
# chromium. Without apt (or root) this says so and carries on; the browser
# tests then fail with that message under CI=true and are skipped elsewhere.
chromium: ## Install Debian's chromium for the /docs browser tests, if missing
	@if command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "make chromium: apt-get is unavailable or not root; install Debian's chromium by hand for tests/test_openapi.py's browser tests"; \
	fi

# The HTTP/2 tests and benchmark rows load the server with h2load: Debian's
# nghttp2-client. Without apt (or root) this says so; the h2load test is
# then skipped and the benchmark leaves its HTTP/2 rows out.
h2load: ## Install Debian's nghttp2-client (h2load) for the HTTP/2 tests, if missing
	@if command -v h2load >/dev/null 2>&1; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client; \
	else \
		echo "make h2load: apt-get is unavailable or not root; install Debian's nghttp2-client by hand for tests/test_tls.py's h2load test"; \
	fi

# Not part of `make test`: the full case set takes several minutes per server.
autobahn: build ## Autobahn|Testsuite fuzzing client against the WebSocket echo endpoints
	bash benchmarks/autobahn/run.sh

clean: ## Remove build outputs and the virtualenv
	rm -rf $(VENV) target .pytest_cache .hypothesis
