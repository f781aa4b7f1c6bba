# MissionLink — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FUZZ_EXAMPLES ?= 300
FUZZ_STEPS    ?= 20
FUZZ_SEED     ?= 20250801
CHAOS_SEEDS   ?= 1,2,3,4,5,6,7,8,9,10
CHAOS_SECONDS ?= 15
CHAOS_SCENARIOS ?= all
MODEL_EXAMPLES ?= 250
MODEL_STEPS    ?= 50
#: pytest-xdist workers for `make test`: 2 hands whole files to two workers (cluster, chaos and
#: container files one at a time); 0 runs everything in one process.
TEST_WORKERS   ?= 2

.DEFAULT_GOAL := help
.PHONY: help install run test fuzz lint typecheck check migrate worker reconcile bench bench-short bench-reads infra-check k8s-check image-check image image-run monitoring-check cluster chaos model browsers clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

run: $(STAMP) ## start the service on the embedded default (SQLite, in-process worker, mail to files)
	$(BIN)/missionlink serve --host 127.0.0.1 --port 8000

test: $(STAMP) ## run the test suite (in two processes; TEST_WORKERS=0: in one; PostgreSQL tests run when MISSIONLINK_TEST_POSTGRES_URL is set)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25

fuzz: $(STAMP) ## schemathesis at length against a real server (FUZZ_EXAMPLES, FUZZ_SEED; PostgreSQL too when MISSIONLINK_TEST_POSTGRES_URL is set)
	MISSIONLINK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) MISSIONLINK_FUZZ_STEPS=$(FUZZ_STEPS) \
	MISSIONLINK_FUZZ_SEED=$(FUZZ_SEED) $(BIN)/pytest -q -p no:cacheprovider tests/fuzz

lint: $(STAMP) ## ruff on src and tests, and the import contracts of pyproject.toml (lint-imports)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP) ## mypy --strict on src
	$(BIN)/mypy src

check: lint typecheck test ## everything CI checks about the Python code

migrate: $(STAMP) ## upgrade both databases
	$(BIN)/missionlink migrate

worker: $(STAMP) ## run the outbox worker alone
	$(BIN)/missionlink worker

reconcile: $(STAMP) ## check the ledger invariants
	$(BIN)/missionlink reconcile

bench: $(STAMP) ## every benchmark in bench/, full length, each against its same-run limit (needs MISSIONLINK_BENCH_POSTGRES_URL, MISSIONLINK_BENCH_REDIS_URL)
	$(BIN)/python bench/all.py

bench-short: $(STAMP) ## every benchmark in its short mode, about 70 s in all (what CI runs; same variables)
	$(BIN)/python bench/all.py --short

bench-reads: $(STAMP) ## GET mission vs bare Starlette under wrk, same run (PostgreSQL too with MISSIONLINK_BENCH_POSTGRES_URL); ARGS=--short for ~20 s
	$(BIN)/python bench/reads.py $(ARGS)

image-run: ## build the image with podman (on a Debian-made base where no registry is reachable) and run it read-only: migrate, serve, worker on this machine's PostgreSQL and Redis, a mission settled over HTTP, reconcile
	bash deploy/docker/run-check.sh

monitoring-check: $(STAMP) ## promtool/amtool checks and alert unit tests of deploy/monitoring, dashboards and alerts against the exported metrics
	bash deploy/monitoring/check.sh

chaos: $(STAMP) ## every fault scenario (tests/chaos; CHAOS_SCENARIOS=name,name for some) over CHAOS_SEEDS, CHAOS_SECONDS of load each; writes docs/reliability.md (needs nginx, PostgreSQL's binaries, redis-server)
	rm -f var/chaos.jsonl && mkdir -p var
	CI=true MISSIONLINK_CHAOS_SCENARIOS=$(CHAOS_SCENARIOS) MISSIONLINK_CHAOS_SEEDS=$(CHAOS_SEEDS) MISSIONLINK_CHAOS_SECONDS=$(CHAOS_SECONDS) \
	MISSIONLINK_CHAOS_REPORT=var/chaos.jsonl $(BIN)/pytest -q -p no:cacheprovider tests/chaos/test_faults.py; \
	status=$$?; $(BIN)/python -m tests.chaos.report var/chaos.jsonl docs/reliability.md $(CHAOS_SECONDS) && exit $$status

browsers: $(STAMP) ## every browser test at both sizes in both languages (make test sees Korean on a phone and English on a desktop)
	MISSIONLINK_BROWSER_MATRIX=full $(BIN)/pytest -q -p no:cacheprovider tests/e2e -k browser

model: $(STAMP) ## the Hypothesis model of missions, pledges, bets and wallets at length (>= 10,000 steps; PostgreSQL too when MISSIONLINK_TEST_POSTGRES_URL is set)
	MISSIONLINK_MODEL_RANDOM=1 MISSIONLINK_MODEL_EXAMPLES=$(MODEL_EXAMPLES) MISSIONLINK_MODEL_STEPS=$(MODEL_STEPS) \
	$(BIN)/pytest -q -s -p no:cacheprovider tests/chaos/test_model.py

cluster: $(STAMP) ## 2 API processes behind nginx and 2 workers on this machine's PostgreSQL and Redis (ARGS=--drop drops the databases on exit)
	$(BIN)/python deploy/local/cluster.py $(ARGS)

infra-check: ## synthesize the AWS stacks offline and run the pitfall guards, cfn-lint, checkov
	bash deploy/aws/check.sh

k8s-check: ## render the Kubernetes overlays, validate them offline (kubernetes-validate --strict) and run their pitfall guards
	bash deploy/k8s/check.sh

image-check: ## lint the Dockerfile (hadolint) and compose.yaml (Compose spec schema) offline, run their pitfall guards
	bash deploy/docker/check.sh

image: ## build the image with podman, tagged with the git SHA (BASE_IMAGE=<local base> where no registry is reachable)
	bash deploy/docker/build.sh

clean: ## remove the venv, caches and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .cache
