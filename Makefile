# forge: the two commands of the README, and the pieces they are made of.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test lint typecheck system-deps venv clean

## demo: forge's main job on the built-in small reference-architecture site
demo: $(STAMP) system-deps
	$(BIN)/forge demo

## test: lint, type-check and the whole test suite (what CI runs)
test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

LINT_PATHS := $(wildcard provision tests benchmarks checks)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	if [ -n "$$(ls playbooks/*.yml 2>/dev/null)" ]; then \
	  $(BIN)/ansible-lint --profile production --offline -q playbooks; fi

typecheck: $(STAMP)
	$(BIN)/mypy

system-deps:
	bash scripts/system-deps.sh

venv: $(STAMP)
$(STAMP): pyproject.toml | system-deps
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
