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
# checkov pins packages the project's venv cannot hold (packaging<24, boto3==1.35.49, ...): it gets
# a virtualenv of its own, like a pre-commit hook, and tools/scan.py talks to it through files.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.DEFAULT_GOAL := help
.PHONY: help venv plan test lint typecheck unit scan bench preview up destroy addon-versions integration it-cleanup

help:
	@echo "make plan [STACK=dev|prod] [JSON=plan.json]  offline plan under the mock engine"
	@echo "make test                                     lint, type-check, the whole test suite and the scan"
	@echo "make scan [JSON=plan.json]                    checkov over the rendered Helm objects (own venv)"
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

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

plan: $(STAMP)
	$(PY) -m tools.plan --stack $(STACK) $(if $(JSON),--json $(JSON))

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(DEV_STAMP)
	$(PY) -m mypy

unit: $(DEV_STAMP)
	$(PY) -m pytest

# Renders the service chart (and every upstream chart at hand in .charts/), runs checkov, and fails
# on a failed check not listed in policy/checkov-exceptions.yaml. JSON=plan.json adds its findings.
scan: $(STAMP) $(CHECKOV_STAMP)
	$(PY) -m tools.scan --checkov $(CHECKOV_VENV)/bin/checkov $(if $(JSON),--plan-json $(JSON))

test: lint typecheck scan unit

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
