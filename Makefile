# 山海集 — the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run setup db fonts test lint audit translations update-translations browser-deps bench clean

## Virtualenv with the pinned packages; rebuilt when the requirements change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

translations: $(VENV)/.installed
	$(BIN)/pybabel compile -d app/translations

setup: $(VENV)/.installed translations

## Schema from the migrations, then the demo catalog and accounts (only what is missing).
db: setup
	$(FLASK) db upgrade
	$(FLASK) seed-demo

## A Chinese font for PDF invoices (Debian's fonts-noto-cjk), installed when missing and root;
## otherwise a note: the app still runs, and the invoice PDF answers 503 saying what to install.
fonts:
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk; \
		else echo "Note: no Chinese font found; PDF invoices need fonts-noto-cjk (or PDF_FONT_PATH)."; fi; }

run: db fonts
	@echo "Serving 山海集 on http://$(HOST):$(PORT)  (Ctrl-C stops it)"
	$(FLASK) run --host $(HOST) --port $(PORT)

## The whole suite on SQLite; again on PostgreSQL when TEST_DATABASE_URL is set.
test: setup
	TEST_DATABASE_URL= $(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== The suite again on PostgreSQL ($$TEST_DATABASE_URL), browser tests excluded"; \
		$(BIN)/python -m pytest -m "not browser" $(PYTEST_ARGS); \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests tools config.py wsgi.py bench

## Known vulnerabilities in the pinned runtime and dev requirements, and what they pull in
## (PyPI's advisory data). --strict: a package that cannot be checked fails the audit, so an
## unreachable PyPI is never reported as "no known vulnerabilities".
audit: $(VENV)/.installed
	$(BIN)/pip-audit --strict --progress-spinner off -r requirements.txt -r requirements-dev.txt

## Re-extract the interface strings; then translate the new ones in the .po file.
update-translations: setup
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -o app/translations/messages.pot .
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations --no-fuzzy-matching

## Debian's chromium and CJK fonts for the browser tests (needs root).
browser-deps:
	command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk)

bench: setup
	$(BIN)/python bench/catalog.py

clean:
	rm -rf $(VENV) instance .pytest_cache test-artifacts
