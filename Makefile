# The front door. `make run` and `make test` work on a fresh clone with Python >= 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PROTOS := $(shell find protos -name '*.proto')
GEN    := shop/order/v1/order_pb2.py
# The offline checkers of deploy/kubernetes/, in a venv of their own (deploy/tools/requirements.txt).
TOOLS       := .venv-deploy-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp
TOOLS_REQS  := deploy/tools/requirements.txt
TOOLS_LOCK  := deploy/tools/requirements.lock

.PHONY: run test test-fast lint fmt proto bench bench-quick soak trace clean lock install reset-data deploy-tools deploy-tools-lock certs api-baseline

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	touch $@

proto: $(GEN)

deploy-tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): $(TOOLS_REQS) $(TOOLS_LOCK)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade pip==25.3
	$(TOOLS)/bin/python -m pip install -q -c $(TOOLS_LOCK) -r $(TOOLS_REQS)
	touch $@

# Refresh the exact versions of the tools' dependencies (after changing $(TOOLS_REQS)).
deploy-tools-lock:
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade pip==25.3
	$(TOOLS)/bin/python -m pip install -q -r $(TOOLS_REQS)
	{ echo '# Every package of the deploy-tools venv at its exact version (`make deploy-tools-lock`).'; \
	  $(TOOLS)/bin/python -m pip freeze | sort -f; } > $(TOOLS_LOCK)
	touch $(TOOLS_STAMP)

$(GEN): $(STAMP) $(PROTOS) scripts/gen_protos.py
	$(BIN)/python scripts/gen_protos.py
	touch $@

run: proto
	$(BIN)/python -m scripts.run

# A development CA and certificates for mTLS between the services (common/devcerts.py), into
# data/certs/; made afresh each time (the CA's key is never written, so it cannot sign more).
certs: $(STAMP)
	$(BIN)/python -m common.devcerts data/certs

test: proto deploy-tools
	$(BIN)/python -m pytest --durations=10 $(PYTEST_ARGS)

lint: proto
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/buf lint

# The gRPC API as released, which `buf breaking` (in make test) holds protos/ to (buf.yaml). Run it
# only to release a change that breaks clients on purpose, and commit the new baseline alone.
api-baseline: $(STAMP)
	$(BIN)/buf build --exclude-source-info -o protos/baseline.binpb

fmt: $(STAMP)
	$(BIN)/ruff check --fix .

bench: proto
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: proto
	$(BIN)/python -m bench --quick

# The PostgreSQL set-up (two replicas of each service) under a steady mixed load for SOAK_SECONDS;
# memory, open files, connections and event loop lag sampled; bench/results/soak.{json,md,png}.
SOAK_SECONDS ?= 600
soak: proto
	$(BIN)/python -m bench.soak --seconds $(SOAK_SECONDS)

# One order on a throw-away stack, its trace printed as a tree of the three processes' spans.
trace: proto
	$(BIN)/python -m bench.trace

# Refresh the exact versions of everything installed (after changing pyproject.toml).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

# Empty both databases of `make run` (the SQLite files in ./data/); stop `make run` first.
reset-data:
	rm -rf data

clean: reset-data
	rm -rf $(VENV) $(TOOLS) shop .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
