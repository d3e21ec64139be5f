# Jauge: `make run` (everything, embedded defaults) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT
# Development defaults for `make run` only (tests set their own): a local development run on plain
# http://127.0.0.1 (DEBUG: development secrets, cookies without Secure) with the sandbox test checkout.
run: export DEBUG ?= true
run: export JAUGE_SANDBOX ?= true
run: export GENERIC_WEBHOOK_SECRET ?= jauge-dev-secret
# The sandbox checkout posts its signed webhook back to this server.
run: export PUBLIC_URL ?= http://127.0.0.1:$(PORT)

.PHONY: run test lint bench install clean i18n i18n-check

$(VENV)/installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/installed

run: $(VENV)/installed
	mkdir -p $${JAUGE_VAR_DIR:-var}/broker/queue $${JAUGE_VAR_DIR:-var}/broker/control
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  Jauge is starting: web + Celery worker + beat (Ctrl-C stops all)."
	@echo "  Donation page    http://127.0.0.1:$(PORT)/c/mai-juin-2023/"
	@echo "  Progress JSON    http://127.0.0.1:$(PORT)/api/campaigns/mai-juin-2023/progress.json"
	@echo "  Health           http://127.0.0.1:$(PORT)/healthz"
	@echo "  Admin            http://127.0.0.1:$(PORT)/admin/  (python manage.py createsuperuser)"
	@echo "  Test webhook     $(PY) scripts/send_webhook.py --url http://127.0.0.1:$(PORT) --amount 25"
	@echo
	exec $(VENV)/bin/honcho -f Procfile start

test: $(VENV)/installed
	$(PY) -m pytest $(PYTEST_ARGS)

# Style (ruff) and the layering contracts of pyproject.toml (import-linter).
lint: $(VENV)/installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# English catalogues: compile them after editing a locale/<area>/en/LC_MESSAGES/django.po (the .mo are committed),
# and check that every string extracted afresh has a reviewed translation (CI runs the same check as a test).
i18n: $(VENV)/installed
	DEBUG=true $(PY) manage.py compilemessages --ignore .venv --ignore var -v0

i18n-check: $(VENV)/installed
	$(PY) scripts/i18n_check.py

bench: $(VENV)/installed
	$(PY) bench/run_all.py

clean:
	rm -rf var staticfiles .pytest_cache
