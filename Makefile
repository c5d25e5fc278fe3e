# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need first (Debian packages as root, the venv, the image).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
ISORUN := $(VENV)/bin/isorun
export ISORUN_IMAGES_DIR ?= /var/lib/isorun/images
IMAGE_PACKAGES := python3,python3-venv,procps,curl,ca-certificates,nodejs,git

.PHONY: setup system venv image demo test lint docs clean-state

setup: system venv image

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
