# Two commands for a newcomer: `make run` starts the ledger on the embedded SQLite default,
# `make test` passes the tests. Each bootstraps what it needs from python3.11, pip and the lock.
PYTHON ?= python3.11
VENV := .venv
UV := .tools/bin/uv
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: run demo test lint proto proto-check bench bench-verify bench-itsm failover validate-deploy clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --extra dev
	touch $@

run: $(VENV)/.synced  ## the gRPC ledger on sqlite:///./var/ledger.sqlite, port 50051
	$(VENV)/bin/ledger serve

demo: $(VENV)/.synced  ## an L1 -> L2 warm handoff, an L3 swarm, a pause and a resolution
	$(VENV)/bin/ledger demo

test: $(VENV)/.synced  ## unit, integration (SQLite and PostgreSQL) and end-to-end tests
	$(VENV)/bin/pytest

lint: $(VENV)/.synced proto-check  ## ruff, mypy --strict, buf lint, generated code up to date, deploy/ valid
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy services
	$(VENV)/bin/buf lint
	$(VENV)/bin/python scripts/validate_deploy.py

validate-deploy: $(VENV)/.synced  ## compose and Kubernetes manifests against the schemas in deploy/schemas/
	$(VENV)/bin/python scripts/validate_deploy.py

bench: $(VENV)/.synced  ## benchmarks on PostgreSQL (LEDGER_BENCH_DATABASE_URL); tables + bench/results/*.json
	$(VENV)/bin/python -m bench.write_bench $(BENCH_ARGS)
	$(VENV)/bin/python -m bench.projector_bench $(BENCH_ARGS)

bench-verify: $(VENV)/.synced  ## `ledger verify` over 1M events on PostgreSQL vs a raw read of the same rows
	$(VENV)/bin/python -m bench.verify_bench $(VERIFY_ARGS)

bench-itsm: $(VENV)/.synced  ## the four real ITSM logs on PostgreSQL (ITSM_DATA=folder of the logs); figures + times vs pm4py
	$(UV) sync --frozen --python $(PYTHON) --extra dev --extra pm4py
	$(VENV)/bin/python -m bench.itsm_bench --data "$(or $(ITSM_DATA),$(LEDGER_ITSM_DATA))" $(BENCH_ARGS)

failover: $(VENV)/.synced  ## PostgreSQL failover under load (part of make test): prints the window and counts
	$(VENV)/bin/pytest tests/integration/test_failover.py -q -s

proto: $(VENV)/.synced  ## regenerate ownership/ from proto/
	$(VENV)/bin/python scripts/generate_protos.py

proto-check: $(VENV)/.synced
	rm -rf .proto-check && $(VENV)/bin/python scripts/generate_protos.py .proto-check
	diff -r --exclude=__pycache__ .proto-check/ownership ownership \
		|| (echo "generated code under ownership/ is stale: run 'make proto'" && exit 1)
	rm -rf .proto-check

clean:
	rm -rf $(VENV) .tools var .proto-check
