# Two commands do all the set-up on a fresh machine:
#   make run   virtualenv, runtime packages, migrate, demo data, then serve on 127.0.0.1:$(PORT)
#   make test  the same set-up plus the development tools, then the whole test suite
# Serving installs requirements.txt only; test, lint and check add requirements-dev.txt.
# SQLite under var/ by default; PostgreSQL when DATABASE_URL is set.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
# One stamp per set of requirements, named by its checksum: editing a file reinstalls.
STAMP := $(VENV)/.installed-run-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.installed-dev-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install install-dev migrate demo run test lint format check clean vendor-charts \
	pgbouncer-check replica-check scale-bench

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-run-*
	@touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-dev-*
	@touch $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput -v0

demo: migrate
	$(BIN)/python manage.py seed_demo

run: demo
	$(BIN)/python manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  Exante Metrics on http://$(HOST):$(PORT)"
	@echo "  API docs:  http://$(HOST):$(PORT)/api/docs  (Redoc: /api/redoc, schema: /api/schema)"
	@echo "  Admin:     http://$(HOST):$(PORT)/admin/"
	@echo "  Probes:    http://$(HOST):$(PORT)/healthz (process up), /readyz (database reachable)"
	@echo "  Log in with a demo account printed above; README.md walks through a first value."
	@echo "  Stop with Ctrl-C."
	@echo ""
	PORT=$(PORT) HOST=$(HOST) $(BIN)/gunicorn -c exante/gunicorn.conf.py exante.wsgi

test: install-dev demo
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: install
	DJANGO_SETTINGS_MODULE=exante.settings.production SECRET_KEY=check-deploy-$$(date +%s)-not-a-real-key-0123456789abcdefghijklmnop \
	  ALLOWED_HOSTS=metrics.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

# Refreshes the vendored chart library (uPlot, pinned in the script) from the npm registry.
vendor-charts:
	bash .ci/vendor-charts

# The service through PgBouncer (transaction pooling) and on a streaming replica; each
# needs PostgreSQL on 127.0.0.1:5432 and starts, then stops, what else it needs (docs/scale.md).
pgbouncer-check: install-dev
	bash bench/pgbouncer_check.sh

replica-check: install-dev
	bash bench/replica_check.sh

# The cost of the entity-scoped requests on 1,000,000 and on 10,000,000 values (docs/scale.md);
# needs PostgreSQL on 127.0.0.1:5432, makes and drops its own databases, waits for the shared
# benchmark lock; about 6 minutes.
scale-bench: install
	flock /tmp/exante-bench.lock $(BIN)/python bench/scale_bench.py

clean:
	rm -rf $(VENV) var
