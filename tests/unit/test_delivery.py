"""Delivery: CI workflows (build, promote), shared chart, per-service values, GitOps tree, Dockerfiles.

Everything here runs offline. The chart is linted and rendered by Helm's own engine in-process
(helm-python-sdk, as analysis/helm.py uses it), so no test needs a `helm` binary.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from analysis.helm import RenderError, render_chart
from model.records import PlanResult
from stacks.data import read_yaml
from tests.schemas import validate_custom_resource
from tests.stackinfo import is_production
from tools.mocks import ROOT, stack_names

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
ACTION_FILES = sorted(ACTIONS.glob("*/action.yml"))
CHART = ROOT / "charts" / "microservice"
GITOPS = ROOT / "platform" / "gitops"
ENVIRONMENTS = tuple(stack_names())  # one per Pulumi.<stack>.yaml, so a third stack is checked too
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "Dockerfile").is_file())
DEPLOY_FILES = sorted((ROOT / "services").glob("*/deploy/*.yaml"))
APP_FILES = sorted(GITOPS.glob("*/*.yaml"))
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
# Jobs without `uses:` finish within an hour, except those that bring a real stack up and down.
MAX_TIMEOUT_MINUTES = {"integration.yml": 180}
IN_CLUSTER = "https://kubernetes.default.svc"
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>.+)$"
)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load(path: Path) -> Any:
    return read_yaml(path)


def helm_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's value coalescing: maps merge key by key, anything else replaces, null deletes."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def chart_values(deploy_file: Path) -> dict[str, Any]:
    return helm_merge(load(CHART / "values.yaml"), load(deploy_file))


def schema_errors(values: dict[str, Any]) -> list[jsonschema.ValidationError]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    return list(jsonschema.Draft7Validator(schema).iter_errors(values))


def vpa_controlled_resources(values: dict[str, Any]) -> list[str]:
    """What the chart's VPA controls (templates/_helpers.tpl, microservice.vpaControlledResources)."""
    default = ["memory"] if values["autoscaling"]["enabled"] else ["cpu", "memory"]
    return list(values["verticalAutoscaling"].get("controlledResources") or default)


def hpa_resources(values: dict[str, Any]) -> set[str]:
    hpa = values["autoscaling"]
    if not hpa["enabled"]:
        return set()
    return {"cpu"} | ({"memory"} if hpa.get("targetMemoryUtilizationPercentage") else set())


def workflow_jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(path.name, name, job) for path in WORKFLOW_FILES for name, job in load(path)["jobs"].items()]


def action_steps(name: str) -> list[dict[str, Any]]:
    action = load(ACTIONS / name / "action.yml")
    assert action["runs"]["using"] == "composite"
    return list(action["runs"]["steps"])


def local_action_step(job: dict[str, Any], action: str) -> dict[str, Any]:
    """The step of a job that runs .github/actions/<action>, after the checkout it is read from."""
    uses = [s.get("uses", "") for s in job["steps"]]
    index = uses.index(f"./.github/actions/{action}")
    assert any(u.startswith("actions/checkout@") for u in uses[:index]), f"{action} is read from a checkout"
    return dict(job["steps"][index])


def service_jobs(service: str, suffix: str = "") -> dict[str, Any]:
    return dict(load(WORKFLOWS / f"{service}{suffix}.yml")["jobs"])


def image_repository(service: str, env: str) -> re.Match[str]:
    repository = chart_values(ROOT / "services" / service / "deploy" / f"{env}.yaml")["image"]["repository"]
    match = ECR_IMAGE.match(repository)
    assert match, f"{service}/{env}: {repository} is not an ECR repository URL"
    return match


def stack_services(stack: str) -> list[dict[str, Any]]:
    config = load(ROOT / f"Pulumi.{stack}.yaml")["config"]
    return list(config.get(f"{PROJECT}:delivery", {}).get("services", []))


def run_scripts(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


####################################################################################################
# (a) GitHub workflows


def test_there_are_workflows_and_deploy_files_to_check() -> None:
    assert SERVICES, "at least one service under services/"
    assert {p.name for p in WORKFLOW_FILES} >= {
        "build-service.yml",
        "propose-tag.yml",
        *(f"{s}.yml" for s in SERVICES),
        *(f"{s}-promote.yml" for s in SERVICES),
    }
    assert {p.parent.name for p in ACTION_FILES} == {"push-image", "promote-image"}
    assert DEPLOY_FILES and APP_FILES


def test_workflows_and_actions_validate_against_githubs_schemas() -> None:
    for schema, files in (
        ("vendor.github-workflows", WORKFLOW_FILES),
        ("vendor.github-actions", ACTION_FILES),
    ):
        cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_third_party_action_is_pinned_to_a_commit_sha_with_its_version() -> None:
    found = 0
    for path in [*WORKFLOW_FILES, *ACTION_FILES]:
        for line in path.read_text().splitlines():
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not match or match[1].startswith("./"):
                continue
            found += 1
            ref, rest = match[1], match[2]
            assert SHA_PIN.match(ref), f"{rel(path)}: {ref} is not pinned to a full commit SHA"
            assert VERSION_COMMENT.search(rest), f"{rel(path)}: {ref} lacks its '# vX.Y.Z' comment"
    assert found >= 5


def test_workflows_grant_nothing_by_default_and_every_job_declares_its_permissions() -> None:
    for path in WORKFLOW_FILES:
        assert load(path)["permissions"] == {}, f"{path.name}: top-level permissions must be {{}}"
    for file, name, job in workflow_jobs():
        assert "permissions" in job, f"{file}:{name} declares no permissions"
        if "uses" not in job:
            limit = MAX_TIMEOUT_MINUTES.get(file, 60)
            assert 0 < job["timeout-minutes"] <= limit, (
                f"{file}:{name} needs a timeout of at most {limit} min"
            )


def test_every_job_that_can_get_aws_credentials_is_defined_in_the_file_its_role_trusts() -> None:
    """The CI roles trust `job_workflow_ref`, the file that defines the job (components/registry.py).
    A reusable workflow's job carries the reusable file's path, one for every service: so no
    reusable workflow asks for an OIDC token, and each credentialed job of a service's files is
    defined there and reaches AWS only through the local composite actions."""
    for file, name, job in workflow_jobs():
        wants_token = job.get("permissions", {}).get("id-token") == "write"
        reusable = "workflow_call" in load(WORKFLOWS / file)[True]
        assert not (wants_token and reusable), (
            f"{file}:{name}: a reusable workflow's job asks for an OIDC token"
        )
        assert not (wants_token and "uses" in job), (
            f"{file}:{name}: a called workflow's job would get the token"
        )
    for service in SERVICES:
        for suffix, action in (("", "push-image"), ("-promote", "promote-image")):
            jobs = service_jobs(service, suffix)
            (name,) = [n for n, j in jobs.items() if j["permissions"].get("id-token") == "write"]
            assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}
            local_action_step(jobs[name], action)
            assert "configure-aws-credentials" not in json.dumps(jobs), "credentials only inside the actions"


def test_only_the_publishing_job_can_get_aws_credentials_and_only_the_bump_job_can_write() -> None:
    build = load(WORKFLOWS / "build-service.yml")["jobs"]
    assert set(build) == {"test", "scan"}
    for name, job in build.items():
        assert job["permissions"] == {"contents": "read"}, f"build-service.yml:{name} holds no credential"
    (bump,) = load(WORKFLOWS / "propose-tag.yml")["jobs"].values()
    assert bump["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "configure-aws-credentials" not in json.dumps(bump)
    # The scanner (third-party code that was compromised once) never shares a job with a credential.
    uses = {name: [s.get("uses", "") for s in job["steps"]] for name, job in build.items()}
    scanners = [name for name in build if any(u.startswith("aquasecurity/trivy-action@") for u in uses[name])]
    assert scanners == ["scan"]
    push = [s.get("uses", "") for s in action_steps("push-image")]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in push)
    assert not any("trivy" in u for u in push)
    for service in SERVICES:
        jobs = service_jobs(service)
        assert jobs["checks"]["uses"] == "./.github/workflows/build-service.yml"
        assert jobs["checks"]["permissions"] == {"contents": "read"}
        assert jobs["publish"]["needs"] == "checks", "nothing is pushed before tests and scan pass"
        assert jobs["bump"]["needs"] == "publish"
        assert jobs["bump"]["uses"] == "./.github/workflows/propose-tag.yml"
        assert jobs["bump"]["permissions"] == {"contents": "write", "pull-requests": "write"}


def test_the_image_is_tagged_with_the_commit_sha_and_pushed_only_by_the_publish_job() -> None:
    scan = next(
        s["with"]
        for s in load(WORKFLOWS / "build-service.yml")["jobs"]["scan"]["steps"]
        if s.get("uses", "").startswith("docker/build-push-action@")
    )
    steps = action_steps("push-image")
    (push,) = [s["with"] for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    assert scan["push"] is False and push["push"] is True
    lookup = next(s for s in steps if s.get("id") == "image")
    assert lookup["env"]["TAG"] == "${{ github.sha }}"
    assert push["tags"] == "${{ steps.image.outputs.image }}"
    assert "latest" not in json.dumps([scan, push])


def test_no_expression_is_interpolated_into_a_shell_script() -> None:
    """Inputs reach scripts through env: `${{ }}` inside `run:` is a script-injection vector."""
    steps = [(f"{file}:{name}", step) for file, name, job in workflow_jobs() for step in job.get("steps", [])]
    actions = [(rel(path), step) for path in ACTION_FILES for step in load(path)["runs"]["steps"]]
    for where, step in [*steps, *actions]:
        assert "${{" not in step.get("run", ""), f"{where}: {step.get('name', step.get('run', '')[:40])}"
    # A composite action's run steps name their shell (GitHub requires it; no default applies).
    assert all(step.get("shell") == "bash" for _, step in actions if "run" in step)


def test_promotion_reads_dev_and_writes_the_target_each_with_its_own_role_and_never_builds() -> None:
    copy = action_steps("promote-image")
    roles = [s["with"]["role-to-assume"] for s in copy if "configure-aws-credentials@" in s.get("uses", "")]
    assert roles == ["${{ inputs.dev-role-to-assume }}", "${{ inputs.target-role-to-assume }}"]
    # Dev's digest is read before the target role replaces the dev credentials; the copy needs both
    # registry logins, kept in separate auth files.
    order = [s.get("id") or s.get("uses", "").split("@")[0] for s in copy]
    assert order.index("dev") < order.index("copy")
    assert order.index("dev") > next(
        i for i, s in enumerate(order) if s.endswith("configure-aws-credentials")
    )
    script = run_scripts({"steps": copy})
    copy_command = re.search(r"skopeo [^\n]*copy(?:[^\n]*\\\n)*[^\n]*", script)
    assert copy_command, "the image is copied with skopeo"
    for flag in ("--all", "--preserve-digests", "--src-authfile", "--dest-authfile", "--digestfile"):
        assert flag in copy_command[0], flag
    assert "@$DIGEST" in copy_command[0], "the source is addressed by digest, not by tag"
    assert '[ "$stored" = "$DIGEST" ]' in script, "the target registry's digest for the tag is verified"
    assert '[ "$running" != "$TAG" ]' in script, "only what dev runs is promoted"
    assert not any("build-push-action" in step.get("uses", "") for step in copy), "promotion never rebuilds"
    assert not re.search(r"\b(docker|buildx|podman|buildah) +build\b", script)

    (bump,) = load(WORKFLOWS / "propose-tag.yml")["jobs"].values()
    step = next(s for s in bump["steps"] if s.get("id") == "bump")
    assert step["env"]["VALUES_FILE"] == "services/${{ inputs.service }}/deploy/${{ inputs.stack }}.yaml"
    assert step["env"]["TAG"] == "${{ inputs.tag }}"
    assert bump["concurrency"]["group"] == "gitops-bump-${{ inputs.service }}-${{ inputs.stack }}"
    assert not re.search(r"\b(docker|buildx|podman|buildah) +build\b", run_scripts(bump))


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_promotion_is_manual_and_uses_both_stacks_roles(service: str) -> None:
    workflow = load(WORKFLOWS / f"{service}-promote.yml")
    assert set(workflow[True]) == {"workflow_dispatch"}, "a push never promotes"
    assert workflow[True]["workflow_dispatch"]["inputs"]["tag"]["required"] is True
    jobs = workflow["jobs"]
    copy = local_action_step(jobs["promote"], "promote-image")["with"]
    assert copy["service"] == service and copy["tag"] == "${{ inputs.tag }}"
    # The target's role: the job `role` reads <SERVICE>_<STACK>_CI_ROLE_ARN (test_ci_workflows.py).
    dev, target = copy["dev-role-to-assume"], copy["target-role-to-assume"]
    variable = service.upper().replace("-", "_")
    assert (dev, target) == (f"${{{{ vars.{variable}_DEV_CI_ROLE_ARN }}}}", "${{ needs.role.outputs.arn }}")
    publish = local_action_step(service_jobs(service)["publish"], "push-image")["with"]
    assert publish["role-to-assume"] == dev, "dev builds and dev reads use one role"
    bump = jobs["bump"]
    assert bump["uses"] == "./.github/workflows/propose-tag.yml" and bump["needs"] == "promote"
    assert bump["with"]["promoted"] is True and bump["with"]["stack"] == "${{ inputs.stack }}"
    assert bump["with"]["digest"] == "${{ needs.promote.outputs.digest }}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_pipeline_tests_pushes_and_proposes_without_triggering_itself(service: str) -> None:
    workflow = load(WORKFLOWS / f"{service}.yml")
    triggers = workflow[True]  # PyYAML reads the key `on` as the boolean True
    for event in ("push", "pull_request"):
        paths = triggers[event]["paths"]
        assert f"services/{service}/**" in paths
        # Merging the tag bump changes deploy/; building again would bump again, forever.
        assert paths.index(f"!services/{service}/deploy/**") > paths.index(f"services/{service}/**")
        assert ".github/actions/push-image/**" in paths
    (branch,) = triggers["push"]["branches"]
    jobs = workflow["jobs"]
    assert jobs["checks"]["with"] == {"service": service}
    assert jobs["publish"]["if"] == (
        f"github.event_name != 'pull_request' && github.ref == 'refs/heads/{branch}'"
    ), "pull requests only test and scan"
    publish = local_action_step(jobs["publish"], "push-image")["with"]
    assert publish["service"] == service
    assert publish["role-to-assume"].startswith("${{ vars."), "the role ARN comes from a repository variable"
    bump = jobs["bump"]["with"]
    assert (bump["service"], bump["stack"], bump["tag"]) == (service, "dev", "${{ github.sha }}")
    assert bump["gitops-base-branch"] == branch and "promoted" not in bump


@pytest.mark.parametrize("service", SERVICES)
def test_the_pipeline_pushes_to_the_repository_dev_pulls_from(service: str) -> None:
    """Builds of main go to the dev stack's repository only; prod receives copies (promotion)."""
    pipeline = local_action_step(service_jobs(service)["publish"], "push-image")["with"]
    dev = image_repository(service, "dev")
    assert (dev["region"], dev["repo"]) == (pipeline["aws-region"], pipeline["ecr-repository"])
    assert pipeline["ecr-repository"] == f"{PROJECT}-dev/{service}"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_pulls_from_its_own_stacks_repository(service: str, env: str) -> None:
    """components/registry.py names the repositories <project>-<stack>/<service>, one per stack."""
    expected = f"{PROJECT}-{env}/{service}"
    assert image_repository(service, env)["repo"] == expected, (
        f"services/{service}/deploy/{env}.yaml: image.repository must be the {env} stack's own registry, "
        f"<account>.dkr.ecr.<region>.amazonaws.com/{expected} (docs/adding-a-stack.md, step 2)"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_in_the_delivery_config_of_every_stack(service: str) -> None:
    """The stack config creates the service's ECR repository, CI role and namespace."""
    stacks = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
    assert stacks == sorted(ENVIRONMENTS)
    repo_url = load(GITOPS / "dev" / f"{service}.yaml")["spec"]["source"]["repoURL"]
    (ci_branch,) = load(WORKFLOWS / f"{service}.yml")[True]["push"]["branches"]
    for stack in stacks:
        entries = [s for s in stack_services(stack) if s["name"] == service]
        assert len(entries) == 1, f"Pulumi.{stack}.yaml: {PROJECT}:delivery.services lacks {service}"
        # The CI roles trust the repository and branch whose workflows push and promote the image.
        assert entries[0].get("branch", "main") == ci_branch
        assert repo_url == f"https://github.com/{entries[0]['githubRepository']}.git"


####################################################################################################
# (b) Per-service values against the chart's schema


def test_values_schema_is_a_valid_draft7_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False and "image" in schema["required"]


def test_chart_defaults_alone_are_rejected_because_every_service_names_its_image() -> None:
    errors = schema_errors(load(CHART / "values.yaml"))
    assert {(e.json_path, e.message) for e in errors} == {
        ("$.image", "'repository' is a required property"),
        ("$.image", "'tag' is a required property"),
    }


@pytest.mark.parametrize("deploy_file", DEPLOY_FILES, ids=rel)
def test_deploy_values_validate_against_the_chart_schema(deploy_file: Path) -> None:
    errors = schema_errors(chart_values(deploy_file))
    assert not errors, [f"{e.json_path}: {e.message}" for e in errors]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_deploys_to_exactly_every_stack(service: str) -> None:
    assert sorted(p.stem for p in (ROOT / "services" / service / "deploy").glob("*.yaml")) == sorted(
        ENVIRONMENTS
    )


@pytest.mark.parametrize("service", SERVICES)
def test_prod_is_highly_available_and_runs_the_image_dev_built(service: str) -> None:
    prod = chart_values(ROOT / "services" / service / "deploy" / "prod.yaml")
    assert prod["autoscaling"]["enabled"] and prod["autoscaling"]["minReplicas"] >= 3, "one replica per zone"
    assert prod["podDisruptionBudget"]["enabled"]
    assert prod["topologySpread"]["zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    # Each stack has its own repository; promotion copies dev's manifest into prod's by digest.
    assert image_repository(service, "dev")[0] != image_repository(service, "prod")[0]
    # And every other production stack (a copy of prod under another name) is as available.
    for stack in [s for s in ENVIRONMENTS if is_production(s) and s != "prod"]:
        values = chart_values(ROOT / "services" / service / "deploy" / f"{stack}.yaml")
        assert values["autoscaling"]["minReplicas"] >= 3 and values["podDisruptionBudget"]["enabled"], stack
        assert values["topologySpread"]["zone"]["whenUnsatisfiable"] == "DoNotSchedule", stack
    promote = local_action_step(service_jobs(service, "-promote")["promote"], "promote-image")
    assert promote["with"]["service"] == service


@pytest.mark.parametrize("deploy_file", DEPLOY_FILES, ids=rel)
def test_the_vpa_never_acts_on_what_the_hpa_scales_on(deploy_file: Path) -> None:
    values = chart_values(deploy_file)
    vpa = values["verticalAutoscaling"]
    if vpa["enabled"] and vpa["updateMode"] != "Off":
        assert not set(vpa_controlled_resources(values)) & hpa_resources(values)


VALID_VARIANTS = {
    "vpa-recreate-without-hpa-controls-cpu-and-memory": {
        "autoscaling": {"enabled": False},
        "verticalAutoscaling": {"updateMode": "Recreate", "controlledResources": ["cpu", "memory"]},
    },
    "vpa-off-with-hpa-memory-target": {
        "autoscaling": {"targetMemoryUtilizationPercentage": 80},
        "verticalAutoscaling": {"updateMode": "Off"},
    },
    "vpa-in-place-memory-only-with-hpa": {
        "verticalAutoscaling": {"updateMode": "InPlaceOrRecreate", "controlledResources": ["memory"]},
    },
    "semver-tag-and-percent-pdb": {
        "image": {"tag": "1.4.2"},
        "podDisruptionBudget": {"maxUnavailable": "25%"},
    },
}


@pytest.mark.parametrize("override", VALID_VARIANTS.values(), ids=VALID_VARIANTS.keys())
def test_the_schema_accepts_legitimate_variants(override: dict[str, Any]) -> None:
    values = helm_merge(chart_values(ROOT / "services" / SERVICES[0] / "deploy" / "dev.yaml"), override)
    assert not schema_errors(values)


INVALID_VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "tag-latest": ({"image": {"tag": "latest"}}, "$.image.tag"),
    "tag-latest-any-case": ({"image": {"tag": "Latest"}}, "$.image.tag"),
    "tag-not-a-string": ({"image": {"tag": 1234567}}, "$.image.tag"),
    "no-image": ({"image": None}, "$"),
    "no-repository": ({"image": {"repository": None}}, "$.image"),
    "repository-without-registry": ({"image": {"repository": "catalog"}}, "$.image.repository"),
    "typo-top-level": ({"replica": 3}, "$"),
    "typo-nested": ({"autoscaling": {"minReplica": 3}}, "$.autoscaling"),
    "vpa-off-unquoted-is-a-boolean": (
        {"verticalAutoscaling": {"updateMode": False}},
        "$.verticalAutoscaling.updateMode",
    ),
    "vpa-auto-deprecated": (
        {"verticalAutoscaling": {"updateMode": "Auto"}},
        "$.verticalAutoscaling.updateMode",
    ),
    "active-vpa-and-hpa-memory-target": (
        {
            "verticalAutoscaling": {"updateMode": "Initial"},
            "autoscaling": {"targetMemoryUtilizationPercentage": 80},
        },
        "$.autoscaling",
    ),
    "active-vpa-controls-cpu-under-hpa": (
        {"verticalAutoscaling": {"updateMode": "Recreate", "controlledResources": ["cpu", "memory"]}},
        "$.verticalAutoscaling.controlledResources",
    ),
    "memory-in-millibytes": ({"resources": {"limits": {"memory": "256m"}}}, "$.resources.limits.memory"),
    "no-memory-limit": ({"resources": {"limits": {"memory": None}}}, "$.resources.limits"),
    "privileged-port": ({"containerPort": 80}, "$.containerPort"),
    "root-user": ({"podSecurityContext": {"runAsUser": 0}}, "$.podSecurityContext.runAsUser"),
    "env-overrides-port": ({"env": {"PORT": "9090"}}, "$.env"),
    "pdb-min-available": ({"podDisruptionBudget": {"minAvailable": 2}}, "$.podDisruptionBudget"),
    "security-context-is-not-a-value": ({"securityContext": {"privileged": True}}, "$"),
}


@pytest.mark.parametrize(("override", "where"), INVALID_VARIANTS.values(), ids=INVALID_VARIANTS.keys())
def test_the_schema_rejects_bad_values_at_the_right_key(override: dict[str, Any], where: str) -> None:
    values = helm_merge(chart_values(ROOT / "services" / SERVICES[0] / "deploy" / "dev.yaml"), override)
    errors = schema_errors(values)
    assert errors, f"accepted: {override}"
    assert where in {e.json_path for e in errors}, [f"{e.json_path}: {e.message}" for e in errors]


####################################################################################################
# (c) The GitOps tree


@pytest.mark.parametrize("app_file", APP_FILES, ids=rel)
def test_every_application_validates_against_the_argocd_crd(app_file: Path) -> None:
    docs = list(yaml.safe_load_all(app_file.read_text()))
    assert len(docs) == 1, "one Application per file"
    assert docs[0]["kind"] == "Application"
    validate_custom_resource(docs[0])


@pytest.mark.parametrize("app_file", APP_FILES, ids=rel)
def test_applications_follow_the_delivery_conventions(app_file: Path) -> None:
    env, service = app_file.parent.name, app_file.stem
    app = load(app_file)
    assert env in ENVIRONMENTS
    assert app["metadata"]["name"] == service and app["metadata"]["namespace"] == "argocd"
    assert "resources-finalizer.argocd.argoproj.io" in app["metadata"]["finalizers"]
    spec = app["spec"]
    assert spec["project"] == "microservices"
    assert spec["destination"] == {"server": IN_CLUSTER, "namespace": service}
    sync = spec["syncPolicy"]
    assert sync["automated"] == {"prune": True, "selfHeal": True}
    assert "ServerSideApply=true" in sync["syncOptions"]
    # The platform creates the namespace (Pod Security `restricted`) and the microservices project
    # denies cluster-scoped resources: an Application that created it would fail or fight Pulumi.
    assert not any(option.startswith("CreateNamespace=") for option in sync["syncOptions"])
    assert "managedNamespaceMetadata" not in sync
    assert sync["retry"]["limit"] >= 1 and sync["retry"]["backoff"]["factor"] >= 2
    source = spec["source"]
    assert source["path"] == "charts/microservice" and source["targetRevision"] == "main"
    assert source["helm"]["releaseName"] == service


@pytest.mark.parametrize("app_file", APP_FILES, ids=rel)
def test_each_application_reads_its_own_services_values_for_its_environment(app_file: Path) -> None:
    env, service = app_file.parent.name, app_file.stem
    source = load(app_file)["spec"]["source"]
    chart_dir = ROOT / source["path"]
    assert (chart_dir / "Chart.yaml").is_file()
    assert len(source["helm"]["valueFiles"]) == 1
    # ArgoCD resolves value files relative to the chart's folder and keeps them inside the repository.
    resolved = (chart_dir / source["helm"]["valueFiles"][0]).resolve()
    assert resolved.is_relative_to(ROOT) and resolved.is_file(), resolved
    assert resolved == ROOT / "services" / service / "deploy" / f"{env}.yaml"
    assert not source["helm"].get("ignoreMissingValueFiles", False)


def test_one_repository_url_everywhere() -> None:
    urls = {load(p)["spec"]["source"]["repoURL"] for p in APP_FILES}
    assert len(urls) == 1
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+\.git", urls.pop())


def test_the_gitops_tree_deploys_every_service_to_every_environment_and_nothing_else() -> None:
    deployed = {(p.parent.name, p.stem) for p in APP_FILES}
    assert deployed == {(env, service) for env in ENVIRONMENTS for service in SERVICES}
    assert {p.name for p in GITOPS.iterdir() if p.is_dir()} == set(ENVIRONMENTS)


####################################################################################################
# (d) The chart rendered and linted by Helm's own engine (helm-python-sdk, in-process: no binary)

KUBE_VERSION = "1.35.0"  # cluster.kubernetesVersion of both stacks


def render(
    values_file: Path, release: str, chart: Path = CHART, change: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    values = helm_merge(load(values_file), change or {})
    with helm_python.Chart.load(chart) as loaded:
        return render_chart(loaded, values, release=release, namespace=release, kube_version=KUBE_VERSION)


@pytest.mark.parametrize("deploy_file", DEPLOY_FILES, ids=rel)
def test_chart_lints_with_each_services_values(deploy_file: Path) -> None:
    report = helm_python.lint(
        CHART,
        load(deploy_file),
        strict=True,
        namespace=deploy_file.parent.parent.name,
        kube_version=KUBE_VERSION,
    )
    assert report["errors"] == [], report["messages"]


@pytest.mark.parametrize("deploy_file", DEPLOY_FILES, ids=rel)
def test_chart_renders_valid_autoscaling_and_monitoring_objects(deploy_file: Path) -> None:
    service = deploy_file.parent.parent.name
    values = chart_values(deploy_file)
    rendered = render(deploy_file, service)
    objects = {doc["kind"]: doc for doc in rendered}
    assert set(objects) == {
        "Deployment",
        "Service",
        "ServiceAccount",
        "HorizontalPodAutoscaler",
        "VerticalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "NetworkPolicy",
    }

    vpa, monitor, hpa = (
        objects["VerticalPodAutoscaler"],
        objects["ServiceMonitor"],
        objects["HorizontalPodAutoscaler"],
    )
    validate_custom_resource(vpa)
    validate_custom_resource(monitor)
    assert vpa["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert vpa["spec"]["updatePolicy"]["updateMode"] == values["verticalAutoscaling"]["updateMode"]
    (policy,) = vpa["spec"]["resourcePolicy"]["containerPolicies"]
    assert policy["controlledResources"] == vpa_controlled_resources(values)
    if values["verticalAutoscaling"]["updateMode"] != "Off":
        assert "cpu" not in policy["controlledResources"]

    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == service
    assert hpa["spec"]["minReplicas"] == values["autoscaling"]["minReplicas"]
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == hpa_resources(values)

    assert monitor["spec"]["selector"]["matchLabels"] == objects["Service"]["spec"]["selector"]
    assert monitor["spec"]["endpoints"][0]["port"] == objects["Service"]["spec"]["ports"][0]["name"]

    deployment = objects["Deployment"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{values['image']['repository']}:{values['image']['tag']}"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container)
    assert {"requests", "limits"} <= set(container["resources"])
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_chart_refuses_to_render_a_vpa_that_fights_the_hpa(tmp_path: Path) -> None:
    deploy_file = ROOT / "services" / SERVICES[0] / "deploy" / "dev.yaml"
    conflict = {"verticalAutoscaling": {"updateMode": "Recreate", "controlledResources": ["cpu"]}}
    with pytest.raises(RenderError, match="controlledResources"):  # the schema rejects it
        render(deploy_file, SERVICES[0], change=conflict)
    # and without the schema, the template's own `fail` does
    unchecked = tmp_path / "microservice"
    shutil.copytree(CHART, unchecked, ignore=shutil.ignore_patterns("values.schema.json"))
    with pytest.raises(RenderError, match="which the HPA scales on"):
        render(deploy_file, SERVICES[0], unchecked, conflict)


####################################################################################################
# (e) Dockerfiles


def dockerfile_instructions(service: str) -> list[tuple[str, str]]:
    text = (ROOT / "services" / service / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_is_multi_stage_from_pinned_base_images(service: str) -> None:
    stages: list[str] = []
    froms = [args for op, args in dockerfile_instructions(service) if op == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    for args in froms:
        match = re.fullmatch(
            r"(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?", args, re.IGNORECASE
        )
        assert match and match["stage"], f"every stage is named (FROM ... AS name): {args}"
        image = match["image"]
        if image not in stages:
            assert "$" not in image, f"the base image is written out, not an ARG: {image}"
            name, _, tag = image.partition("@")[0].rpartition(":")
            assert name and tag and tag.lower() != "latest", f"{image}: pin an exact tag (or a digest)"
            assert re.search(r"\d+\.\d+\.\d+", tag), f"{image}: an exact version, not a floating one"
        stages.append(match["stage"])
    assert any("--from=" in args for op, args in dockerfile_instructions(service) if op == "COPY")


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_runs_as_the_numeric_non_root_user_the_chart_expects(service: str) -> None:
    instructions = dockerfile_instructions(service)
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    users = [args for op, args in instructions[last_from:] if op == "USER"]
    assert users, "the runtime stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit()), (
        f"numeric non-root USER, got {users[-1]}"
    )
    entrypoint = [args for op, args in instructions[last_from:] if op in {"ENTRYPOINT", "CMD"}]
    assert entrypoint and all(json.loads(args) for args in entrypoint), "exec form: no shell at run time"
    exposed = [int(args) for op, args in instructions[last_from:] if op == "EXPOSE"]
    for env in ENVIRONMENTS:
        values = chart_values(ROOT / "services" / service / "deploy" / f"{env}.yaml")
        assert values["podSecurityContext"]["runAsUser"] == int(uid)
        assert exposed == [values["containerPort"]]


@pytest.mark.parametrize("service", SERVICES)
def test_dockerignore_keeps_tests_and_deploy_values_out_of_the_build_context(service: str) -> None:
    ignore = [
        line.strip() for line in (ROOT / "services" / service / ".dockerignore").read_text().splitlines()
    ]
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "*", "an allow-list: everything is excluded, then what the image needs is re-included"
    assert not any(rule.lstrip("!").startswith(("tests", "deploy")) for rule in rules if rule.startswith("!"))


def test_the_docs_say_which_service_fields_exist_and_that_no_service_gets_an_aws_role(
    plan: PlanResult, configs: dict[str, Any]
) -> None:
    """docs/delivery.md "AWS access for a service" lists ServiceConfig's fields and says the platform
    makes no Pod Identity association for a service: both stay true, or the doc changes with them."""
    from stacks.delivery import ServiceConfig

    text = (ROOT / "docs" / "delivery.md").read_text()
    listed = re.search(r"<!-- service-fields -->(.*?)<!-- /service-fields -->", text, re.S)
    assert listed is not None
    fields = [f.alias for f in ServiceConfig.model_fields.values()]
    assert re.findall(r"`([A-Za-z]+)`", listed[1]) == fields
    services = {s.name for s in configs[plan.stack].delivery.services}
    bound = {
        r.get("namespace") for r in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    }
    assert not services & bound, "a service has an association: rewrite docs/delivery.md's section"


def codeowners_owner(path: str) -> list[str]:
    """The owners .github/CODEOWNERS gives `path` (repository-relative): the last matching line.
    The file uses three pattern kinds only, checked here: `*`, a folder `/dir/`, a file `/file`."""
    owners: list[str] = []
    for line in (ROOT / ".github" / "CODEOWNERS").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pattern, *who = line.split()
        assert pattern == "*" or pattern.startswith("/"), (
            f"CODEOWNERS: {pattern} is not a kind this test reads"
        )
        assert "*" not in pattern[1:] and who, f"CODEOWNERS: {line}"
        anchored = pattern[1:]
        if pattern == "*" or (anchored.endswith("/") and path.startswith(anchored)) or path == anchored:
            owners = who
    return owners


@pytest.mark.parametrize("service", SERVICES)
def test_the_files_a_services_ci_roles_trust_are_owned_by_its_team(service: str) -> None:
    """Review is what keeps a change from pushing as the service (its roles trust these files:
    components/registry.py service_workflows); what runs inside its credentialed jobs belongs to
    the platform team, not to any one service."""
    from components.registry import service_workflows

    team = codeowners_owner(f"services/{service}/Dockerfile")
    assert team and team != codeowners_owner("Makefile"), f"services/{service}/ has its own owners"
    for workflow in service_workflows("o/r", service, "main"):
        path = ".github/workflows/" + workflow.split("/.github/workflows/")[1].split("@")[0]
        assert codeowners_owner(path) == team, path
    assert codeowners_owner(f"services/{service}/deploy/prod.yaml") == team, "its tag-bump pull requests"
    platform = codeowners_owner("Makefile")
    for shared in [*ACTION_FILES, ROOT / ".github" / "scripts" / "set_image_tag.py"]:
        assert codeowners_owner(rel(shared)) == platform, rel(shared)
    for reusable in ("build-service.yml", "propose-tag.yml"):
        assert codeowners_owner(f".github/workflows/{reusable}") == platform


def test_no_image_build_uses_the_shared_actions_cache() -> None:
    """GitHub's Actions cache is shared by every workflow of a branch: a `type=gha` build cache
    let any workflow on main plant layers that a service's credentialed job would push with its
    role (cache poisoning). Builds start from the Dockerfile, scanned and pushed alike."""
    steps = [s for _, _, job in workflow_jobs() for s in job.get("steps", [])]
    steps += [s for path in ACTION_FILES for s in load(path)["runs"]["steps"]]
    builds = [s["with"] for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    assert len(builds) >= 2
    for build in builds:
        assert "cache-from" not in build and "cache-to" not in build and build["no-cache"] is True
    assert not [s for s in steps if s.get("uses", "").startswith("actions/cache@")], "no shared cache at all"
