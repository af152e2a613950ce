# The two commands (see README.md): `make run` and `make test`. The work is in scripts/*.sh.
.DEFAULT_GOAL := help
.PHONY: help run test install install-python bench lint

help:
	@echo "make run      install the Python environment, load a demo dataset, serve http://127.0.0.1:8000"
	@echo "make test     install what the tests need, then run every test (PostgreSQL, Redis, Chromium included)"
	@echo "make install  system packages (apt) + .venv, as the test command needs them"
	@echo "make bench    run the benchmarks in benchmarks/"
	@echo "make lint     ruff check + ruff format --check + mypy (engine/, registry/, modeltrain/)"

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

install:
	bash scripts/install.sh

install-python:
	bash scripts/install.sh --python

bench: install-python
	bash scripts/bench.sh

lint: install-python
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy engine registry modeltrain
