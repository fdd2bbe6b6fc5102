# make demo  - the whole story on a local control plane (does its own set-up)
# make test  - lint, type-check, unit and integration tests (does its own set-up)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Both distributions' pyprojects: a change to either re-installs.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml devtools/pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# Two pytest-xdist workers, each with its own control plane and Prometheus: most of an
# integration test's time is spent waiting on the parts, so two halve the wall time on
# 2 cores. Whole files go to one worker (module fixtures are not started twice).
PYTEST_WORKERS ?= 2

.PHONY: setup system kube-bin test lint contracts typecheck unit integration demo crds bench clean

$(STAMP): pyproject.toml devtools/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	@# flagops-devtools (devtools/: harness, Calendar server, demo) is a second distribution.
	$(VENV)/bin/pip install -q -e '.[operator,relay,calendar,openfeature,dev,bench]' -e ./devtools
	rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP) system kube-bin

system:
	hack/setup-system.sh

kube-bin:
	hack/kube-binaries.sh --with-helm >/dev/null

lint: $(STAMP) contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Import contracts ([tool.importlinter] in pyproject.toml): which package may import which.
contracts: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(STAMP)
	MYPY=$(VENV)/bin/mypy hack/typecheck.sh

crds: $(STAMP)
	$(PY) -m flagops.api.crdgen --write

test: setup contracts lint typecheck js-test web
	@# pytest exits 5 when it collects no tests: not a failure of the build.
	FLAGOPS_KUBE_BIN=$$(hack/kube-binaries.sh --with-helm) $(PY) -m pytest \
	  -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); \
	  rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

demo: setup web
	FLAGOPS_KUBE_BIN=$$(hack/kube-binaries.sh) $(PY) -m flagops_devtools.demo $(if $(KEEP),--keep) $(if $(FAST),--fast)

bench: setup js-bench
	hack/setup-system.sh --bench
	FLAGOPS_KUBE_BIN=$$(hack/kube-binaries.sh) $(PY) -m bench

# The JavaScript SDK (sdks/js, README there): install from the lockfile, compile, node --test.
.PHONY: js-test js-bench
js-test: js-sdk
	cd sdks/js && npm test

# Install from the lockfile and compile once; js-test, web and js-bench all build on it.
.PHONY: js-sdk
js-sdk:
	cd sdks/js && npm ci --no-audit --no-fund && npm run build

# The meal-plan web page (examples/mealplan-web, served by the demo app): npm ci from its
# lockfile, then an esbuild bundle. It bundles @flagops/sdk from sdks/js: built first.
.PHONY: web
web: js-sdk
	cd examples/mealplan-web && npm ci --no-audit --no-fund && npm run build

js-bench: js-sdk
	cd bench/js && npm ci --no-audit --no-fund && node bench.mjs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
