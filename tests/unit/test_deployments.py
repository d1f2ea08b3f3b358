"""The identity project (identity/): the deploy role, Pulumi's OIDC trust, the agent pool and the
Deployments settings of both stacks under mocks; the platform stack creates none of them."""

from __future__ import annotations

import json
import re

import pytest

from model.records import PlanResult, Registration
from stacks.config import PROJECT
from stacks.identity import platform_config
from tests.configcheck import assert_section_rejected
from tests.stackinfo import is_production

SETTINGS = "pulumiservice:index:DeploymentSettings"
POOL = "pulumiservice:index:AgentPool"
ROLE = "aws:iam/role:Role"
IDENTITY_TYPES = (SETTINGS, POOL, "pulumi:providers:pulumiservice")


@pytest.fixture(params=["dev", "prod"])
def identity(request: pytest.FixtureRequest, identity_plans: dict[str, PlanResult]) -> PlanResult:
    return identity_plans[request.param]


def role(plan: PlanResult, suffix: str) -> Registration:
    (found,) = [r for r in plan.of_type(ROLE) if r.name.endswith(f"deployments-{suffix}")]
    return found


def trust(plan: PlanResult, suffix: str) -> list[dict]:
    statements: list[dict] = json.loads(role(plan, suffix).get("assumeRolePolicy"))["Statement"]
    return statements


def oidc_subjects(statement: dict) -> list[str]:
    assert "StringLike" not in statement["Condition"], "exact subjects only"
    subjects: list[str] = statement["Condition"]["StringEquals"]["api.pulumi.com/oidc:sub"]
    return subjects


def test_the_platform_stack_creates_no_identity_resource(plan: PlanResult) -> None:
    """A run never changes the identity it runs as: no role it assumes, no OIDC trust, no pool, no
    settings in the platform stack."""
    assert not [r.urn for r in plan.records if r.type.startswith(IDENTITY_TYPES)]
    oidc = plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert not [r.urn for r in oidc if "api.pulumi.com" in str(r.get("url"))]
    assert not [r for r in plan.of_type(ROLE) if "-deployments-" in r.name]
    # The platform derives the role's ARN: the identity project's role has exactly that ARN.
    assert plan.outputs["deployRoleArn"].endswith(":role/eks-platform-" + plan.stack + "-deployments-deploy")


def test_the_identity_project_owns_the_deploy_identity(identity: PlanResult, plans) -> None:
    platform = plans[identity.stack]
    assert identity.project == "eks-platform-identity"
    assert identity.outputs["deployRoleArn"] == platform.outputs["deployRoleArn"]
    assert identity.one(SETTINGS) and identity.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    # Admin-applied from a workstation: no Kubernetes provider, nothing that needs the API.
    assert not [
        r for r in identity.records if r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))
    ]


def test_push_deploys_and_only_dev_previews_pull_requests(identity: PlanResult, configs) -> None:
    deploy = configs[identity.stack].deployments
    settings = identity.one(SETTINGS)
    assert (settings.get("organization"), settings.get("project"), settings.get("stack")) == (
        deploy.organization,
        "eks-platform",
        identity.stack,
    )
    # A full ref, as in pulumi/pulumi-pulumiservice examples/ts-deployment-settings/index.ts.
    assert settings.get("sourceContext.git.branch") == f"refs/heads/{deploy.branch}"
    vcs = settings.get("vcs")
    assert vcs["provider"] == "github" and vcs["repository"] == deploy.github_repository
    assert vcs["deployCommits"] is True
    # One role per settings, and it writes: a pull request may not run with it in production.
    assert vcs["previewPullRequests"] is (not is_production(identity.stack))
    assert settings.get("operationContext.options.skipIntermediateDeployments") is True
    # No data, recreated by `make up PROJECT=identity`, replaced by an organization change (the
    # engine refuses to replace a protected resource): never protected.
    assert settings.protect is False


def test_every_run_first_gates_on_the_offline_plan(identity: PlanResult, configs) -> None:
    """The pack's rules and the rehearsal on the normal deploy path: the settings' one pre-run command
    runs `tools.plan --gate` for this stack with the interpreter of the project's virtualenv, whatever
    the order of the executor's dependency step (components/deployments.py gate_command)."""
    import yaml

    from components.deployments import gate_command
    from tools.mocks import ROOT

    (command,) = identity.one(SETTINGS).get("operationContext.preRunCommands")
    assert command == gate_command(configs[identity.stack].deployments.repo_dir, identity.stack)
    venv = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]["virtualenv"]
    steps = command.split(" && ")
    assert steps[0] == 'cd "$(git rev-parse --show-toplevel)"'
    assert steps[1:] == [
        f"python3 -m venv {venv}",
        f"{venv}/bin/python -m pip install --quiet -r requirements.txt",
        f"{venv}/bin/python -m tools.plan --stack {identity.stack} --gate",
    ]


def test_the_gate_goes_to_the_project_folder() -> None:
    from components.deployments import gate_command

    assert gate_command("infra/eks/", "dev").startswith('cd "$(git rev-parse --show-toplevel)/infra/eks" && ')


def test_the_write_role_is_for_updates_and_prod_refuses_previews(identity: PlanResult, configs) -> None:
    deploy = configs[identity.stack].deployments
    oidc, _ = trust(identity, "deploy")
    assert oidc["Principal"]["Federated"].endswith(":oidc-provider/api.pulumi.com/oidc")
    assert oidc["Condition"]["StringEquals"]["api.pulumi.com/oidc:aud"] == deploy.organization
    base = f"pulumi:deploy:org:{deploy.organization}:project:eks-platform:stack:{identity.stack}:operation:"
    operations = ["update", "refresh", "destroy"] + ([] if is_production(identity.stack) else ["preview"])
    assert oidc_subjects(oidc) == [f"{base}{op}:scope:write" for op in operations]
    settings = identity.one(SETTINGS)
    assert settings.get("operationContext.oidc.aws.roleARN") == identity.outputs["deployRoleArn"]
    assert settings.get("operationContext.environmentVariables") == {"AWS_REGION": "eu-west-1"}
    assert not re.search(r"AKIA|aws_secret_access_key|AWS_SECRET", json.dumps(settings.inputs))


def preview_subject_allowed(subjects: list[str], sub: str) -> bool:
    """IAM StringEquals over a list: any one equal."""
    return sub in subjects


def test_a_pull_request_preview_runs_as_the_write_role_in_dev_only(identity: PlanResult, configs) -> None:
    """The settings name one role for every operation, and it is the write role: the token of a PR
    preview names `operation:preview`, which prod's write role refuses (prod previews no pull
    request) and dev's accepts (dev previews them with its write role). No second role trusts
    Pulumi's OIDC provider: the identity project creates no preview role."""
    org = configs[identity.stack].deployments.organization
    stack = identity.stack
    sub = f"pulumi:deploy:org:{org}:project:eks-platform:stack:{stack}:operation:preview:scope:write"
    update = sub.replace(":preview:", ":update:")
    write, _ = trust(identity, "deploy")
    previews = stack != "prod"
    assert preview_subject_allowed(oidc_subjects(write), sub) is previews
    assert identity.one(SETTINGS).get("vcs")["previewPullRequests"] is previews
    assert preview_subject_allowed(oidc_subjects(write), update)
    # Another stack whose name starts like this one's is not this stack.
    assert not preview_subject_allowed(
        oidc_subjects(write), update.replace(f":stack:{stack}:", f":stack:{stack}-eu:")
    )
    # The write role is the identity project's only role (the settings name it: see above).
    assert [r.name for r in identity.of_type(ROLE)] == [role(identity, "deploy").name]
    assert not [r for r in identity.of_type(ROLE) if r.name.endswith("-deployments-preview")]
    assert "previewRoleArn" not in identity.outputs


@pytest.fixture
def prod_identity(identity_plans: dict[str, PlanResult]) -> PlanResult:
    return identity_plans["prod"]


def test_operators_and_the_role_itself_may_assume_the_deploy_role(identity: PlanResult, configs) -> None:
    """`make bootstrap` (an admin) and a Deployments run (already the role) both run the kubeconfig's
    `aws eks get-token --role <deploy role>`; a role may assume itself only when its trust says so."""
    _, operators = trust(identity, "deploy")
    own = identity.outputs["deployRoleArn"]
    assert operators["Action"] == "sts:AssumeRole"
    assert operators["Principal"] == {"AWS": ["arn:aws:iam::123456789012:root"]}
    assert operators["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": sorted([own, *configs[identity.stack].cluster.admin_role_arns])}
    }


def test_kubeconfig_assumes_the_deploy_role_which_is_cluster_admin(plan: PlanResult) -> None:
    role_arn = plan.outputs["deployRoleArn"]
    cluster = plan.one("eks:index:Cluster")
    # pulumi-eks turns providerCredentialOpts.roleArn into `aws eks get-token ... --role <arn>`
    # for its own provider and the kubeconfig output (nodejs/eks/cluster/cluster.ts).
    assert cluster.get("providerCredentialOpts") == {"roleArn": role_arn}
    entry = cluster.get("accessEntries.deploy")
    assert entry["principalArn"] == role_arn and entry["type"] == "STANDARD"
    assert entry["accessPolicies"]["cluster-admin"] == {
        "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        "accessScope": {"type": "cluster"},
    }


def test_deploy_sessions_outlast_a_full_create_or_destroy(identity: PlanResult) -> None:
    assert role(identity, "deploy").get("maxSessionDuration") == 4 * 3600
    assert identity.one(SETTINGS).get("operationContext.oidc.aws.duration") == "4h0m0s"


def test_each_stack_deploys_on_its_own_agent_pool(identity: PlanResult) -> None:
    """Prod's endpoint is private; dev's admits only the team's range, and Pulumi publishes no egress
    addresses for its hosted runners (platform/rehearsal.yaml hostedRunnerEgress): both run on agents.
    The pool is never protected: an organization change replaces it (the engine refuses to replace a
    protected resource)."""
    pool = identity.one(POOL)
    assert pool.get("organizationName") == "example-org"
    assert pool.protect is False
    assert pool.urn in identity.one(SETTINGS).dependencies
    assert "agentPoolId" in identity.one(SETTINGS).raw_inputs


def test_the_agent_token_secret_can_be_rebuilt_at_once(prod_identity: PlanResult, prod: PlanResult) -> None:
    """A 30-day window kept the name taken after a destroy, and `restore-secret` then clashed with
    the new stack's create: the token is re-issued with the pool, so no window."""
    pool = prod_identity.one(POOL)
    (secret,) = prod_identity.of_type("aws:secretsmanager/secret:Secret")
    assert secret.get("recoveryWindowInDays") == 0
    assert secret.get("name") == "eks-platform-prod/deploy-agent-token"
    (version,) = prod_identity.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert (
        version.inputs["secretString"] == "[secret]"
        and version.get("secretString") == f"pul-token-{pool.name}"
    )
    # The platform's hosts read that secret by name; the token never enters the platform's state.
    assert not prod.of_type("aws:secretsmanager/secretVersion:SecretVersion") or all(
        "pul-token" not in json.dumps(r.raw_inputs) for r in prod.records
    )


def test_disabled_deployments_create_nothing() -> None:
    cfg = platform_config("dev")
    assert cfg.deployments.enabled  # the committed file; the disabled case below
    from stacks.identity import build_identity

    assert (
        build_identity(
            cfg.model_copy(update={"deployments": cfg.deployments.model_copy(update={"enabled": False})})
        )
        == {}
    )


BAD = [
    (
        "prod-without-agents",
        {"enabled": True, "organization": "acme", "githubRepository": "acme/x", "agent": {"enabled": False}},
        "deployments.agent.enabled",
        "private",
    ),
    ("agent-latest", {"agent": {"version": "latest"}}, "deployments.agent.version", "never `latest`"),
    ("bootstrap-without-agents", {"bootstrap": True}, "deployments.bootstrap", "agents apply them"),
    (
        "no-org",
        {"enabled": True, "githubRepository": "example-org/x"},
        "deployments.organization",
        "organization",
    ),
    (
        "bad-repo",
        {"enabled": True, "organization": "acme", "githubRepository": "x"},
        "deployments.githubRepository",
        "owner/repo",
    ),
    ("wildcard-branch", {"branch": "release/*"}, "deployments.branch", "no wildcards"),
    ("escaping-dir", {"repoDir": "../other"}, "deployments.repoDir", "relative path"),
    (
        "oidc-arn",
        {"pulumiOidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/example.com"},
        "deployments.pulumiOidcProviderArn",
        "api.pulumi.com/oidc",
    ),
    (
        "prod-previews",
        {"previewPullRequests": True},
        "deployments.previewPullRequests",
        "never previews pull requests",
    ),
]


@pytest.mark.parametrize(("deployments", "key", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_deployments_config_is_rejected(deployments, key, message) -> None:
    assert_section_rejected("prod", "deployments", deployments, key, message)


def test_dev_may_turn_pull_request_previews_off_and_its_role_then_refuses_them() -> None:
    """A dev pull request's preview runs its own code as dev's deploy role before review (review
    19, round 6): a stack that does not want that says `previewPullRequests: false`, and then its
    settings preview nothing and its role's trust drops `preview` too."""
    from components.deploy_roles import write_operations

    cfg = platform_config("dev", offline=True)
    assert cfg.deployments.previews(cfg.production) is True
    off = cfg.deployments.model_copy(update={"preview_pull_requests": False})
    assert off.previews(cfg.production) is False
    assert "preview" in write_operations(True) and "preview" not in write_operations(False)
    prod = platform_config("prod", offline=True)
    assert prod.deployments.previews(prod.production) is False


def test_the_identity_program_reads_the_platform_file_and_names_its_errors(monkeypatch) -> None:
    from stacks import identity as module
    from stacks.config import ConfigError

    real = module.read_yaml

    def broken(path):
        document = real(path)
        if path.name == "Pulumi.prod.yaml":
            document["config"][f"{PROJECT}:deployments"]["branch"] = "release/*"
        return document

    monkeypatch.setattr(module, "read_yaml", broken)
    with pytest.raises(ConfigError) as err:
        platform_config("prod", offline=True)
    assert err.value.source == "Pulumi.prod.yaml"
    assert [i.key for i in err.value.issues] == [f"{PROJECT}:deployments.branch"]


def test_the_policy_pack_passes_the_identity_project(identity: PlanResult) -> None:
    """`make up PROJECT=identity` runs with policy/ as well: nothing mandatory may stand in its way
    (exact OIDC subjects, a customer-managed key for the token, reads scoped where IAM can)."""
    from tools.policy_check import evaluate

    mandatory = [
        f for f in evaluate(identity, production=is_production(identity.stack)) if f.level == "mandatory"
    ]
    assert mandatory == []


def test_agent_hosts_may_decrypt_only_their_token_through_secrets_manager(prod: PlanResult) -> None:
    (policy,) = [
        r for r in prod.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("deploy-agent-host")
    ]
    # The others: the hosts' own Auto Scaling group's lifecycle (tests/unit/test_agent.py).
    read, decrypt, *lifecycle = json.loads(policy.get("policy"))["Statement"]
    assert [s["Sid"] for s in lifecycle] == ["ItsOwnGroupsLifecycle"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"},
        "StringLike": {"kms:EncryptionContext:SecretARN": read["Resource"]},
    }


@pytest.mark.parametrize(
    ("name", "flagged"),
    [("eks-platform-prod/deploy-agent-token", False), ("eks-platform-prod/grafana", True)],
)
def test_only_the_agent_token_may_skip_the_recovery_window(name: str, flagged: bool) -> None:
    from policy.model import Context
    from policy.rules_data import recovery_window

    messages = list(
        recovery_window(
            "aws:secretsmanager/secret:Secret",
            {"name": name, "recoveryWindowInDays": 0},
            Context(production=True),
        )
    )
    assert bool(messages) is flagged


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_reintroducing_the_identity_into_the_platform_plan_is_mandatory(
    stack: str, plans: dict[str, PlanResult], identity_plans: dict[str, PlanResult]
) -> None:
    """Today's platform plan has no such finding; the same plan holding its identity project's role,
    policies, OIDC provider, pool and settings (the old design) has one per resource."""
    from analysis.rehearsal import section

    platform, identity = plans[stack], identity_plans[stack]
    clean = section(platform.records, platform.lookups, identity.records)[1]
    assert not [f for f in clean if f.rule.startswith("identity-")]
    moved = [r for r in identity.records if r.custom and not r.type.startswith("pulumi:providers:")]
    found = section([*platform.records, *moved], platform.lookups)[1]
    blamed = {f.urn.rsplit("::", 1)[-1] for f in found if f.rule == "identity-applied-by-itself"}  # type: ignore[union-attr]
    expected = {f"eks-platform-{stack}-deployments-{n}" for n in ("deploy", "pulumi-oidc", "settings")}
    assert expected <= blamed and all(f.level == "mandatory" for f in found if f.rule.startswith("identity-"))
    if stack == "prod":
        org = {f.urn.rsplit("::", 1)[-1] for f in found if f.rule == "identity-org-resource-in-run"}  # type: ignore[union-attr]
        assert org == {
            "eks-platform-prod-deployments-agents",
            "eks-platform-prod-deployments-deployers",
            "eks-platform-prod-deployments-settings",
        }


def test_resources_moved_from_the_platform_stack_keep_their_urns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before this project, prod's OIDC provider, role, role policy, pool and settings were children
    of the platform's `platform:deployments:Deployments` component `<prefix>-deployments`.
    `pulumi state move` rewrites only their project; each must then be that URN here, or name it in
    an alias (else the first identity `up` would replace the deploy role and the pool)."""
    from google.protobuf import json_format

    from tools import mocks
    from tools.plan import run_identity

    aliases: dict[str, list[str]] = {}
    register = mocks.RecordingMonitor.RegisterResource

    def recording(self: mocks.RecordingMonitor, request: object) -> object:
        response = register(self, request)
        specs = [json_format.MessageToDict(a).get("spec", {}) for a in request.aliases]  # type: ignore[attr-defined]
        aliases[response.urn] = [
            f"{s['parentUrn'].split('::', 2)[2].rsplit('::', 1)[0]}${request.type}::{request.name}"  # type: ignore[attr-defined]
            for s in specs
            if "parentUrn" in s
        ]
        return response

    monkeypatch.setattr(mocks.RecordingMonitor, "RegisterResource", recording)
    plan = run_identity("prod")
    parent = "platform:deployments:Deployments"
    old = {
        f"{parent}$aws:iam/openIdConnectProvider:OpenIdConnectProvider::eks-platform-prod-deployments-pulumi-oidc",
        f"{parent}$aws:iam/role:Role::eks-platform-prod-deployments-deploy",
        f"{parent}$aws:iam/rolePolicy:RolePolicy::eks-platform-prod-deployments-deploy",
        # The boundary least-privilege created next to the role, in the platform stack.
        f"{parent}$aws:iam/policy:Policy::eks-platform-prod-boundary",
        f"{parent}$pulumiservice:index:AgentPool::eks-platform-prod-deployments-agents",
        f"{parent}$pulumiservice:index:DeploymentSettings::eks-platform-prod-deployments-settings",
        # Their providers, which the move brings along: the same names here.
        "pulumi:pulumi:Stack$pulumi:providers:aws::eks-platform-prod-aws",
        "pulumi:pulumi:Stack$pulumi:providers:pulumiservice::eks-platform-prod-pulumiservice",
    }
    known = {r.urn.split("::", 2)[2] for r in plan.records} | {a for urn in aliases for a in aliases[urn]}
    assert old <= known, sorted(old - known)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_make_plan_project_identity_writes_a_valid_document(stack: str, tmp_path) -> None:
    """`make plan STACK=<stack> PROJECT=identity`: the same mock engine, the plan contract, and for
    every resource who applies it (an admin) and from where (no Kubernetes API)."""
    import jsonschema

    from tools import plan as plan_cli
    from tools.mocks import ROOT

    out = tmp_path / "identity.json"
    assert plan_cli.main(["--stack", stack, "--project", "identity", "--json", str(out), "--quiet"]) == 0
    document = json.loads(out.read_text())
    jsonschema.validate(document, json.loads((ROOT / "tests" / "fixtures" / "plan.schema.json").read_text()))
    assert document["project"] == "eks-platform-identity"
    rows = {row["urn"]: row for row in document["rehearsal"]["appliedBy"]}
    custom = [r["urn"] for r in document["resources"] if r["custom"]]
    assert custom and all(
        "admin" in rows[u]["appliedBy"] and "never the Kubernetes API" in rows[u]["from"] for u in custom
    )
    assert not [f for f in document["findings"] if f["level"] == "mandatory"]


def test_an_identity_project_that_needs_kubernetes_is_a_finding() -> None:
    from analysis.appliers import admin_applied
    from analysis.graph import build
    from tests.unit.rehearsal_plans import reg

    rows, findings = admin_applied(build([reg("ns", "kubernetes:core/v1:Namespace"), reg("role", ROLE)]))
    assert len(rows) == 2 and [(f.rule, f.level) for f in findings] == [
        ("identity-needs-kubernetes", "mandatory")
    ]


def test_deployments_of_the_identity_project_itself_are_a_finding() -> None:
    from analysis.appliers import admin_applied
    from analysis.graph import build
    from tests.unit.rehearsal_plans import reg

    own = reg("settings", SETTINGS, inputs={"project": "eks-platform-identity", "stack": "prod"})
    platform = reg("platform", SETTINGS, inputs={"project": "eks-platform", "stack": "prod"})
    _, findings = admin_applied(build([own, platform]))
    assert [(f.rule, str(f.urn).rsplit("::", 1)[-1]) for f in findings] == [
        ("identity-applied-by-itself", "settings")
    ]


def test_only_the_deployers_team_may_write_prod(identity_plans, configs) -> None:
    """A deployment created through the REST API may override branch and commit and still runs as the
    deploy role (its OIDC subject names no branch): write on prod's stack (RBAC scope
    stack_deployment:create) goes to one team, and production refuses a stack without it."""
    (grant,) = identity_plans["prod"].of_type("pulumiservice:index:TeamStackPermission")
    assert grant.get("team") == "platform-admins" and grant.get("permission") == 102
    assert grant.get("stack") == "prod" and grant.get("project") == "eks-platform"
    assert not identity_plans["dev"].of_type("pulumiservice:index:TeamStackPermission")
