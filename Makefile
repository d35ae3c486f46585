PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test check lint typecheck format bench bench-scale clean migration

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## Start the server on SQLite with the carrier simulator.
run: $(STAMP) .signalpost-api-key
	SIGNALPOST_API_KEY=$${SIGNALPOST_API_KEY:-$$(cat .signalpost-api-key)} $(BIN)/signalpost serve

.signalpost-api-key:
	$(PYTHON) -c "import secrets; print('KEY' + secrets.token_urlsafe(30))" > $@

## Lint, type-check and run the whole test suite.
test: $(TEST_STAMP) check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: lint typecheck

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(TEST_STAMP)
	$(BIN)/python bench/send_throughput.py $(BENCH_ARGS)

bench-scale: $(TEST_STAMP)
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) signalpost.db signalpost.db-wal signalpost.db-shm .pytest_cache .mypy_cache .ruff_cache

## Regenerate the (not yet released) initial migration from models.py.
migration: $(TEST_STAMP)
	rm -f src/signalpost/migrations/versions/0001_initial_schema.py /tmp/signalpost-migration.db
	printf '[alembic]\nscript_location = signalpost:migrations\nsqlalchemy.url = sqlite:////tmp/signalpost-migration.db\n' > /tmp/signalpost-alembic.ini
	$(BIN)/alembic -c /tmp/signalpost-alembic.ini revision --autogenerate -m "initial schema" --rev-id 0001
	$(BIN)/ruff format src/signalpost/migrations
	$(BIN)/ruff check --fix --quiet src/signalpost/migrations || true
