# eks-platform. `make plan` and `make test` work offline on a fresh machine; `preview`, `up` and
# `destroy` wrap the real Pulumi CLI.
STACK ?= dev
JSON ?=
ARGS ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help venv charts plan test lint typecheck unit bench preview up destroy addon-versions integration it-cleanup

help:
	@echo "make plan [STACK=dev|prod] [JSON=plan.json]  offline plan under the mock engine"
	@echo "make charts                                   pull the pinned Helm charts into .charts/, lock their sha256"
	@echo "make test                                     lint, type-check and the whole test suite"
	@echo "make bench                                    time the offline plan of the prod stack"
	@echo "make preview|up|destroy STACK=<stack>         real Pulumi CLI (needs pulumi, AWS credentials); preview/up enforce policy/"
	@echo "make addon-versions STACK=<stack>             compare pinned EKS add-ons with what AWS offers"
	@echo "make integration                              ephemeral-stack tests on a real account (~30 min, costs money)"
	@echo "make it-cleanup [ARGS='--older-than 0']       destroy ephemeral stacks left by crashed runs"

# (Re)build the virtualenv when it is missing or a requirements file changed. `make plan` needs only
# requirements.txt; `make test` adds the test tools of requirements-dev.txt.
$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(DEV_STAMP)

venv: $(DEV_STAMP)

charts: $(STAMP)
	$(PY) -m tools.charts

plan: $(STAMP)
	$(PY) -m tools.plan --stack $(STACK) $(if $(JSON),--json $(JSON))

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(DEV_STAMP)
	$(PY) -m mypy

unit: $(DEV_STAMP)
	$(PY) -m pytest

test: lint typecheck unit

bench: $(STAMP)
	$(PY) -m tools.bench --stack prod

preview up destroy: $(STAMP)
	@command -v pulumi >/dev/null || { echo "The Pulumi CLI is not installed: see the README, 'Deploying for real'."; exit 2; }
	pulumi stack select $(STACK)
	pulumi $@ --stack $(STACK) $(if $(filter preview up,$@),--policy-pack policy)

addon-versions: $(STAMP)
	$(PY) -m tools.addon_versions --stack $(STACK)

integration: $(DEV_STAMP)
	EKS_PLATFORM_IT=1 $(PY) -m pytest tests/integration -m integration -x -s

it-cleanup: $(STAMP)
	$(PY) -m tools.cleanup_stacks $(ARGS)
