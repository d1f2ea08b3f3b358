"""The deploy path as recorded: ordering, settle waits, the agents, bootstrap, adoption, the Makefile."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from model.records import Account, PlanResult, Registration
from stacks.config import PROJECT
from tools import mocks
from tools.mocks import ROOT, run_program, stack_config

EKS_SCOPED = (
    "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:eks/addon:Addon",
    "eks:index:ManagedNodeGroup",
)
RELEASE = "kubernetes:helm.sh/v3:Release"
JOB = "kubernetes:batch/v1:Job"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def unordered(records: list[Registration]) -> list[str]:
    """EKS-scoped resources that do not depend on the cluster (created while EKS creates it)."""
    cluster = next(r.urn for r in records if r.type == "eks:index:Cluster")
    return sorted(r.name for r in records if r.type in EKS_SCOPED and cluster not in r.dependencies)


def test_every_eks_scoped_resource_waits_for_the_cluster(plan: PlanResult) -> None:
    assert [r for r in plan.records if r.type in EKS_SCOPED]
    assert unordered(plan.records) == []


def test_ordering_check_catches_a_plain_cluster_name(prod: PlanResult) -> None:
    cluster = prod.one("eks:index:Cluster").urn
    entry = next(r for r in prod.records if r.type == "aws:eks/accessEntry:AccessEntry")
    bad = dataclasses.replace(entry, dependencies=[d for d in entry.dependencies if d != cluster])
    assert unordered([*prod.records, bad]) == [entry.name]


def release(plan: PlanResult, name: str) -> Registration:
    (found,) = [r for r in plan.of_type(RELEASE) if r.get("name") == name]
    return found


@pytest.mark.parametrize(
    ("name", "service_account"), [("karpenter", "karpenter"), ("external-secrets", "external-secrets")]
)
def test_pod_identity_users_start_after_a_settle_wait(
    plan: PlanResult, name: str, service_account: str
) -> None:
    """AWS: an association "may take several seconds to be effective" (CreatePodIdentityAssociation)."""
    (association,) = [r for r in plan.of_type(ASSOCIATION) if r.get("serviceAccount") == service_account]
    waits = [j for j in plan.of_type(JOB) if association.urn in j.dependencies]
    assert len(waits) == 1
    (wait,) = waits
    assert wait.urn in release(plan, name).dependencies
    container = wait.get("spec.template.spec.containers.0")
    assert container["command"][0] == "sleep" and int(container["command"][1]) >= 10
    assert wait.get("spec.template.spec.automountServiceAccountToken") is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_karpenter_region_is_explicit(plan: PlanResult) -> None:
    env = release(plan, "karpenter").get("values")["controller"]["env"]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in env


def test_monitoring_outlives_the_storage_add_ons_on_destroy(plan: PlanResult) -> None:
    stack = release(plan, "kube-prometheus-stack")
    ebs = next(r for r in plan.of_type("aws:eks/addon:Addon") if r.get("addonName") == "aws-ebs-csi-driver")
    storage_class = next(
        r for r in plan.of_type("kubernetes:yaml/v2:ConfigGroup") if r.name.endswith("addons-gp3")
    )
    assert ebs.urn in stack.dependencies and storage_class.urn in stack.dependencies


def test_system_nodes_follow_the_control_plane_version(plan: PlanResult, configs) -> None:
    mng = plan.one("eks:index:ManagedNodeGroup")
    assert mng.get("version") == configs[plan.stack].cluster.kubernetes_version
    assert plan.one("eks:index:Cluster").urn in mng.dependencies


# -- the agents (prod) ---------------------------------------------------------------------------


def agent(prod: PlanResult, typ: str, suffix: str) -> Registration:
    (found,) = [r for r in prod.of_type(typ) if r.name.endswith(f"deploy-agent-{suffix}")]
    return found


def test_agent_hosts_are_private_hardened_and_closed(prod: PlanResult) -> None:
    lt = agent(prod, "aws:ec2/launchTemplate:LaunchTemplate", "lt")
    assert lt.get("metadataOptions.httpTokens") == "required"
    assert lt.get("metadataOptions.httpPutResponseHopLimit") == 1
    assert lt.get("networkInterfaces.0.associatePublicIpAddress") == "false"
    assert all(d["ebs"]["encrypted"] == "true" for d in lt.get("blockDeviceMappings"))
    assert "keyName" not in lt.raw_inputs
    group = agent(prod, "aws:autoscaling/group:Group", "hosts")
    assert group.get("vpcZoneIdentifiers") == prod.outputs["privateSubnetIds"]
    sg = agent(prod, "aws:ec2/securityGroup:SecurityGroup", "sg")
    assert not sg.get("ingress")
    assert [(e["fromPort"], e["toPort"]) for e in sg.get("egress")] == [(443, 443)]
    to_api = agent(prod, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "to-eks-api")
    assert to_api.get("securityGroupId") == "sg-0cluster0000000000"
    assert to_api.get("referencedSecurityGroupId") == f"{sg.name}-id" and to_api.get("fromPort") == 443


def test_agent_hosts_read_the_token_the_identity_project_writes(
    prod: PlanResult, identity_plans: dict[str, PlanResult]
) -> None:
    """The pool (an organisation resource) and its token live in the identity project; the hosts
    read the token's secret by its derived name at boot, and may read nothing else."""
    (secret,) = identity_plans["prod"].of_type("aws:secretsmanager/secret:Secret")
    name = secret.get("name")
    pool = identity_plans["prod"].one("pulumiservice:index:AgentPool")
    for record in prod.records:
        assert f"pul-token-{pool.name}" not in json.dumps(record.raw_inputs), record.urn
    script = base64.b64decode(
        agent(prod, "aws:ec2/launchTemplate:LaunchTemplate", "lt").get("userData")
    ).decode()
    # The boot script reads the secret by its derived name (test_agent_host.py runs it).
    assert f"SECRET_ID='{name}'" in script and '--secret-id "$SECRET_ID"' in script
    assert "VERSION='v2.2.0'" in script and "customer-managed-workflow-agent run" in script
    (policy,) = [
        r for r in prod.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("deploy-agent-host")
    ]
    statements = json.loads(policy.get("policy"))["Statement"]
    assert [s["Action"] for s in statements][:2] == ["secretsmanager:GetSecretValue", "kms:Decrypt"]
    # The rest: the hosts' own Auto Scaling group's lifecycle (tests/unit/test_agent.py).
    assert all(a.startswith("autoscaling:") for s in statements[2:] for a in s["Action"])
    assert statements[0]["Resource"] == f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}-??????"


def test_kubernetes_waits_for_the_agents_and_goes_first_on_destroy(plan: PlanResult) -> None:
    provider = plan.one("pulumi:providers:kubernetes")
    assert agent(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "to-eks-api").urn in (
        provider.dependencies
    )


# -- bootstrap and adoption ------------------------------------------------------------------------


def test_bootstrap_stops_before_the_kubernetes_api() -> None:
    raw, secret_keys = stack_config("prod")
    deployments = json.loads(raw[f"{PROJECT}:deployments"])
    raw[f"{PROJECT}:deployments"] = json.dumps(deployments | {"bootstrap": True})
    result = run_program("prod", raw, secret_keys=secret_keys)
    assert result.of_type("eks:index:Cluster") and result.of_type("aws:autoscaling/group:Group")
    # The settings are the identity project's (identity/), which a bootstrap does not touch.
    assert not result.of_type("pulumiservice:index:DeploymentSettings")
    assert not [
        r for r in result.records if r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))
    ]


def test_a_log_group_left_by_eks_is_adopted() -> None:
    group = "/aws/eks/eks-platform-dev/cluster"
    adopted = mocks.run_stack("dev", Account({group: {"retentionInDays": 0, "kmsKeyId": ""}}))
    imports = {r.name: r.import_id for r in adopted.records if r.import_id}
    assert imports == {"eks-platform-dev-cluster-control-plane-logs": group}


def test_a_fresh_account_creates_the_log_group(dev: PlanResult) -> None:
    (group,) = [
        r for r in dev.of_type("aws:cloudwatch/logGroup:LogGroup") if r.name.endswith("control-plane-logs")
    ]
    assert group.get("retentionInDays") == 30 and group.get("kmsKeyId")


# -- the Makefile ----------------------------------------------------------------------------------


ECHO = '#!/bin/sh\necho "$(basename "$0") $*"\n'


def make(
    target: str, tools: list[str] | dict[str, str], tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run a Makefile recipe with only fake `tools` on PATH: each prints its arguments, or runs the
    given script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    scripts = tools if isinstance(tools, dict) else dict.fromkeys(tools, ECHO)
    for tool, script in scripts.items():
        fake = bin_dir / tool
        fake.write_text(script)
        fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), target, "STACK=dev", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.skipif(not os.path.exists("/usr/bin/make"), reason="make is not installed")
def test_make_up_checks_for_the_aws_cli(tmp_path: Path) -> None:
    """The kubeconfig runs `aws eks get-token`: without the AWS CLI every Kubernetes call fails."""
    missing = make("up", ["pulumi"], tmp_path / "a")
    assert missing.returncode == 2 and "AWS CLI" in missing.stdout + missing.stderr
    ready = make("up", ["pulumi", "aws"], tmp_path / "b")
    assert ready.returncode == 0, ready.stderr
    assert f"pulumi -C . up --stack dev --policy-pack {ROOT}/policy" in ready.stdout


# A Pulumi CLI with no platform cluster yet and an identity stack that has its deploy role; `config
# set --config-file F` writes the key into F as the real CLI would; `up` prints the credentials.
# Like the real CLI it refuses a config file whose extension is not .json/.yaml/.yml: it picks the
# marshaller by extension ("no marshaler found for file format": pulumi/pulumi
# sdk/go/common/workspace/project.go marshallerForPath, sdk/go/common/encoding/marshal.go).
FAKE_PULUMI = """#!/bin/sh
echo "pulumi $*"
file=$(echo "$*" | sed -n 's/.*--config-file \\([^ ]*\\).*/\\1/p')
if [ -n "$file" ]; then
  case "$file" in
    *.json|*.yaml|*.yml) ;;
    *) echo "error: no marshaler found for file format '.${file##*.}'" >&2; exit 255 ;;
  esac
fi
case "$*" in
  *"stack output clusterName"*) exit 1 ;;
  *"-C identity stack output deployRoleArn"*)
    echo "arn:aws:iam::123456789012:role/eks-platform-dev-deployments-deploy" ;;
  *"-C identity stack output boundaryArn"*)
    echo "arn:aws:iam::123456789012:policy/eks-platform-dev-boundary" ;;
  *"config set"*) file=$(echo "$*" | sed -n 's/.*--config-file \\([^ ]*\\).*/\\1/p');
                  [ -n "$file" ] && echo "  bootstrap-written-here: true" >> "$file" ;;
  "up "*) echo "as $AWS_ACCESS_KEY_ID"; file=$(echo "$*" | sed -n 's/.*--config-file \\([^ ]*\\).*/\\1/p');
            grep -q bootstrap-written-here "$file" && echo "bootstrap config used" ;;
esac
"""
FAKE_AWS = '#!/bin/sh\necho "ASIAEXAMPLE secret session"\n'


@pytest.mark.skipif(not os.path.exists("/usr/bin/make"), reason="make is not installed")
def test_bootstrap_never_writes_the_committed_stack_file(tmp_path: Path) -> None:
    """`pulumi config set` without --config-file wrote `bootstrap: true` into Pulumi.<stack>.yaml,
    where an interrupted run left it (committed, the next run deletes every Kubernetes object)."""
    before = (ROOT / "Pulumi.dev.yaml").read_bytes()
    run = make("bootstrap", {"pulumi": FAKE_PULUMI, "aws": FAKE_AWS}, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (ROOT / "Pulumi.dev.yaml").read_bytes() == before
    config_sets = [line for line in run.stdout.splitlines() if "config set" in line or "config rm" in line]
    assert config_sets and all("--config-file /tmp" in line for line in config_sets), config_sets
    # Applied as the deploy role, with the temporary file, which is then gone.
    assert "as ASIAEXAMPLE" in run.stdout and "bootstrap config used" in run.stdout
    (up,) = [line for line in run.stdout.splitlines() if line.startswith("pulumi up ")]
    assert not Path(up.split("--config-file ")[1].split()[0]).exists()


@pytest.mark.skipif(not os.path.exists("/usr/bin/make"), reason="make is not installed")
def test_bootstrap_needs_the_identity_stack_first(tmp_path: Path) -> None:
    no_identity = FAKE_PULUMI.replace(
        'echo "arn:aws:iam::123456789012:role/eks-platform-dev-deployments-deploy"', "exit 1"
    )
    assert no_identity != FAKE_PULUMI
    run = make("bootstrap", {"pulumi": no_identity, "aws": FAKE_AWS}, tmp_path)
    assert run.returncode == 2 and "make up PROJECT=identity STACK=dev" in run.stdout
    assert " up " not in run.stdout.replace("make up", "")


@pytest.mark.skipif(not os.path.exists("/usr/bin/make"), reason="make is not installed")
def test_bootstrap_needs_the_boundary_of_the_identity_stack(tmp_path: Path) -> None:
    """An identity stack applied before the boundary moved there has a role but no boundary: every
    role of the bootstrap would fail on it (the platform derives its ARN and cannot wait for it)."""
    no_boundary = FAKE_PULUMI.replace(
        'echo "arn:aws:iam::123456789012:policy/eks-platform-dev-boundary"', "exit 1"
    )
    assert no_boundary != FAKE_PULUMI
    run = make("bootstrap", {"pulumi": no_boundary, "aws": FAKE_AWS}, tmp_path)
    assert run.returncode == 2 and "has no boundaryArn" in run.stdout
    assert "make up PROJECT=identity STACK=dev" in run.stdout
    assert " up " not in run.stdout.replace("make up", "")


@pytest.mark.skipif(not os.path.exists("/usr/bin/make"), reason="make is not installed")
def test_make_up_of_the_identity_project_runs_in_its_folder(tmp_path: Path) -> None:
    run = make("up", ["pulumi", "aws"], tmp_path, "PROJECT=identity")
    assert run.returncode == 0, run.stderr
    assert f"pulumi -C identity up --stack dev --policy-pack {ROOT}/policy" in run.stdout
    wrong = make("up", ["pulumi", "aws"], tmp_path / "w", "PROJECT=idnetity")
    assert wrong.returncode == 2 and "PROJECT must be platform or identity" in wrong.stdout
