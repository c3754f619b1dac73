# Two commands do all the set-up on a fresh machine:
#   make run   virtualenv, install, migrate, demo data, then serve on 127.0.0.1:$(PORT)
#   make test  the same set-up, then the whole test suite
# SQLite under var/ by default; PostgreSQL when DATABASE_URL is set.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: install migrate demo run test lint format check bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

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
	@echo "  Log in with a demo account printed above, e.g.:"
	@echo "    curl -s -X POST http://$(HOST):$(PORT)/api/auth/token -H 'Content-Type: application/json' \\"
	@echo "      -d '{\"email\": \"editor@demo.exante.test\", \"password\": \"demo-editor-pass\"}'"
	@echo ""
	PORT=$(PORT) HOST=$(HOST) $(BIN)/gunicorn -c exante/gunicorn.conf.py exante.wsgi

test: demo
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: install
	DJANGO_SETTINGS_MODULE=exante.settings.production SECRET_KEY=check-deploy-$$(date +%s)-not-a-real-key-0123456789abcdefghijklmnop \
	  ALLOWED_HOSTS=metrics.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

clean:
	rm -rf $(VENV) var
