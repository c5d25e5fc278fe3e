# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need first (Debian packages as root, the venv, the image).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ISORUN := $(VENV)/bin/isorun
export ISORUN_IMAGES_DIR ?= /var/lib/isorun/images
IMAGE_PACKAGES := python3,python3-venv,procps,curl,ca-certificates,nodejs,git

.PHONY: setup system venv image ts-sdk demo test lint docs

setup: system venv image ts-sdk

system:
	@scripts/install-system-deps

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	@touch $@

image: venv
	@$(ISORUN) image ls --json 2>/dev/null | grep -q '"python:3.12-slim"' || \
	  $(ISORUN) image build python:3.12-slim --tag node:22-slim --include $(IMAGE_PACKAGES)

# The official TypeScript SDK, run unchanged against the runner by tests/compat,
# with the Node.js 22 it needs (from the npm registry's node-<os>-<arch> package).
ts-sdk: .cache/ts-sdk/node_modules/isorun/package.json

.cache/ts-sdk/node_modules/isorun/package.json:
	@command -v npm >/dev/null || { echo "npm is needed for the TypeScript SDK compatibility test: apt-get install npm" >&2; exit 1; }
	mkdir -p .cache/ts-sdk
	cd .cache/ts-sdk && npm install --no-audit --no-fund --silent isorun@1.0.1 \
	  node-$$(uname -s | tr A-Z a-z)-$$(uname -m | sed 's/x86_64/x64/;s/aarch64/arm64/')@22.23.3

demo: setup
	$(PY) examples/quickstart_local.py

lint: venv
	$(VENV)/bin/ruff check src tests scripts examples bench
	$(VENV)/bin/ruff format --check src tests scripts examples bench
	$(VENV)/bin/mypy
	$(PY) scripts/gen_sync.py --check

docs: venv
	$(VENV)/bin/mkdocs build --strict --site-dir site

test: setup lint docs
	$(VENV)/bin/pytest -q
