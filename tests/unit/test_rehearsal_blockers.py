"""The review's deploy blockers, reintroduced into the real dev and prod plans: each is a finding.

Each test mutates the recorded plan so that the blocker is present whatever the program does today
(so the tests keep proving the rule once the program is fixed), then runs the whole rehearsal.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jsonschema
import pytest

from analysis.rehearsal import section
from model.findings import Finding
from model.records import PlanResult, Registration
from tests.unit.rehearsal_plans import mutate, reg
from tools.mocks import ROOT

SETTLE = "kubernetes:batch/v1:Job"  # the settle waits (components/settle.py)
POOLS = ("pulumiservice:index:AgentPool", "pulumiservice:api/agents:Pool")


def findings(plan: PlanResult) -> list[Finding]:
    """The rehearsal's findings, with the stack's identity plan (it holds the Deployments settings)."""
    return section(plan.records, (), IDENTITY[plan.stack].records)[1]


IDENTITY: dict[str, PlanResult] = {}


@pytest.fixture(autouse=True)
def _identity(identity_plans: dict[str, PlanResult]) -> None:
    IDENTITY.update(identity_plans)


def hits(plan: PlanResult, rule: str) -> set[str]:
    return {f.urn.rsplit("::", 1)[-1] for f in findings(plan) if f.rule == rule and f.urn}


def mandatory(plan: PlanResult, rule: str) -> list[Finding]:
    return [f for f in findings(plan) if f.rule == rule and f.level == "mandatory"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_blocker_1_cluster_scoped_resources_given_a_plain_cluster_name(
    plans: dict[str, PlanResult], stack: str
) -> None:
    scoped = ("aws:eks/accessEntry:AccessEntry", "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    roles = {r.urn for r in plans[stack].records if r.type.startswith("aws:iam/")}

    def plain_name(r: Registration) -> Registration:
        # A string cluster name carries no dependency: only the IAM role and policy remain.
        return dataclasses.replace(r, dependencies=[d for d in r.dependencies if d in roles])

    broken = mutate(plans[stack], plain_name, lambda r: r.type in scoped)
    assert {"karpenter-node", "karpenter-controller", "secrets-eso"} <= {
        name.removeprefix(f"eks-platform-{stack}-") for name in hits(broken, "rehearsal-cluster-order")
    }


def test_blocker_2_private_endpoint_with_hosted_runners(prod: PlanResult) -> None:
    def private(r: Registration) -> Registration:
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, "endpointPublicAccess": False})

    def hosted(r: Registration) -> Registration:
        inputs = {k: v for k, v in r.raw_inputs.items() if k != "agentPoolId"}
        return dataclasses.replace(r, raw_inputs=inputs)

    broken = mutate(prod, private, lambda r: r.type == "eks:index:Cluster")
    identity = mutate(IDENTITY["prod"], lambda r: None, lambda r: r.type in POOLS)
    identity = mutate(identity, hosted, lambda r: r.type == "pulumiservice:index:DeploymentSettings")
    IDENTITY["prod"] = identity
    reach = mandatory(broken, "rehearsal-applier-reach")
    assert reach and "Pulumi-hosted runners" in reach[0].message and "private" in reach[0].message
    assert mandatory(broken, "rehearsal-no-deploy-path")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_blocker_3_deploy_role_not_cluster_admin(plans: dict[str, PlanResult], stack: str) -> None:
    settings = IDENTITY[stack].one("pulumiservice:index:DeploymentSettings")
    deploy_role = settings.get("operationContext.oidc.aws.roleARN")

    def admins_only(r: Registration) -> Registration:
        inputs = {k: v for k, v in r.raw_inputs.items() if k != "providerCredentialOpts"}
        entries = r.get("accessEntries") or {}
        inputs["accessEntries"] = {k: e for k, e in entries.items() if e.get("principalArn") != deploy_role}
        return dataclasses.replace(r, raw_inputs=inputs)

    broken = mutate(plans[stack], admins_only, lambda r: r.type == "eks:index:Cluster")
    admin = mandatory(broken, "rehearsal-applier-admin")
    assert admin and deploy_role in admin[0].message


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_blocker_5_releases_start_right_after_their_association(
    plans: dict[str, PlanResult], stack: str
) -> None:
    broken = mutate(plans[stack], lambda r: None, lambda r: r.type == SETTLE)
    assert {f"eks-platform-{stack}-karpenter-controller", f"eks-platform-{stack}-secrets-operator"} <= hits(
        broken, "rehearsal-pod-identity-settle"
    )


def test_blocker_6_dev_names_reserved_after_destroy(dev: PlanResult) -> None:
    def fixed_window(r: Registration) -> Registration:
        name = r.get("name") or f"{r.get('namePrefix', 'x')}fixed"
        inputs = {**r.raw_inputs, "name": name, "recoveryWindowInDays": 7}
        return dataclasses.replace(r, raw_inputs=inputs, protect=False)

    broken = mutate(dev, fixed_window, lambda r: r.type == "aws:secretsmanager/secret:Secret")
    cluster_name = dev.one("eks:index:Cluster").get("name")
    log = f"/aws/eks/{cluster_name}/cluster"
    logs = [r for r in broken.records if r.get("name") == log]
    if not logs:  # the program stopped owning it: reintroduce it
        broken.records.append(
            reg("control-plane-logs", "aws:cloudwatch/logGroup:LogGroup", inputs={"name": log})
        )
    found = [f for f in findings(broken) if f.rule == "rehearsal-reserved-names"]
    assert any("Secret" in f.message and "7-day" in f.message for f in found)
    assert any(log in f.message for f in found)


def test_blocker_6_fixed_dev_adopts_the_log_group_eks_recreates(dev: PlanResult) -> None:
    """The program looks the group up by name and imports it when EKS recreated it: no collision.
    Without that lookup (above: the records alone), or with a lookup of another name, it is a finding."""
    log = f"/aws/eks/{dev.one('eks:index:Cluster').get('name')}/cluster"
    lookups = [c for c in dev.lookups if c["token"] == "aws:cloudwatch/getLogGroups:getLogGroups"]
    assert [c["args"]["logGroupNamePrefix"] for c in lookups] == [log]
    assert not [f for f in section(dev.records, dev.lookups)[1] if f.rule == "rehearsal-reserved-names"]
    other = [{**c, "args": {"logGroupNamePrefix": "/aws/eks/another/cluster"}} for c in lookups]
    found = [f for f in section(dev.records, other)[1] if f.rule == "rehearsal-reserved-names"]
    assert [log in f.message for f in found] == [True]


@pytest.mark.parametrize(("stack", "claims"), [("dev", False), ("prod", True)])
def test_blocker_7_monitoring_without_the_csi_driver(
    plans: dict[str, PlanResult], stack: str, claims: bool
) -> None:
    """Prod's monitoring claims volumes and must wait for the driver; dev's claims none (emptyDir)."""
    storage = {
        r.urn
        for r in plans[stack].records
        if r.get("addonName") == "aws-ebs-csi-driver" or "StorageClass" in json.dumps(r.get("objs") or [])
    }
    assert storage, "the plan has an EBS CSI add-on and a StorageClass"
    # A dependency on a component that holds them counts too (the engine expands it to its children).
    parents = {r.urn: r.parent for r in plans[stack].records}
    for leaf in list(storage):
        ancestor = parents.get(leaf)
        while ancestor:
            storage.add(ancestor)
            ancestor = parents.get(ancestor)
    storage -= {r.urn for r in plans[stack].records if r.type == "pulumi:pulumi:Stack"}

    def unordered(r: Registration) -> Registration:
        return dataclasses.replace(r, dependencies=[d for d in r.dependencies if d not in storage])

    stack_release = f"eks-platform-{stack}-monitoring-stack"
    # The blocker: the Monitoring component (every release in it) does not depend on the add-ons,
    # nor does its namespace (through which it would wait for them all the same).
    broken = mutate(
        plans[stack],
        unordered,
        lambda r: "platform:monitoring:Monitoring" in r.urn or "platform:namespaces:Namespaces" in r.urn,
    )
    assert (stack_release in hits(broken, "rehearsal-volumes")) is claims


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_plan_json_carries_the_rehearsal_within_the_contract(
    plan_documents: dict[str, dict[str, Any]], plans: dict[str, PlanResult], stack: str
) -> None:
    document = plan_documents[stack]
    jsonschema.validate(document, json.loads((ROOT / "tests" / "fixtures" / "plan.schema.json").read_text()))
    rehearsal = document["rehearsal"]
    assert rehearsal["create"]["minutes"] > 0 and rehearsal["create"]["criticalPath"]
    assert [a["path"] for a in rehearsal["appliers"]] == ["make up", "Pulumi Deployments"]
    # The rehearsal's findings are among the plan's findings, exactly.
    listed = [f for f in document["findings"] if f["rule"].startswith("rehearsal-")]
    expected = [
        f.document() for f in section(plans[stack].records, plans[stack].lookups, IDENTITY[stack].records)[1]
    ]
    key = lambda f: json.dumps(f, sort_keys=True)  # noqa: E731
    assert sorted(listed, key=key) == sorted(expected, key=key)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_plan_has_no_mandatory_finding_policy_or_rehearsal(
    plan_documents: dict[str, dict[str, Any]], stack: str
) -> None:
    """The gate over the whole plan document, policy and rehearsal findings alike: both shipped
    stacks would deploy (dev's push-to-deploy included: it runs on agents in dev's VPC)."""
    blocking = [f for f in plan_documents[stack]["findings"] if f["level"] == "mandatory"]
    assert not blocking, f"{stack} would not deploy:\n" + "\n".join(
        f"{f['rule']} {f['urn']}: {f['message']}" for f in blocking
    )
