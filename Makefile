# The commands a newcomer types. Each sets up .venv from requirements.txt first (once, and again when it changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
# The suite in parallel processes (pytest-xdist), a test file per process at a time: every process starts its own
# servers on free ports; 0.65x the serial time on 2 cores (docs/benchmarks.md). PARALLEL= runs it serially.
PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: setup system-packages plan plan-json test lint bench local local-down rds-ca-pin clean

$(VENV)/.installed: requirements.txt app/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

plan: setup  ## offline plan of a stack: make plan STACK=prod
	$(PY) -m infra.plan --stack $(STACK)

plan-json: setup
	$(PY) -m infra.plan --stack $(STACK) --json

system-packages:  ## PostgreSQL 15, Redis (and wrk for bench) from Debian, when missing
	bash deploy/install-system-packages.sh

test: setup system-packages  ## lint and the whole test suite (starts a Docker engine for the image tests if none runs)
	bash deploy/docker-engine.sh start
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PARALLEL)

lint: setup
	$(VENV)/bin/ruff check .

bench: setup  ## speed targets, measured (not timed tests); results go to docs/benchmarks.md by hand
	bash deploy/install-system-packages.sh --bench
	PARALLEL="$(PARALLEL)" $(PY) -m bench.infra
	$(PY) -m bench.app
	$(PY) -m bench.topology
	$(PY) -m bench.backups

local: setup system-packages  ## the self-hosted topology on this machine (nginx, 2 Gunicorn, PostgreSQL + replica, Redis)
	$(PY) -m deploy.local.run up

local-down:  ## stop a `make local` running in another shell
	$(PY) -m deploy.local.run down

rds-ca-pin: setup  ## pin AWS's current RDS certificate bundle in app/Dockerfile (needs internet); review the diff
	$(PY) app/rds_ca_bundle.py pin

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
