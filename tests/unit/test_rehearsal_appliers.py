"""Who applies a stack: reach and cluster-admin on synthetic clusters and deploy settings."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.appliers import judge
from analysis.graph import build
from policy.model import Level
from tests.unit.rehearsal_plans import reg

DEPLOY = "arn:aws:iam::123456789012:role/p-deploy"
ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
PULUMI_EGRESS = ["34.208.94.47/32", "34.212.116.224/32", "44.241.59.217/32", "52.40.198.20/32"]


def plan(
    *, public: bool, cidrs: list[str] | None = None, entry: bool, kube_role: bool, pool: bool
) -> list[Any]:
    inputs: dict[str, Any] = {"endpointPublicAccess": public, "accessEntries": {}}
    if cidrs:
        inputs["publicAccessCidrs"] = cidrs
    if entry:
        inputs["accessEntries"]["deploy"] = {
            "principalArn": DEPLOY,
            "accessPolicies": {"admin": {"policyArn": ADMIN, "accessScope": {"type": "cluster"}}},
        }
    if kube_role:
        inputs["providerCredentialOpts"] = {"roleArn": DEPLOY}
    records = [reg("cluster", "eks:index:Cluster", inputs=inputs, custom=False)]
    agent_pool = reg("agents", "pulumiservice:index:AgentPool")
    if pool:
        records.append(agent_pool)
    settings = {"operationContext": {"oidc": {"aws": {"roleARN": DEPLOY}}}}
    records.append(
        reg(
            "settings",
            "pulumiservice:index:DeploymentSettings",
            *([agent_pool.urn] if pool else []),
            inputs=settings,
        )
    )
    return records


def rules(**kwargs: Any) -> dict[str, Level]:
    _, findings = judge(build(plan(**kwargs)))
    return {
        f.rule if f.rule.endswith("no-deploy-path") else f"{f.rule}:{f.message.split(' ', 2)[0]}": f.level
        for f in findings
    }


def test_the_fixed_design_has_a_deploy_path_for_both() -> None:
    # Private endpoint, an agent pool in the VPC, the deploy role admin and assumed by the kubeconfig.
    found = rules(public=False, entry=True, kube_role=True, pool=True)
    # Only `make up` from a workstation cannot reach a private endpoint: advisory, not a blocker.
    assert found == {"rehearsal-applier-reach:make": Level.ADVISORY}


def test_private_endpoint_and_hosted_runners_leave_no_deploy_path() -> None:
    found = rules(public=False, entry=True, kube_role=True, pool=False)
    assert found["rehearsal-applier-reach:Pulumi"] is Level.MANDATORY
    assert found["rehearsal-no-deploy-path"] is Level.MANDATORY


def test_a_deploy_role_without_an_access_entry_is_not_admin() -> None:
    found = rules(public=True, entry=False, kube_role=False, pool=True)
    assert found == {"rehearsal-applier-admin:Pulumi": Level.MANDATORY}


def test_a_kubeconfig_role_without_an_entry_fails_both_paths() -> None:
    found = rules(public=True, entry=False, kube_role=True, pool=True)
    assert found["rehearsal-applier-admin:make"] is Level.ADVISORY
    assert found["rehearsal-applier-admin:Pulumi"] is Level.MANDATORY
    assert found["rehearsal-no-deploy-path"] is Level.MANDATORY


@pytest.mark.parametrize(
    ("cidrs", "reaches"),
    [(None, True), (["0.0.0.0/0"], True), (PULUMI_EGRESS, True), (["203.0.113.0/24"], False)],
)
def test_hosted_runners_reach_a_public_endpoint_only_through_its_cidrs(
    cidrs: list[str] | None, reaches: bool
) -> None:
    found = rules(public=True, cidrs=cidrs, entry=True, kube_role=False, pool=False)
    assert ("rehearsal-applier-reach:Pulumi" in found) is not reaches


def test_the_appliers_are_stated() -> None:
    appliers, _ = judge(build(plan(public=False, entry=True, kube_role=True, pool=True)))
    docs = [a.document() for a in appliers]
    assert [d["path"] for d in docs] == ["make up", "Pulumi Deployments"]
    assert all(d["principal"] == DEPLOY for d in docs)
    assert "agents" in docs[1]["runsOn"] and docs[1]["reachesEndpoint"] and docs[1]["clusterAdmin"]
