"""The integration harness itself, offline: its stack config stays valid, the GitOps folder it syncs
holds a real workload, each check's verdict function fails when what it checks is broken, its waits
time out saying why, and it refuses to run (non-zero, naming what is missing) instead of skipping
once it has been asked to run."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis import netpol
from analysis.netpol_eval import Flow, allows
from analysis.rehearsal import section
from model.records import PlanResult
from policy.model import Level
from stacks.config import PROJECT, ConfigError, validate
from tests.integration import conftest as it
from tests.integration import test_ephemeral_stack as checks
from tests.schemas import validate_custom_resource
from tools import cleanup_stacks as cleanup
from tools.mocks import ROOT, run_program

STACK = "it-0000abcd"
CIDR = "203.0.113.10/32"
# The repoURL the committed GitOps folder names (EKS_PLATFORM_IT_GITOPS_REPO must equal it).
REPO = yaml.safe_load((ROOT / it.IT_GITOPS_PATH / f"{it.IT_SERVICE}.yaml").read_text())["spec"]["source"][
    "repoURL"
]


RUNNER = "arn:aws:iam::123456789012:role/ci/it-runner"
GITHUB_PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def raw_config(*, provider: str | None = GITHUB_PROVIDER, **delivery: Any) -> dict[str, str]:
    config = it.it_config("eu-west-1", CIDR, REPO, RUNNER, provider)
    config["eks-platform:delivery"] = {**config["eks-platform:delivery"], **delivery}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def test_the_ephemeral_stack_config_is_valid_and_small() -> None:
    cfg = validate(raw_config(), PROJECT, STACK, "integration config")
    assert cfg.network.nat_strategy == "single" and not cfg.production and not cfg.protect
    assert cfg.deployments.enabled is False
    assert [s.name for s in cfg.delivery.services] == [it.IT_SERVICE]
    assert cfg.cluster.endpoint_public_access and [str(c) for c in cfg.cluster.public_access_cidrs] == [CIDR]
    assert cfg.capacity_report().max_nodes <= 40


_PLANNED: dict[str, PlanResult] = {}


def planned(raw: dict[str, str]) -> PlanResult:
    """`run_program(STACK, raw)`, run once per worker for each config: several tests here and in
    test_integration_helpers.py read the plan of the same ephemeral-stack config (about 0.4 s each),
    none changes it. Not for a test that patches the program: it calls run_program."""
    key = json.dumps(raw, sort_keys=True)
    if key not in _PLANNED:
        _PLANNED[key] = run_program(STACK, raw)
    return _PLANNED[key]


def its_rehearsal(raw: dict[str, str]) -> tuple[dict[str, Any], list[Any]]:
    result = planned(raw)
    return section(result.records, result.lookups)


def test_the_runners_role_is_the_ephemeral_stacks_cluster_admin() -> None:
    # The creator bootstrap is off (components/cluster.py creator_admin_off): the runner is admin
    # only through the access entry the run adds for its role.
    document, findings = its_rehearsal(raw_config())
    (make_up,) = document["appliers"]
    assert make_up["clusterAdmin"] and RUNNER in make_up["admin"]
    assert not [f for f in findings if f.level is Level.MANDATORY], findings


def test_an_ephemeral_stack_without_an_admin_entry_has_no_deploy_path() -> None:
    raw = raw_config()
    cluster = json.loads(raw["eks-platform:cluster"])
    del cluster["adminRoleArns"]
    raw["eks-platform:cluster"] = json.dumps(cluster)
    _, findings = its_rehearsal(raw)
    mandatory = {f.rule for f in findings if f.level is Level.MANDATORY}
    assert "rehearsal-no-deploy-path" in mandatory, findings


@pytest.mark.parametrize("provider", [GITHUB_PROVIDER, None])
def test_the_ephemeral_stack_reuses_the_accounts_github_provider(provider: str | None) -> None:
    result = planned(raw_config(provider=provider))
    created = [
        r
        for r in result.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
        if it.GITHUB_ISSUER in str(r.inputs.get("url"))
    ]
    assert len(created) == (0 if provider else 1)


def test_the_caller_role_arn_keeps_its_path_and_a_user_is_refused() -> None:
    roles = {"it-runner": RUNNER}
    assert (
        it.role_arn_of("arn:aws:sts::123456789012:assumed-role/it-runner/gha-1", roles.__getitem__) == RUNNER
    )
    assert it.role_arn_of(RUNNER, roles.__getitem__) == RUNNER
    with pytest.raises(ValueError, match="not a role"):
        it.role_arn_of("arn:aws:iam::123456789012:user/alice", roles.__getitem__)


def test_the_account_check_finds_the_role_the_provider_and_the_spot_role() -> None:
    import boto3  # type: ignore[import-untyped]
    from moto import mock_aws

    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    with mock_aws():
        iam = boto3.client("iam", region_name="eu-west-1")
        iam.create_role(RoleName="it-runner", Path="/ci/", AssumeRolePolicyDocument=trust)
        creds = boto3.client("sts", region_name="eu-west-1").assume_role(
            RoleArn=RUNNER, RoleSessionName="gha-1"
        )["Credentials"]
        session = boto3.Session(
            region_name="eu-west-1",
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        problems = it.inspect_account(session)
        assert isinstance(problems, list) and any(it.SPOT_ROLE in p for p in problems), problems
        iam.create_role(
            RoleName=it.SPOT_ROLE,
            Path="/aws-service-role/spot.amazonaws.com/",
            AssumeRolePolicyDocument=trust,
        )
        assert it.inspect_account(session) == it.Account(RUNNER, None)
        iam.create_open_id_connect_provider(
            Url=f"https://{it.GITHUB_ISSUER}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
        )
        assert it.inspect_account(session) == it.Account(RUNNER, GITHUB_PROVIDER)


def test_the_ephemeral_stack_plans_offline_and_syncs_a_folder_that_exists() -> None:
    result = planned(raw_config())
    assert not any(r.protect for r in result.records), "an ephemeral stack must be destroyable"
    assert result.outputs["clusterName"] == f"eks-platform-{STACK}"
    (root,) = [r for r in result.records if r.name.endswith("-gitops-root")]
    path = root.inputs["spec"]["source"]["path"]
    assert path == it.IT_GITOPS_PATH and (ROOT / path).is_dir()


def test_a_stack_without_its_gitops_folder_fails_validation_saying_what_to_create() -> None:
    raw = raw_config()
    delivery = json.loads(raw["eks-platform:delivery"])
    del delivery["gitops"]["path"]
    raw["eks-platform:delivery"] = json.dumps(delivery)
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, STACK, "Pulumi.it-0000abcd.yaml")
    (issue,) = info.value.issues
    assert issue.key == "eks-platform:delivery.gitops.path"
    assert f"create platform/gitops/{STACK}/" in issue.message and "delivery.gitops.path" in issue.message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("platform/gitops/nowhere", "does not exist in this repository"),
        ("/etc", "relative folder inside the repository"),
        ("platform/../..", "relative folder inside the repository"),
        ("", "relative folder inside the repository"),
    ],
)
def test_a_bad_gitops_path_is_rejected(path: str, message: str) -> None:
    raw = raw_config(gitops={"path": path})
    with pytest.raises(ConfigError, match=message):
        validate(raw, PROJECT, STACK, "integration config")


def test_the_committed_stacks_sync_their_own_folder() -> None:
    for stack in ("dev", "prod"):
        # Without the ephemeral stack's own folder, the platform tree renders each service's chart
        # with its values file for that stack: the test's service has none, so it is left out here.
        cfg = validate(raw_config(gitops={}, services=[]), PROJECT, stack, "integration config")
        assert cfg.delivery.gitops.folder(stack) == f"platform/gitops/{stack}"


def test_a_service_without_values_is_an_error_only_where_the_platform_tree_deploys_it() -> None:
    """The integration stack's service is deployed from tests/integration/gitops (a plain
    Deployment), so it needs no values file; the same service synced from platform/gitops does."""
    assert validate(raw_config(), PROJECT, STACK, "integration config").delivery.services
    with pytest.raises(ConfigError, match=r"services/it-hello/deploy/dev\.yaml does not exist"):
        validate(raw_config(gitops={}), PROJECT, "dev", "integration config")


####################################################################################################
# The Karpenter check: its own NodePool, a workload only that pool can host, claims by selector


def test_the_test_node_pool_is_a_valid_nodepool_on_the_platforms_node_class() -> None:
    pool = checks.it_node_pool()
    validate_custom_resource(pool)
    template = pool["spec"]["template"]
    assert template["spec"]["nodeClassRef"]["name"] == "default"
    key, value = checks.IT_LABEL
    assert template["metadata"]["labels"][key] == value
    assert {"key": key, "value": value, "effect": "NoSchedule"} in template["spec"]["taints"]
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert f"karpenter.sh/nodepool={pool['metadata']['name']}" == checks.IT_CLAIMS


def test_the_workload_fits_only_the_test_pool() -> None:
    pool, workload = checks.it_node_pool(), checks.it_workload()
    pod = workload["spec"]["template"]
    labels = pool["spec"]["template"]["metadata"]["labels"]
    assert pod["spec"]["nodeSelector"].items() <= labels.items(), "selects the pool's label"
    (taint,) = pool["spec"]["template"]["spec"]["taints"]
    (toleration,) = pod["spec"]["tolerations"]
    assert {k: toleration[k] for k in ("key", "value", "effect")} == taint
    assert checks.IT_LABEL[0] in pod["metadata"]["labels"], "the workload carries the test label"


def _claim(name: str, node: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"nodeName": node} if node else {}}


def _pod(node: str | None, phase: str = "Running") -> dict[str, Any]:
    return {"spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def test_claims_hosting_picks_only_claims_whose_node_runs_the_workload() -> None:
    claims = [_claim("a", "node-a"), _claim("b", "node-b"), _claim("launching", None)]
    assert checks.claims_hosting(claims, [_pod("node-a")]) == {"a"}
    assert checks.claims_hosting(claims, [_pod(None, "Pending")]) == set()
    assert checks.claims_hosting(claims, [_pod("node-b", "Pending")]) == set()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_for_returns_the_first_truthy_result() -> None:
    clock, answers = FakeClock(), iter([set(), set(), {"claim-1"}])
    got = checks.wait_for(lambda: next(answers), "x", timeout=60, clock=clock, sleep=clock.sleep)
    assert got == {"claim-1"} and clock.now == 20


def test_wait_for_times_out_naming_what_it_waited_for_and_the_last_answer() -> None:
    clock = FakeClock()
    with pytest.raises(AssertionError, match=r"timed out after 30s waiting for the claims \(last: set\(\)\)"):
        checks.wait_for(set, "the claims", timeout=30, clock=clock, sleep=clock.sleep)


def test_the_hpa_example_image_is_pinned_to_the_architecture_it_is_built_for() -> None:
    # registry.k8s.io/hpa-example is amd64-only; the default NodePool offers arm64 first.
    (app,) = [o for o in checks.hpa_objects() if o["kind"] == "Deployment"]
    assert checks.HPA_IMAGE == "registry.k8s.io/hpa-example"
    assert app["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64"}


def test_wait_for_shows_why_it_is_still_waiting() -> None:
    clock = FakeClock()
    assert not checks.NotYet("1 of 2 pods")
    with pytest.raises(AssertionError, match=r"\(last: '1 of 2 pods'\)"):
        checks.wait_for(
            lambda: checks.NotYet("1 of 2 pods"), "pods", timeout=20, clock=clock, sleep=clock.sleep
        )


####################################################################################################
# Item 9: what the tests create themselves is what the cleanup deletes when the cluster answers


def test_every_object_the_tests_create_is_one_the_cleanup_deletes() -> None:
    plural = {
        "NodePool": "nodepools.karpenter.sh",
        "Deployment": "deployments.apps",
        "Service": "services",
        "HorizontalPodAutoscaler": "horizontalpodautoscalers.autoscaling",
        "Pod": "pods",
        "ExternalSecret": "externalsecrets.external-secrets.io",
    }
    objects = checks.it_objects()
    assert {o["kind"] for o in objects} == set(plural)
    for obj in objects:
        assert cleanup.IT_OBJECT_LABEL in obj["metadata"]["labels"], obj["metadata"]["name"]
        assert plural[obj["kind"]] in cleanup.IT_OBJECT_KINDS
    assert checks.IT_POOL.name == cleanup.IT_NODE_POOL and checks.IT_CLAIMS.endswith(cleanup.IT_NODE_POOL)


####################################################################################################
# Item 3: ArgoCD deploys a real workload from the folder, pinned by digest, and the check sees it run


# registry.k8s.io/pause:3.10's index digest, as cilium/alpine-curl's Dockerfile pins it (multi-arch).
PAUSE_DIGEST = "sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a"


def test_the_gitops_folder_deploys_a_digest_pinned_workload_into_the_services_namespace() -> None:
    application, deployment = checks.it_gitops_workload()
    assert application["spec"]["project"] == "microservices"
    assert application["spec"]["destination"]["namespace"] == it.IT_SERVICE
    source = application["spec"]["source"]["path"]
    assert source != it.IT_GITOPS_PATH and (ROOT / source).is_dir(), "a subfolder the root does not sync"
    validate_custom_resource(application)
    assert checks.pinned_digest(deployment) == PAUSE_DIGEST
    pod = deployment["spec"]["template"]["spec"]
    # The namespace enforces the "restricted" Pod Security level.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def _ready_pod(name: str, ready: str, image_id: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready}],
            "containerStatuses": [{"imageID": image_id}],
        },
    }


def test_the_nodes_check_counts_only_the_system_groups_nodes() -> None:
    def node(name: str, ready: str = "True", pool: str = "system") -> dict[str, Any]:
        labels = {"eks-platform.io/node-pool": pool}
        return {
            "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        }

    desired = json.loads(raw_config()["eks-platform:systemNodeGroup"])["desiredSize"]
    assert checks.node_problems([node("a"), node("b")], desired) == []
    # A Karpenter node never stands in for a missing system node.
    (missing,) = checks.node_problems([node("a"), node("k", pool="default")], desired)
    assert "1 node(s) labelled eks-platform.io/node-pool=system, want 2" in missing
    assert checks.node_problems([node("a"), node("b", "False")], desired) == ["b is not Ready"]


def test_the_argocd_check_fails_unless_every_pod_is_ready_with_the_pinned_image() -> None:
    pinned = f"registry.k8s.io/pause@{PAUSE_DIGEST}"
    assert checks.ready_pods(
        [_ready_pod("a", "True", pinned), _ready_pod("b", "True", pinned)], PAUSE_DIGEST
    ) == [
        "a",
        "b",
    ]
    assert not checks.ready_pods([], PAUSE_DIGEST)
    assert "b is not Ready" in checks.ready_pods(
        [_ready_pod("a", "True", pinned), _ready_pod("b", "False", "")], PAUSE_DIGEST
    )
    other = checks.ready_pods([_ready_pod("a", "True", "registry.k8s.io/pause@sha256:0")], PAUSE_DIGEST)
    assert not other and "not sha256:ee65" in other
    assert not checks.application_state(
        {"metadata": {"name": "root"}, "status": {"sync": {"status": "Synced"}}}
    )


####################################################################################################
# Item 1: Prometheus through the API server's proxy, allowed by the NetworkPolicies


def _targets(*jobs: tuple[str, str]) -> dict[str, Any]:
    return {
        "data": {"activeTargets": [{"labels": {"job": j}, "health": h, "lastError": "x"} for j, h in jobs]}
    }


def test_the_prometheus_check_fails_while_an_expected_job_is_not_up() -> None:
    everything = _targets(*((job, "up") for job in checks.EXPECTED_JOBS))
    assert checks.unhealthy_jobs(everything) == []
    down = _targets(*((job, "down" if job == "karpenter" else "up") for job in checks.EXPECTED_JOBS))
    assert checks.unhealthy_jobs(down) == ["karpenter: x"]
    assert checks.unhealthy_jobs(_targets()) == [f"{job}: no target" for job in checks.EXPECTED_JOBS]


def _api_server_to_prometheus_modelled() -> bool:
    table = netpol.load_table()
    return any(r["from"] == "api-server" and r["to"] == "prometheus" for r in table["allowed"])


def test_the_network_policies_allow_the_proxy_read_the_prometheus_check_makes(dev: PlanResult) -> None:
    doc = dev.document()
    table = netpol.load_table()
    ends = netpol.endpoints(
        table, netpol.vpc_cidr(doc), netpol.service_namespaces(doc), netpol.service_cidr(doc)
    )
    # The API server's proxy connects from its control-plane ENIs in the VPC, not its ClusterIP.
    (eni,) = [e for e in ends["api-server"] if not e.name.endswith(netpol.CLUSTER_IP)]
    (prometheus,) = ends["prometheus"]
    assert f"prometheus-operated:{checks.PROMETHEUS_PORT}/proxy/" in checks.PROMETHEUS_TARGETS
    assert prometheus.ports["http-web"] == checks.PROMETHEUS_PORT
    flow = Flow(source=eni, destination=prometheus, port=checks.PROMETHEUS_PORT, allowed=True)
    assert _api_server_to_prometheus_modelled(), "platform/network-flows.yaml models the flow"
    policies = netpol.plan_policies(doc)
    assert allows(policies, flow)
    # The check fails when the allow goes: monitoring denies ingress by default.
    proxy = [
        p
        for p in policies
        if p["metadata"].get("namespace") == "monitoring" and "proxy" in p["metadata"]["name"]
    ]
    assert proxy and not allows([p for p in policies if p not in proxy], flow)


####################################################################################################
# Item 2: External Secrets fetches a new secret after the policies, value for value


def test_the_probe_is_a_new_external_secret_of_the_platforms_own_spec() -> None:
    probe = checks.probe_external_secret("eks-platform-it-0000abcd/grafana-admin")
    validate_custom_resource(probe)
    assert probe["metadata"]["name"] != "grafana-admin", "a new object: ESO must fetch it now"
    assert probe["spec"]["dataFrom"] == [{"extract": {"key": "eks-platform-it-0000abcd/grafana-admin"}}]
    assert probe["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "platform-secrets"}
    # The platform's store serves monitoring (its conditions name the targets' namespaces).
    assert probe["metadata"]["namespace"] == "monitoring"


def _secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_the_external_secrets_check_fails_unless_every_value_arrived() -> None:
    remote = json.dumps({"admin-user": "admin", "admin-password": "s3cret"})
    assert (
        checks.secret_mismatches(remote, _secret(**{"admin-user": "admin", "admin-password": "s3cret"})) == []
    )
    assert checks.secret_mismatches(remote, _secret(**{"admin-user": "admin"})) == ["admin-password: missing"]
    stale = _secret(**{"admin-user": "admin", "admin-password": "old"})
    assert checks.secret_mismatches(remote, stale) == ["admin-password: differs from Secrets Manager"]
    assert checks.secret_mismatches(remote, {}) == ["admin-password: missing", "admin-user: missing"]


####################################################################################################
# Opt-in and prerequisites


def test_skips_unless_asked_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(it.OPT_IN, raising=False)
    assert "make integration" in (it.skip_reason() or "")
    monkeypatch.setenv(it.OPT_IN, "1")
    assert it.skip_reason() is None


def test_names_every_missing_prerequisite() -> None:
    missing = "\n".join(
        it.missing_prerequisites({}, which=lambda tool: None, credentials=lambda region: ["no creds"])
    )
    for needed in (
        "`pulumi` CLI is not installed",
        "`kubectl` CLI is not installed",
        "`aws` CLI is not installed (the stack's kubeconfig runs `aws eks get-token`)",
        "AWS_REGION (or AWS_DEFAULT_REGION) is not set",
        f"{it.API_CIDR} is not set",
        f"{it.GITOPS_REPO} is not set",
        "no creds",
    ):
        assert needed in missing, needed


def good_env(**changes: str) -> dict[str, str]:
    return {
        "AWS_REGION": "eu-west-1",
        it.API_CIDR: CIDR,
        it.GITOPS_REPO: "https://github.com/acme/eks-platform.git",
    } | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({it.API_CIDR: "not-a-cidr"}, f"{it.API_CIDR}='not-a-cidr' is not an IPv4 CIDR"),
        ({it.GITOPS_REPO: REPO}, "is the example organisation"),
        ({}, f"{it.IT_GITOPS_PATH}/{it.IT_SERVICE}.yaml: Application 'it-hello' spec.source.repoURL is"),
    ],
)
def test_a_bad_environment_is_named_before_anything_is_created(changes: dict[str, str], message: str) -> None:
    # The committed folder names the example repository: acme's URL must not match it.
    missing = it.missing_prerequisites(
        good_env(**changes), which=lambda tool: None, credentials=lambda r: it.Account(RUNNER, None)
    )
    assert any(message in m for m in missing), missing


def test_a_complete_environment_has_no_missing_prerequisite(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fork names its own repository in the folder and in the environment: nothing is missing.
    repo = "https://github.com/acme/eks-platform.git"
    folder = tmp_path / it.IT_GITOPS_PATH
    folder.mkdir(parents=True)
    text = (ROOT / it.IT_GITOPS_PATH / f"{it.IT_SERVICE}.yaml").read_text().replace(REPO, repo)
    (folder / f"{it.IT_SERVICE}.yaml").write_text(text)
    monkeypatch.setattr(it, "ROOT", tmp_path)
    monkeypatch.setattr(it, "validate", lambda *args: None)  # the stack config is checked above
    monkeypatch.setattr(it, "_run", lambda *cmd: subprocess.CompletedProcess(cmd, 0, "me", ""))
    env = good_env(**{it.GITOPS_REPO: repo})
    assert (
        it.missing_prerequisites(
            env, which=lambda tool: f"/bin/{tool}", credentials=lambda r: it.Account(RUNNER, None)
        )
        == []
    )


def test_the_tests_and_the_cleanup_resolve_the_region_the_same_way() -> None:
    assert it.missing_prerequisites.__globals__["aws_region"] is cleanup.aws_region
    assert cleanup.aws_region({"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "eu-west-1"}) == "us-east-2"
    assert cleanup.aws_region({"AWS_DEFAULT_REGION": "eu-west-1"}) == "eu-west-1"
    assert cleanup.aws_region({}) is None


def test_make_integration_without_prerequisites_exits_non_zero_saying_what_is_missing(
    tmp_path: Any,
) -> None:
    env = {
        "PATH": "/nonexistent",
        it.OPT_IN: "1",
        "AWS_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(tmp_path),
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "tests/integration",
        "-m",
        "integration",
        "-x",
        "-p",
        "no:cacheprovider",
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == it.PREREQUISITE_EXIT, result.stdout[-2000:] + result.stderr[-2000:]
    assert "cannot run the integration tests" in result.stdout
    for needed in ("`pulumi` CLI", "`aws` CLI", it.API_CIDR, it.GITOPS_REPO, "no usable AWS credentials"):
        assert needed in result.stdout, needed


####################################################################################################
# What the leak check searches for is what the platform sets


def test_the_ebs_csi_driver_tags_volumes_with_the_cluster_and_the_stack() -> None:
    result = planned(raw_config())
    (addon,) = [
        r for r in result.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "aws-ebs-csi-driver"
    ]
    controller = json.loads(addon.inputs["configurationValues"])["controller"]
    cluster = result.outputs["clusterName"]
    # tools/leak_check.py finds PVC volumes by `kubernetes.io/cluster/<k8sTagClusterId>` or by
    # the `platform:stack` tag; both must be what the driver writes.
    assert controller["k8sTagClusterId"] == cluster == f"{PROJECT}-{STACK}"
    assert controller["extraVolumeTags"]["platform:stack"] == STACK
    assert controller["extraVolumeTags"]["platform:project"] == PROJECT


def test_the_weekly_workflow_gives_the_run_what_it_requires_and_cleans_its_own_killed_run() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "integration.yml").read_text())
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    test = runs.index("make integration")
    assert it.GITOPS_REPO in job["env"]
    assert any(f"{it.API_CIDR}=" in run for run in runs[:test]), "the runner's /32, before the tests"
    credentials = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert credentials["with"]["aws-region"], "AWS_REGION for the tests and the cleanup alike"
    # After the run: exactly its own stack, by the name the test wrote before creating it; then
    # older runs' stacks by the age rule only (never a live one, never a cancel of a young run).
    own, older = runs[-2:]
    assert it.STACK_FILE in job["env"] and f'--stack $(cat "${it.STACK_FILE}")' in own
    assert older == 'make it-cleanup ARGS="--older-than 0"'
    assert not any("--include-in-progress" in run for run in runs)
    assert all(step.get("if") == "always()" for step in job["steps"][-2:])


class RecordingWorkspace:
    def __init__(self) -> None:
        self.removed: list[str] = []

    def remove_stack(self, name: str) -> None:
        self.removed.append(name)


def test_a_removed_stack_leaves_ci_nothing_to_clean(tmp_path: Path) -> None:
    """The workflow's own-stack step runs `make it-cleanup --stack <name in the file>` whenever the
    file is not empty, and the cleanup refuses a name the backend does not list (exit 1). After a
    passing run the test removed the stack: the file must be empty then, or every green run's job
    fails in its last step."""
    stack_file = tmp_path / "it-stack"
    stack_file.write_text("it-1234abcd")
    workspace = RecordingWorkspace()
    it.remove_own_stack(workspace, "it-1234abcd", {it.STACK_FILE: str(stack_file)})
    assert workspace.removed == ["it-1234abcd"]
    assert stack_file.read_text() == ""
    # Outside CI there is no file to empty.
    it.remove_own_stack(workspace, "it-5678abcd", {})
    assert workspace.removed == ["it-1234abcd", "it-5678abcd"]
