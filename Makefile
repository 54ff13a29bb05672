# Every target creates .venv and installs into it when needed (fresh machine, fresh clone).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench contract crash-stress clean browser postgres gpu-wheels

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,examples]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m nasctl.demo

# One pytest run. Its Ray group (tests/test_ray_netns.py, ~1 min) runs a real Ray cluster inside a
# network namespace: it needs root (or user namespaces) and fails without; NASCTL_SKIP_RAY=1 skips it.
test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -q

# The dashboard's browser tests drive Debian's Chromium through Playwright (which never downloads a
# browser here); install it when missing. Without it those tests skip, unless NASCTL_REQUIRE_BROWSER=1.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get

browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the dashboard's browser tests"; \
	  $(APT) install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $(APT) update -q >/dev/null && $(APT) install -y -q --no-install-recommends chromium >/dev/null; } || \
	  echo "warning: could not install chromium: the browser tests will be skipped"; }

# The store's tests run on SQLite and on a throwaway PostgreSQL server that they start themselves
# (tests/postgres.py): install Debian's postgresql when missing. Without it those tests skip,
# unless NASCTL_REQUIRE_POSTGRES=1. Only its binaries are used (not a cluster apt may set up).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "installing Debian's postgresql for the store's tests"; \
	  $(APT) install -y -q --no-install-recommends postgresql >/dev/null 2>&1 || \
	  { $(APT) update -q >/dev/null && $(APT) install -y -q --no-install-recommends postgresql >/dev/null; } || \
	  echo "warning: could not install postgresql: the PostgreSQL tests will be skipped"; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# The REST API's OpenAPI contract at length: schemathesis --checks all, every phase, 500 examples per
# operation against a live daemon (about 11,000 requests, 3 minutes; `make test` runs it small).
contract: $(STAMP)
	NASCTL_CONTRACT_EXAMPLES=500 $(BIN)/python -m pytest -q -s tests/reliability/test_openapi_contract.py

# ROUNDS rounds of 1-3 SIGKILLs of the daemon (random and aimed moments), each checking that every trial ran
# exactly once, every result was stored and heard once, and nothing was left running (issue 20).
# About 10 s a round on two cores; exits 1 naming each problem. `make crash-stress ROUNDS=30`.
ROUNDS ?= 200
crash-stress: $(STAMP)
	$(BIN)/python bench/crash_stress.py --rounds $(ROUNDS)

# Wheels for bench/gpu_check.sh on a GPU machine without network (Python 3.12; see README).
gpu-wheels: $(STAMP)
	bash bench/gpu_wheels.sh

clean:
	rm -rf $(VENV) build *.egg-info
