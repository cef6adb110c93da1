# The two commands of the README: `make demo` and `make check`.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ROOT ?= demo-data
PORT ?= 8815

.PHONY: venv demo check lint typecheck test bench

venv:
	@bash scripts/venv.sh

demo: venv
	$(PY) -m zcollection.demo $(DEMO_ROOT)/altimetry
	$(VENV)/bin/zcollection inspect $(DEMO_ROOT)/altimetry
	$(VENV)/bin/zcollection-server --root $(DEMO_ROOT) --host 127.0.0.1 --port $(PORT)

lint: venv
	$(VENV)/bin/ruff check engine proto server client tests $(wildcard benchmarks)
	$(VENV)/bin/ruff format --check engine proto server client tests $(wildcard benchmarks)

typecheck: venv
	$(VENV)/bin/mypy

test: venv
	$(PY) -m pytest -q

check: lint typecheck test

# Benchmarks (BENCHMARKS.md): `make bench`, or `make bench BENCH_ARGS="--full"` for the issue's sizes.
bench: venv
	$(PY) -m benchmarks $(BENCH_ARGS)
