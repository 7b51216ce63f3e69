# The two commands a newcomer needs:  `make demo` (set up, then run the main job)  and  `make test`.
SHELL := /bin/bash
# pip finds the pinned torch/torchvision wheels on this machine kind's disk for Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' $(foreach p,$(wildcard plugins/*/pyproject.toml),-e $(dir $(p)))
	touch $(STAMP)

# The main job: Fashion-MNIST from Debian's dataset-fashion-mnist package (no download) to a tested ResNet.
# DEMO_ARGS passes options through, e.g. `make demo DEMO_ARGS="--epochs 2"` (see `python -m resnetcli.demo -h`).
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DEMO_ARGS ?=

demo: setup
	@if [ ! -f $(FASHION_MNIST)/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null \
	    && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }; \
	fi
	$(BIN)/python -m resnetcli.demo $(DEMO_ARGS)

# The test command (CI runs exactly this): lint, then every test, one pytest-xdist worker per core (about 1m45s
# on 2 cores: README.md, "Where things live"; tests/conftest.py splits torch's threads between the workers).
# Work-stealing, as a few torchrun and kill -9 tests take seconds each and would otherwise leave one worker idle.
PYTEST := $(BIN)/python -m pytest -n auto --dist worksteal

test: setup lint
	$(PYTEST)

# While editing: the same minus the tests marked slow (kill -9 resumes, torchrun, end-to-end runs).
test-fast: setup lint
	$(PYTEST) -m "not slow"

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs
