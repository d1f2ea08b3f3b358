"""The infrastructure repository's own CI: infra-ci.yml, integration.yml, dependabot.yml, plan_summary.py.

Offline: the workflows and Dependabot's config are checked against check-jsonschema's built-in
(vendored) schemas, and the plan summary script runs on a plan the offline engine produces here.
Delivery workflows (build, promote) are covered in more depth by test_delivery.py.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.records import PlanResult
from tests.conftest import cli_reads_session_plans
from tests.workflow_steps import job_step, read_role, run_step, yq_reader
from tools import new_service
from tools.mocks import ROOT, stack_names

GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
ACTIONS = GITHUB / "actions"
ACTION_FILES = sorted(ACTIONS.glob("*/action.yml"))
SUMMARY_SCRIPT = GITHUB / "scripts" / "plan_summary.py"
STACKS = stack_names()
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "Dockerfile").is_file())
SHA_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    return dict(workflow[True])  # PyYAML reads the key `on` as the boolean True


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def action_steps(name: str) -> list[dict[str, Any]]:
    return list(load(ACTIONS / name / "action.yml")["runs"]["steps"])


def all_uses() -> list[tuple[str, str]]:
    """Every `uses:` (job level and step level, in workflows and local actions) with its file."""
    found = []
    for path in WORKFLOW_FILES:
        for job in load(path)["jobs"].values():
            found += [(path.name, job["uses"])] if "uses" in job else []
            found += [(path.name, step["uses"]) for step in steps(job) if "uses" in step]
    for path in ACTION_FILES:
        found += [
            (path.parent.name, step["uses"]) for step in action_steps(path.parent.name) if "uses" in step
        ]
    return found


def check_jsonschema(schema: str, *files: Path) -> tuple[int, str]:
    """`check-jsonschema --builtin-schema <schema> <files>`: the click command `python -m
    check_jsonschema` runs, invoked in this process (no interpreter of its own: about 0.2 s of CPU
    less a call). Its exit code, and its output with any exception it raised."""
    from check_jsonschema import main  # type: ignore[import-untyped]
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--builtin-schema", schema, *map(str, files)])
    return result.exit_code, f"{result.output}{result.exception or ''}"


####################################################################################################
# Schemas and pinning (every workflow)


def test_the_ci_files_exist() -> None:
    assert {p.name for p in WORKFLOW_FILES} >= {"infra-ci.yml", "integration.yml"}
    assert (GITHUB / "dependabot.yml").is_file() and SUMMARY_SCRIPT.is_file()
    assert {"dev", "prod"} <= set(STACKS)


def test_every_workflow_validates_against_the_github_workflow_schema() -> None:
    code, output = check_jsonschema("vendor.github-workflows", *WORKFLOW_FILES)
    assert code == 0, output


def test_dependabot_config_validates_and_covers_actions_python_and_service_images() -> None:
    code, output = check_jsonschema("vendor.dependabot", GITHUB / "dependabot.yml")
    assert code == 0, output
    updates = {u["package-ecosystem"]: u for u in load(GITHUB / "dependabot.yml")["updates"]}
    assert set(updates) == {"github-actions", "pip", "docker"}
    # Workflows (`/`) and every local composite action, each listed (dependabot-core#6704).
    listed = set(updates["github-actions"]["directories"])
    assert listed == {"/", *(f"/{p.parent.relative_to(ROOT).as_posix()}" for p in ACTION_FILES)}
    assert updates["pip"]["directory"] == "/" and (ROOT / "requirements.txt").is_file()
    docker_dirs = updates["docker"].get("directories") or [updates["docker"]["directory"]]
    for service in SERVICES:
        assert any(Path(f"/services/{service}").match(d) for d in docker_dirs), service
    assert all(u["cooldown"]["default-days"] >= 3 for u in updates.values()), "new releases age first"


def test_every_action_is_pinned_to_a_commit_sha_and_to_one_sha_per_action() -> None:
    pins: dict[str, set[str]] = defaultdict(set)
    for file, uses in all_uses():
        if uses.startswith("./"):
            local = ROOT / uses
            assert local.is_file() or (local / "action.yml").is_file(), f"{file}: {uses} does not exist"
            continue
        assert SHA_PINNED.match(uses), f"{file}: {uses} is not pinned to a 40-hex commit SHA"
        action, _, sha = uses.partition("@")
        pins[action].add(sha)
    # One SHA per action everywhere: new workflows reuse the pins the others already have.
    assert {action: shas for action, shas in pins.items() if len(shas) > 1} == {}
    assert len(pins) >= 8


def test_no_workflow_holds_long_lived_cloud_keys() -> None:
    for path in WORKFLOW_FILES:
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path.name


def test_only_the_workflows_that_reach_aws_may_request_an_oidc_token() -> None:
    # The services' own files: the jobs their CI roles trust (job_workflow_ref) are defined there.
    allowed = {"integration.yml"} | {f"{s}.yml" for s in SERVICES} | {f"{s}-promote.yml" for s in SERVICES}
    with_oidc = {
        path.name
        for path in WORKFLOW_FILES
        for job in load(path)["jobs"].values()
        if job.get("permissions", {}).get("id-token") == "write"
    }
    assert with_oidc <= allowed and "integration.yml" in with_oidc and "infra-ci.yml" not in with_oidc


####################################################################################################
# infra-ci.yml: make test and the offline plans on every pull request


@pytest.fixture(scope="module")
def infra_ci() -> dict[str, Any]:
    return dict(load(WORKFLOWS / "infra-ci.yml"))


def test_infra_ci_runs_on_pull_requests_and_main(infra_ci: dict[str, Any]) -> None:
    on = triggers(infra_ci)
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    assert "${{ github.ref }}" in infra_ci["concurrency"]["group"]


def test_infra_ci_is_read_only(infra_ci: dict[str, Any]) -> None:
    assert infra_ci["permissions"] == {}
    for name, job in infra_ci["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, name
    assert "id-token" not in json.dumps(infra_ci)
    assert "secrets." not in (WORKFLOWS / "infra-ci.yml").read_text(), "offline: no credential at all"


def test_infra_ci_runs_make_test_then_plans_each_stack_into_the_summary(
    infra_ci: dict[str, Any], tmp_path: Path
) -> None:
    """The plan steps find the stacks from the Pulumi.*.yaml files: run them with a third stack file
    and a stand-in `make` that records its arguments and writes the plan file."""
    (job,) = infra_ci["jobs"].values()
    runs = [step.get("run", "") for step in steps(job)]
    test_at = next(i for i, run in enumerate(runs) if run.strip() == "make test")
    plan_at = next(i for i, run in enumerate(runs) if "make plan" in run)
    summary_at = next(i for i, run in enumerate(runs) if "plan_summary.py" in run)
    assert test_at < plan_at < summary_at
    extra = "ci-third-stack"  # a name no stack file of the repository uses
    assert extra not in STACKS
    for stack in [*STACKS, extra]:
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "make").write_text('#!/bin/sh\necho "$*" >> calls.txt\necho "{}" > "${3#JSON=}"\n')
    (fake / "python").write_text('#!/bin/sh\necho "summary of $*"\n')
    for tool in ("make", "python"):
        (fake / tool).chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    for index in (plan_at, summary_at):
        result = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", runs[index]],
            cwd=tmp_path,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    stacks = sorted([*STACKS, extra])
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls == [f"plan STACK={s} JSON=plan-{s}.json" for s in stacks]
    summary = (tmp_path / "summary.md").read_text()
    assert summary.strip() == "summary of .github/scripts/plan_summary.py " + " ".join(
        f"plan-{s}.json" for s in stacks
    )
    upload = next(s for s in steps(job) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert set(upload["with"]["path"].split()) == {"plan-*.json", "plan-*.txt"}


def test_infra_ci_uses_the_projects_python(infra_ci: dict[str, Any]) -> None:
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"]
    (job,) = infra_ci["jobs"].values()
    setup = next(s for s in steps(job) if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == f"{target[2]}.{target[3:]}"  # py311 -> 3.11


####################################################################################################
# integration.yml: weekly ephemeral stacks with OIDC credentials


@pytest.fixture(scope="module")
def integration() -> dict[str, Any]:
    return dict(load(WORKFLOWS / "integration.yml"))


def test_integration_runs_weekly_and_on_demand_never_two_at_once(integration: dict[str, Any]) -> None:
    on = triggers(integration)
    assert "workflow_dispatch" in on
    (schedule,) = on["schedule"]
    _minute, _hour, day, month, weekday = schedule["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "once a week"
    assert integration["concurrency"]["group"] == "integration"
    assert integration["concurrency"]["cancel-in-progress"] is False, "never cancel a run mid-destroy"


def test_integration_gets_aws_through_oidc_only(integration: dict[str, Any]) -> None:
    assert integration["permissions"] == {}
    (job,) = integration["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    (creds,) = [s for s in steps(job) if "configure-aws-credentials@" in s.get("uses", "")]
    assert creds["with"]["role-to-assume"] == "${{ vars.INTEGRATION_ROLE_ARN }}"
    # The session outlives the job: a destroy must not lose its credentials halfway.
    assert int(creds["with"]["role-duration-seconds"]) >= job["timeout-minutes"] * 60


def test_integration_tests_then_always_cleans_up_within_a_timeout(integration: dict[str, Any]) -> None:
    (job,) = integration["jobs"].values()
    assert 60 <= job["timeout-minutes"] <= 180
    names = [s.get("run", "").strip() for s in steps(job)]
    tests, cleanup = steps(job)[names.index("make integration")], steps(job)[-1]
    assert cleanup["run"].strip().startswith("make it-cleanup") and cleanup["if"] == "always()"
    assert names.index("make integration") < len(names) - 1
    # The test step stops early enough for the cleanup to run inside the job's timeout.
    assert tests["timeout-minutes"] + cleanup["timeout-minutes"] < job["timeout-minutes"]


def test_integration_pins_its_tools_and_uses_the_configured_backend(integration: dict[str, Any]) -> None:
    requirements = (ROOT / "requirements.txt").read_text()
    sdk = re.search(r"^pulumi==(\S+)$", requirements, re.MULTILINE)
    assert sdk and integration["env"]["PULUMI_VERSION"] == sdk[1], "the CLI matches the pinned SDK"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", integration["env"]["KUBECTL_VERSION"])
    (job,) = integration["jobs"].values()
    text = scripts(job)
    assert '--version "$PULUMI_VERSION"' in text and "sha256sum --check" in text
    login = next(s for s in steps(job) if "pulumi login" in s.get("run", ""))
    assert login["env"]["BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert login["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


####################################################################################################
# .github/scripts/plan_summary.py on a real offline plan


@pytest.fixture(scope="module")
def dev_plan(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    from tools.plan import main as plan

    path = tmp_path_factory.mktemp("plans") / "plan-dev.json"
    with pytest.MonkeyPatch.context() as mp:
        cli_reads_session_plans(mp, request)
        assert plan(["--stack", "dev", "--json", str(path), "--quiet"]) == 0
    return path


def summarise(*paths: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(SUMMARY_SCRIPT), *map(str, paths)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)


def test_plan_summary_reports_totals_protection_and_capacity(dev_plan: Path) -> None:
    plan = json.loads(dev_plan.read_text())
    result = summarise(dev_plan)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    resources = plan["resources"]
    custom = sum(r["custom"] for r in resources)
    protected = sum(r["protect"] for r in resources)
    assert f"## Offline plan: `{plan['project']}` / `dev`" in out
    assert f"**{len(resources)} resources** ({custom} custom, {len(resources) - custom} components)" in out
    assert f"**{protected} protected**" in out
    cap = plan["capacity"]
    capacity_line = next(line for line in out.splitlines() if line.startswith("**IP capacity:**"))
    assert f"max nodes {cap['maxNodes']:,}" in capacity_line
    assert f"max pods {cap['maxPods']:,}" in capacity_line
    assert f"pod IPs needed {cap['requiredIps']:,} of {cap['usableIps']:,} usable" in capacity_line
    for zone, cidr in cap["privateSubnets"].items():
        assert f"| {zone} | `{cidr}` | {cap['freeIpsPerAz'][zone]:,} |" in out
    rows = dict(re.findall(r"^\| `([^`]+)` \| (\d+) \|", out, re.MULTILINE))
    assert sum(map(int, rows.values())) == len(resources), "the by-type table adds up to the total"
    # One repository per `delivery.services` entry of the stack file (the platform side of a new
    # service lands before its code and Dockerfile: platform/gitops/README.md, commit 1).
    config = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    entries = config["eks-platform:delivery"]["services"]
    assert int(rows["aws:ecr/repository:Repository"]) == len(entries)
    assert ("Policy findings" in out) is ("findings" in plan), (
        "a findings section exactly when the plan has one"
    )


def test_plan_summary_counts_policy_findings_by_level(dev_plan: Path, tmp_path: Path) -> None:
    plan = copy.deepcopy(json.loads(dev_plan.read_text()))
    urn = plan["resources"][0]["urn"]
    plan["findings"] = [
        {"rule": "eks-01", "level": "mandatory", "urn": urn, "message": "a | b"},
        {"rule": "ecr-02", "level": "advisory", "urn": urn, "message": "x"},
        {"rule": "ecr-03", "level": "advisory", "urn": None, "message": "y"},
    ]
    path = tmp_path / "with-findings.json"
    path.write_text(json.dumps(plan))
    result = summarise(path)
    assert result.returncode == 0, result.stderr
    assert "**Policy findings:** ❌ 1 mandatory · 2 advisory" in result.stdout
    assert "| mandatory | `eks-01` |" in result.stdout and "a \\| b" in result.stdout
    plan["findings"] = []
    path.write_text(json.dumps(plan))
    assert "**Policy findings:** ✅ 0 mandatory · 0 advisory" in summarise(path).stdout


def test_plan_summary_fails_on_a_missing_or_foreign_file(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"resources": []}')
    result = summarise(tmp_path / "absent.json", foreign)
    assert result.returncode == 2
    assert result.stdout.count("**No plan document**") == 2 and "missing project, stack" in result.stdout


####################################################################################################
# Pulumi Deployments: only a change to what the program reads deploys a stack


def test_deployments_deploy_on_infrastructure_changes_only() -> None:
    from fnmatch import fnmatch

    from components.deployments import deploy_paths

    paths = deploy_paths(".", "dev")

    def deploys(file: str) -> bool:
        return any(fnmatch(file, pattern) for pattern in paths)

    program = ["__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml", "requirements.txt"]
    program += [
        str(p.relative_to(ROOT))
        for d in ("components", "stacks", "platform")
        for p in (ROOT / d).rglob("*.*")
    ]
    assert all(deploys(file) for file in program), [f for f in program if not deploys(f)]
    # A tag-bump merge changes only services/<name>/deploy/<env>.yaml: ArgoCD's, not Pulumi's.
    bumps = [str(p.relative_to(ROOT)) for p in ROOT.glob("services/*/deploy/*.yaml")]
    assert bumps and not any(deploys(file) for file in bumps)
    assert (
        not deploys("Pulumi.prod.yaml")
        and not deploys("README.md")
        and not deploys(".github/workflows/x.yml")
    )
    assert deploy_paths("infra/", "prod")[0].startswith(
        "infra/"
    ) and "infra/Pulumi.prod.yaml" in deploy_paths("infra", "prod")


####################################################################################################
# Delivery: every pushed platform scanned, pull requests without GITOPS_TOKEN, the account model


def test_every_platform_the_build_pushes_is_scanned() -> None:
    build = load(WORKFLOWS / "build-service.yml")
    push = load(ACTIONS / "push-image" / "action.yml")
    pushed = push["inputs"]["platforms"]["default"].split(",")
    scan = build["jobs"]["scan"]
    assert sorted(scan["strategy"]["matrix"]["platform"]) == sorted(pushed)
    built = next(s for s in steps(scan) if s.get("uses", "").startswith("docker/build-push-action@"))
    assert built["with"]["platforms"] == "${{ matrix.platform }}" and built["with"]["load"] is True
    assert any(s.get("uses", "").startswith("aquasecurity/trivy-action@") for s in steps(scan))
    # The push action refuses a platform the matrix did not scan.
    check = action_steps("push-image")[0]
    assert check["env"]["PLATFORMS"] == "${{ inputs.platforms }}" and "is not scanned" in check["run"]


def test_a_refused_pull_request_names_the_repository_setting() -> None:
    (bump,) = load(WORKFLOWS / "propose-tag.yml")["jobs"].values()
    push = next(s for s in steps(bump) if "gh pr create" in s.get("run", ""))
    assert push["env"]["HAS_GITOPS_TOKEN"] == "${{ secrets.GITOPS_TOKEN != '' }}"
    assert 'if [ "$HAS_GITOPS_TOKEN" != "true" ]' in push["run"]
    assert "Allow GitHub Actions to create and approve pull requests" in push["run"]


def test_separate_accounts_by_default_one_shared_account_by_config(
    monkeypatch: pytest.MonkeyPatch, plans: dict[str, PlanResult], identity_plans: dict[str, PlanResult]
) -> None:
    from stacks import identity
    from tools.mocks import run_program, stack_config
    from tools.plan import run_identity

    providers = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    prod, _secret_keys = stack_config("prod")
    # GitHub's in the platform stack, Pulumi's in its identity project (identity/): the session's
    # plans of the committed prod stack file.
    own = [*plans["prod"].of_type(providers), *identity_plans["prod"].of_type(providers)]
    assert len(own) == 2, "its own account: its own providers"
    delivery, deployments = (
        json.loads(prod["eks-platform:delivery"]),
        json.loads(prod["eks-platform:deployments"]),
    )
    delivery["githubOidcProviderArn"] = (
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    )
    deployments["pulumiOidcProviderArn"] = "arn:aws:iam::123456789012:oidc-provider/api.pulumi.com/oidc"
    shared = {**prod, "eks-platform:delivery": json.dumps(delivery)}
    shared["eks-platform:deployments"] = json.dumps(deployments)
    read = identity.read_yaml

    def reusing(path: Path) -> Any:
        document = read(path)
        if path.name == "Pulumi.prod.yaml":
            document["config"]["eks-platform:deployments"] = deployments
        return document

    monkeypatch.setattr(identity, "read_yaml", reusing)
    reused = [*run_program("prod", shared).of_type(providers), *run_identity("prod").of_type(providers)]
    assert reused == [], "shared account: dev's providers reused"
    comment = (ROOT / "Pulumi.prod.yaml").read_text()
    assert "own AWS account (recommended)" in comment
    assert "githubOidcProviderArn" in comment and "pulumiOidcProviderArn" in comment
    assert (
        "separate AWS accounts is the recommended model"
        in (ACTIONS / "promote-image" / "action.yml").read_text()
    )


####################################################################################################
# Promotion to any stack: dev's image into prod or into a stack `make new-stack` added


ARN = "arn:aws:iam::210987654321:role/eks-platform-{stack}-registry-{service}-ci"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_promotes_to_every_stack_but_dev(service: str) -> None:
    """The stack is an input of the promote workflow, a choice of every stack that is not dev."""
    workflow = load(WORKFLOWS / f"{service}-promote.yml")
    stack = triggers(workflow)["workflow_dispatch"]["inputs"]["stack"]
    assert stack["type"] == "choice" and stack["default"] == new_service.PROMOTE_STACK
    assert stack["options"] == new_service.promotion_targets(STACKS) == sorted(set(STACKS) - {"dev"})
    promote = workflow["jobs"]["promote"]
    copy = next(s for s in steps(promote) if s.get("uses") == "./.github/actions/promote-image")
    assert promote["needs"] == "role" and copy["with"]["stack"] == "${{ inputs.stack }}"
    assert copy["with"]["target-role-to-assume"] == "${{ needs.role.outputs.arn }}"
    assert workflow["jobs"]["bump"]["with"]["stack"] == "${{ inputs.stack }}"
    assert workflow["concurrency"]["group"] == f"{service}-promote-${{{{ inputs.stack }}}}"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("stack", sorted({*STACKS, "staging", "eu-central"} - {"dev"}))
def test_the_promote_workflow_reads_the_role_variable_of_service_and_stack(
    service: str, stack: str, tmp_path: Path
) -> None:
    """<SERVICE>_<STACK>_CI_ROLE_ARN ('-' as '_'), for any stack, a new one included: the variable
    `make new-stack` prints. A missing variable fails the run, naming it."""
    variable = new_service.role_variable(service, stack)
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", variable), "a name GitHub accepts for a variable"
    promote = WORKFLOWS / f"{service}-promote.yml"
    role = load(promote)["jobs"]["role"]
    assert role["permissions"] == {} and "uses" not in json.dumps(role["steps"])
    arn = ARN.format(stack=stack, service=service)
    others = {new_service.role_variable(service, "dev"): ARN.format(stack="dev", service=service)}
    code, found, _ = read_role(promote, stack, {**others, variable: arn}, tmp_path)
    assert (code, found) == (0, arn)
    code, found, _ = read_role(promote, stack, {**others, variable.lower(): arn}, tmp_path)
    assert (code, found) == (0, arn), "variable names are not case-sensitive"
    code, found, printed = read_role(promote, stack, others, tmp_path)
    assert code == 1 and not found
    assert f"::error::no repository variable {variable}:" in printed and f"ciRoleArns.{service}" in printed


def test_promotion_copies_into_and_bumps_the_stack_it_is_given(tmp_path: Path) -> None:
    """Nothing names prod: the target's repository comes from deploy/<stack>.yaml, its role from
    the caller, and the pull request bumps deploy/<stack>.yaml on a branch per service and stack."""
    action = load(ACTIONS / "promote-image" / "action.yml")
    inputs = action["inputs"]
    assert inputs["stack"]["required"] is True and "default" not in inputs["stack"]
    assert inputs["target-role-to-assume"]["required"] is True and "prod-role-to-assume" not in inputs
    assert "prod" not in json.dumps(action["runs"]), "the target is the input `stack`, never a literal"
    (bump,) = load(WORKFLOWS / "propose-tag.yml")["jobs"].values()
    assert "prod" not in json.dumps(bump)
    assert bump["concurrency"]["group"] == "gitops-bump-${{ inputs.service }}-${{ inputs.stack }}"
    values = "services/${{ inputs.service }}/deploy/${{ inputs.stack }}.yaml"
    assert [s["env"]["VALUES_FILE"] for s in steps(bump) if "VALUES_FILE" in s.get("env", {})] == [values] * 2
    assert 'branch="gitops/$SERVICE-$STACK"' in scripts(bump)

    # The resolve step, on deploy files of dev and of a stack that is neither dev nor prod.
    deploy = tmp_path / "services" / "catalog" / "deploy"
    deploy.mkdir(parents=True)
    registry = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
    tag = "a" * 40
    for stack in ("dev", "staging"):
        (deploy / f"{stack}.yaml").write_text(
            f"image:\n  repository: {registry}/eks-platform-{stack}/catalog\n  tag: '{tag}'\n"
        )
    resolve = job_step(action["runs"], "resolve")
    env, yq = {"SERVICE": "catalog", "STACK": "staging", "TAG": tag}, yq_reader(tmp_path / "bin")
    done, outputs = run_step(resolve, env, tmp_path, path=yq)
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs["target-repository"] == "eks-platform-staging/catalog"
    assert outputs["dev-repository"] == "eks-platform-dev/catalog"
    done, _ = run_step(resolve, {**env, "STACK": "qa"}, tmp_path, path=yq)
    assert done.returncode == 1 and "services/catalog/deploy/qa.yaml not found" in done.stdout


@pytest.mark.parametrize(
    ("stack", "target_role", "error"),
    [
        ("staging", ARN, ""),
        ("staging", "", "set the repository variable CATALOG_STAGING_CI_ROLE_ARN to stack staging's"),
        ("eu-central", "", "set the repository variable CATALOG_EU_CENTRAL_CI_ROLE_ARN"),
        ("dev", ARN, "dev is the source of every promotion, not a target"),
        ("Staging", ARN, "stack must be a DNS label"),
    ],
    ids=["staging", "no-staging-role", "no-eu-central-role", "dev", "not-a-label"],
)
def test_promotion_checks_the_stack_and_its_role(
    stack: str, target_role: str, error: str, tmp_path: Path
) -> None:
    check = job_step(load(ACTIONS / "promote-image" / "action.yml")["runs"], "check")
    env = {
        "SERVICE": "catalog",
        "STACK": stack,
        "TAG": "a" * 40,
        "DEV_ROLE": ARN.format(stack="dev", service="catalog"),
        "TARGET_ROLE": target_role.format(stack=stack, service="catalog"),
        "REF": "refs/heads/main",
        "BASE": "main",
        "RUN_ID": "12345678901",
    }
    done, outputs = run_step(check, env, tmp_path)
    if not error:
        assert done.returncode == 0, done.stdout
        assert outputs["target-session"] == f"gha-promote-12345678901-{stack}-catalog"
        assert all(len(outputs[f"{side}-session"]) <= 64 for side in ("dev", "target"))
    else:
        assert done.returncode == 1 and error in done.stdout, done.stdout
