# The two commands a newcomer needs:  `make demo` (set up, then run the main job)  and  `make test`.
SHELL := /bin/bash
# pip finds the pinned torch/torchvision wheels on this machine kind's disk for Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' $(foreach p,$(wildcard plugins/*/pyproject.toml),-e $(dir $(p)))
	touch $(STAMP)

demo: setup
	$(BIN)/resnetcli summarize --arch resnet50

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
