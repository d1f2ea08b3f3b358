# eks-platform. `make plan` and `make test` work offline on a fresh machine; `preview`, `up` and
# `destroy` wrap the real Pulumi CLI.
STACK ?= dev
# platform (this folder) or identity (identity/: the deploy identity, applied by admins).
PROJECT ?= platform
JSON ?=
TREE ?=
OBJECTS ?=
SUMMARY ?=
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
.PHONY: help venv charts plan new-service new-stack test lint typecheck unit scan bench test-day-two preview up destroy bootstrap destroy-prepare cli-check addon-versions ami-versions integration it-cleanup diff diagram

help:
	@echo "Offline (no AWS, no Pulumi CLI):"
	@echo "  make plan [STACK=<stack>] [PROJECT=identity] [JSON=plan.json] [TREE=1] [OBJECTS=1] [SUMMARY=1]"
	@echo "                                              offline plan under the mock engine: summary first,"
	@echo "                                              the one-line verdict last; SUMMARY=1 prints only"
	@echo "                                              those, TREE=1 adds the resource tree, OBJECTS=1"
	@echo "                                              every rendered Helm object; PROJECT=identity plans"
	@echo "                                              the stack's deploy identity (identity/)"
	@echo "  make diff STACK=<s> BASE=<rev> | OTHER=<s> | A=<plan.json> B=<plan.json> [JSON=diff.json] [MARKDOWN=summary.md]"
	@echo "                                              compare two offline plans (changes, findings, cost);"
	@echo "                                              PROJECT=identity compares the deploy identity's plans"
	@echo "  make diagram STACK=<stack> [OUT=file.md]    Mermaid diagram of the stack's plan"
	@echo "  make charts                                 pull the pinned Helm charts into .charts/, lock their sha256"
	@echo "  make new-service NAME=<name>                a microservice in every stack: stack file entries, code,"
	@echo "                                              values, Applications, workflows (platform/gitops/README.md)"
	@echo "  make new-stack NAME=<name> FROM=<stack>     a stack copied from another: stack file, identity stack file,"
	@echo "                                              GitOps folder, every service's values (docs/adding-a-stack.md)"
	@echo "  make test                                   lint + typecheck + scan + unit: what CI runs"
	@echo "  make test-day-two                           make test on a copy with a new service and a new stack (CI too)"
	@echo "  make lint                                   ruff check and ruff format --check"
	@echo "  make typecheck                              strict mypy"
	@echo "  make unit                                   the whole pytest suite"
	@echo "  make scan [JSON=plan.json]                  checkov over the rendered Helm objects (own venv)"
	@echo "  make bench                                  time the prod plan (2 s) and the unit suite (30 s)"
	@echo "  make venv                                   (re)build .venv from requirements*.txt"
	@echo "Against AWS (needs credentials):"
	@echo "  make preview|up|destroy STACK=<stack> [PROJECT=identity] [FORCE=1]"
	@echo "                                              real Pulumi CLI (needs pulumi and aws); preview/up enforce"
	@echo "                                              policy/; PROJECT=identity: the deploy identity (admins);"
	@echo "                                              destroy refuses to delete an OIDC provider another stack"
	@echo "                                              reuses (FORCE=1: the stacks are in separate accounts)"
	@echo "  make bootstrap STACK=prod                   first up of a private-endpoint stack, as the deploy role:"
	@echo "                                              cluster and agents only (the flag is never written to a file)"
	@echo "  make destroy-prepare STACK=prod             destroy, step 1: unprotect what the bootstrap deployment drops"
	@echo "                                              (listed from the plan; docs/deploy-path.md, Destroy)"
	@echo "  make cli-check                              check that the pulumi and aws CLIs are installed"
	@echo "  make addon-versions STACK=<stack>           compare pinned EKS add-ons with what AWS offers"
	@echo "  make ami-versions STACK=<stack>             compare the system nodes' pinned AMI release with AWS's current"
	@echo "  make integration                            ephemeral-stack tests on a real account (~30 min, costs money)"
	@echo "  make it-cleanup [ARGS='--older-than 0']     destroy it-* stacks whose run started > 4 h ago (never a live one;"
	@echo "                                              each in its own aws:region); ARGS='--stack it-x': exactly that one"
	@echo "Stacks: $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml)) (one per Pulumi.<stack>.yaml; docs/adding-a-stack.md)"

# (Re)build the virtualenv when it is missing or a requirements file changed. `make plan` needs only
# requirements.txt; `make test` adds the test tools of requirements-dev.txt.
$(STAMP): requirements.txt
	@echo "Installing $$(grep -c '==' requirements.txt) pinned packages of requirements.txt into $(VENV): what the program"
	@echo "and make plan need (once, and again when the file changes; pip is quiet until it is done)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	@echo "Installing $$(grep -c '==' requirements-dev.txt) pinned test tools of requirements-dev.txt into $(VENV): pytest,"
	@echo "ruff, mypy and what they need, for make test (pip is quiet until it is done)..."
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(DEV_STAMP)

venv: $(DEV_STAMP)

charts: $(STAMP)
	$(PY) -m tools.charts

$(CHECKOV_STAMP):
	@echo "Installing checkov $(CHECKOV_VERSION) into $(CHECKOV_VENV), a virtualenv of its own, for make scan"
	@echo "(its pins clash with the project's; pip is quiet until it is done)..."
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

plan: $(STAMP)
	$(PY) -m tools.plan --stack $(STACK) --project $(PROJECT) $(if $(JSON),--json $(JSON)) $(if $(TREE),--tree) $(if $(OBJECTS),--objects) $(if $(SUMMARY),--summary)

# Compare two plans: the stack at a git revision (BASE), another stack (OTHER) or two saved
# documents (A, B). tools/diff.py explains the modes.
BASE ?=
OTHER ?=
A ?=
B ?=
MARKDOWN ?=
diff: $(STAMP)
	$(PY) -m tools.diff $(if $(A)$(B),--a $(A) --b $(B),--stack $(STACK) $(if $(BASE),--base $(BASE)) $(if $(OTHER),--other $(OTHER)) $(if $(filter identity,$(PROJECT)),--project identity)) $(if $(JSON),--json $(JSON)) $(if $(MARKDOWN),--markdown $(MARKDOWN))

# Day two: a new service or stack, each ready for `make plan` and `make test`; a bad or existing name
# is refused (exit 2) and nothing is written.
NAME ?=
FROM ?=
new-service: $(STAMP)
	$(PY) -m tools.new_service "$(NAME)"

new-stack: $(STAMP)
	$(PY) -m tools.new_stack "$(NAME)" --from "$(FROM)"

OUT ?=
diagram: $(STAMP)
	$(PY) -m tools.diagram --stack $(STACK) $(if $(OUT),--out $(OUT))

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(DEV_STAMP)
	$(PY) -m mypy

# On every core (pytest-xdist): the whole-program tests dominate and are independent.
unit: $(DEV_STAMP)
	$(PY) -m pytest -n auto

# Renders the service chart (and every upstream chart at hand in .charts/), runs checkov, and fails
# on a failed check not listed in policy/checkov-exceptions.yaml. JSON=plan.json adds its findings.
scan: $(STAMP) $(CHECKOV_STAMP)
	$(PY) -m tools.scan --checkov $(CHECKOV_VENV)/bin/checkov $(if $(JSON),--plan-json $(JSON))

test: lint typecheck scan unit

# The guides' promise: a copy of the checkout with `make new-service` and `make new-stack ... FROM=prod`
# passes `make test` unedited (tools/day_two.py). CI runs it after `make test`.
test-day-two: $(DEV_STAMP) $(CHECKOV_STAMP)
	$(PY) -m tools.day_two

# The plan's budget (2 s median), then the unit suite's (30 s).
bench: $(DEV_STAMP)
	$(PY) -m tools.bench --stack prod
	$(PY) -m tools.bench --suite

# The kubeconfig runs `aws eks get-token --role <deploy role>`: without the AWS CLI every
# Kubernetes call fails, so both CLIs are checked before anything runs.
cli-check:
	@command -v pulumi >/dev/null || { echo "The Pulumi CLI is not installed: see docs/first-deploy.md."; exit 2; }
	@command -v aws >/dev/null || { echo "The AWS CLI (v2) is not installed: the kubeconfig runs 'aws eks get-token'; see docs/deploy-path.md."; exit 2; }

# The identity project has its own Pulumi.yaml in identity/; the policy pack path is absolute
# because `-C` changes the CLI's working folder first.
PROJECT_DIR = $(if $(filter identity,$(PROJECT)),identity,.)

preview up destroy: $(STAMP) cli-check
	@case "$(PROJECT)" in platform|identity) ;; *) echo "PROJECT must be platform or identity, not '$(PROJECT)'."; exit 2;; esac
	$(if $(filter destroy,$@),FORCE=$(FORCE) $(PY) -m tools.destroy_guard --stack $(STACK) --project $(PROJECT))
	pulumi -C $(PROJECT_DIR) stack select $(STACK)
	pulumi -C $(PROJECT_DIR) $@ --stack $(STACK) $(if $(filter preview up,$@),--policy-pack $(CURDIR)/policy)

# First `up` of a stack whose API endpoint is private: everything up to the cluster and the
# Deployments agents, no Kubernetes object (so it works from outside the VPC), applied as the deploy
# role that the identity project (`make up PROJECT=identity`) created first. The flag lives in a
# temporary copy of the stack file passed with `--config-file` (a flag `pulumi up -c` would have
# saved to Pulumi.<stack>.yaml: pulumi.com CLI docs, `pulumi up`), so an interrupted run leaves
# nothing in the committed file; the copy ends in .yaml because the CLI picks the file's marshaller
# by extension and refuses any other ("no marshaler found for file format": pulumi/pulumi
# sdk/go/common/workspace/project.go marshallerForPath). Refused once the stack has a cluster: a
# bootstrap run would delete every Kubernetes object. STS caps a role-chained session at 1 hour; a bootstrap takes 20-25 minutes.
bootstrap: $(STAMP) cli-check
	pulumi stack select $(STACK)
	@if pulumi stack output clusterName --stack $(STACK) >/dev/null 2>&1; then echo "$(STACK) already has a cluster: bootstrap is for the first up only (docs/deploy-path.md)."; exit 2; fi
	@set -e; \
	role=$$(pulumi -C identity stack output deployRoleArn --stack $(STACK) 2>/dev/null) || role=""; \
	if [ -z "$$role" ]; then echo "The identity stack $(STACK) has no deployRoleArn: run 'make up PROJECT=identity STACK=$(STACK)' first (docs/deploy-path.md)."; exit 2; fi; \
	boundary=$$(pulumi -C identity stack output boundaryArn --stack $(STACK) 2>/dev/null) || boundary=""; \
	if [ -z "$$boundary" ]; then echo "The identity stack $(STACK) has no boundaryArn (every role the platform creates carries it): run 'make up PROJECT=identity STACK=$(STACK)' first (docs/deploy-path.md)."; exit 2; fi; \
	config=$$(mktemp "$${TMPDIR:-/tmp}/bootstrap-XXXXXX.yaml"); trap 'rm -f "$$config"' EXIT; \
	cp Pulumi.$(STACK).yaml "$$config"; \
	pulumi config set --config-file "$$config" --stack $(STACK) --path deployments.bootstrap true; \
	creds=$$(aws sts assume-role --role-arn "$$role" --role-session-name "bootstrap-$(STACK)" \
	  --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text); \
	set -- $$creds; \
	if [ $$# -ne 3 ]; then echo "Could not assume $$role (are you one of cluster.adminRoleArns?)."; exit 2; fi; \
	env -u AWS_PROFILE AWS_ACCESS_KEY_ID="$$1" AWS_SECRET_ACCESS_KEY="$$2" AWS_SESSION_TOKEN="$$3" \
	  pulumi up --stack $(STACK) --config-file "$$config" --policy-pack $(CURDIR)/policy

# Destroy, step 1 of a private-endpoint stack (docs/deploy-path.md "Destroy"): lift `protect`, in
# the stack's state, from exactly the resources the bootstrap deployment (step 2) drops and may drop,
# listed from the plan (tools/destroy_path.py): the engine refuses to delete a protected resource
# (pulumi/pulumi pkg/resource/deploy/step.go). The list is computed first, so a refusal unprotects
# nothing. `pulumi state unprotect [urn]... --yes` (pulumi.com CLI docs).
destroy-prepare: $(STAMP) cli-check
	@set -e; \
	urns=$$($(PY) -m tools.destroy_path --stack $(STACK)); \
	if [ -z "$$urns" ]; then echo "Nothing to unprotect."; exit 0; fi; \
	pulumi state unprotect --yes --stack $(STACK) $$urns; \
	echo "Unprotected what the bootstrap deployment drops. Next, with no other push in between (a run re-applies protect): commit deployments: {bootstrap: true} to Pulumi.$(STACK).yaml on the deploy branch (docs/deploy-path.md)."

addon-versions: $(STAMP)
	$(PY) -m tools.addon_versions --stack $(STACK)

ami-versions: $(STAMP)
	$(PY) -m tools.ami_versions --stack $(STACK)

integration: $(DEV_STAMP)
	EKS_PLATFORM_IT=1 $(PY) -m pytest tests/integration -m integration -x -s

it-cleanup: $(STAMP)
	$(PY) -m tools.cleanup_stacks $(ARGS)
