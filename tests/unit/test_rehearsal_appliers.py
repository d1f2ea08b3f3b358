"""Who applies a stack: reach and cluster-admin on synthetic clusters and deploy settings."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.appliers import applied_by, judge
from analysis.graph import build
from policy.model import Level
from tests.unit.rehearsal_plans import reg

DEPLOY = "arn:aws:iam::123456789012:role/p-deployments-deploy"
ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# Pulumi Cloud's published addresses: "the external-facing addresses of the Pulumi Cloud SaaS", not
# the hosted runners' egress, which Pulumi does not publish (platform/rehearsal.yaml hostedRunnerEgress).
PULUMI_CLOUD = ["34.208.94.47/32", "34.212.116.224/32", "44.241.59.217/32", "52.40.198.20/32"]


def plan(
    *, public: bool, cidrs: list[str] | None = None, entry: bool, kube_role: bool, pool: bool
) -> tuple[list[Any], list[Any]]:
    """A platform plan (the cluster) and its identity plan (the agent pool and the settings)."""
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
    identity = []
    agent_pool = reg("agents", "pulumiservice:index:AgentPool")
    if pool:
        identity.append(agent_pool)
    settings = {"operationContext": {"oidc": {"aws": {"roleARN": DEPLOY}}}}
    identity.append(
        reg(
            "settings",
            "pulumiservice:index:DeploymentSettings",
            *([agent_pool.urn] if pool else []),
            inputs=settings,
        )
    )
    return records, identity


def rules(**kwargs: Any) -> dict[str, Level]:
    records, identity = plan(**kwargs)
    _, findings = judge(build(records), identity)
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
    # No admin entry at all: the operator is no admin either (the creator bootstrap is not recorded).
    found = rules(public=True, entry=False, kube_role=False, pool=True)
    assert found == {
        "rehearsal-applier-admin:Pulumi": Level.MANDATORY,
        "rehearsal-applier-admin:make": Level.ADVISORY,
        "rehearsal-no-deploy-path": Level.MANDATORY,
    }


def test_the_operator_is_admin_through_the_creator_bootstrap_only_where_the_children_keep_it() -> None:
    records, _ = plan(public=True, entry=False, kube_role=False, pool=False)
    cluster = records[0]
    eks_cluster = {"type": "aws:eks/cluster:Cluster", "name": "cluster-eksCluster", "ignoreChanges": []}
    on = {"accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}}
    off = {"accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}}
    cluster.children[:] = [eks_cluster | {"props": on}]
    (make_up,) = judge(build(records))[0]
    assert make_up.admin and "bootstrap" in make_up.admin_reason
    cluster.children[:] = [eks_cluster | {"props": off}]
    (make_up,), findings = judge(build(records))
    assert not make_up.admin and "bootstrap admin entry is off" in make_up.admin_reason
    assert "rehearsal-no-deploy-path" in {f.rule for f in findings}


def test_a_kubeconfig_role_without_an_entry_fails_both_paths() -> None:
    found = rules(public=True, entry=False, kube_role=True, pool=True)
    assert found["rehearsal-applier-admin:make"] is Level.ADVISORY
    assert found["rehearsal-applier-admin:Pulumi"] is Level.MANDATORY
    assert found["rehearsal-no-deploy-path"] is Level.MANDATORY


@pytest.mark.parametrize(
    ("cidrs", "reaches"),
    [
        (None, True),
        (["0.0.0.0/0"], True),
        (PULUMI_CLOUD, False),
        (["203.0.113.0/24", *PULUMI_CLOUD], False),
        (["203.0.113.0/24"], False),
    ],
)
def test_hosted_runners_reach_a_public_endpoint_only_through_its_cidrs(
    cidrs: list[str] | None, reaches: bool
) -> None:
    found = rules(public=True, cidrs=cidrs, entry=True, kube_role=False, pool=False)
    assert ("rehearsal-applier-reach:Pulumi" in found) is not reaches


def test_the_appliers_are_stated() -> None:
    records, identity = plan(public=False, entry=True, kube_role=True, pool=True)
    appliers, _ = judge(build(records), identity)
    docs = [a.document() for a in appliers]
    assert [d["path"] for d in docs] == ["make up", "Pulumi Deployments"]
    assert all(d["principal"] == DEPLOY for d in docs)
    assert "agents" in docs[1]["runsOn"] and docs[1]["reachesEndpoint"] and docs[1]["clusterAdmin"]


def test_the_deploy_identity_inside_the_platform_plan_is_a_blocker() -> None:
    """The old design: role, policy, Pulumi's OIDC provider, pool and settings in the stack the role
    applies. Each is a mandatory finding; the Pulumi Cloud ones twice (a stack token cannot manage them)."""
    records, identity = plan(public=False, entry=True, kube_role=True, pool=True)
    role = reg("p-deploy", "aws:iam/role:Role", inputs={"name": "p-deployments-deploy"})
    policy = reg("p-deploy-policy", "aws:iam/rolePolicy:RolePolicy", role.urn)
    oidc = reg(
        "oidc",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        inputs={"url": "https://api.pulumi.com/oidc"},
    )
    other = reg("ci", "aws:iam/role:Role", inputs={"name": "p-ci"})
    _, findings = judge(build([*records, role, policy, oidc, other, *identity]))
    found = sorted(
        (f.rule, str(f.urn).rsplit("::", 1)[-1]) for f in findings if f.rule.startswith("identity-")
    )
    assert found == [
        ("identity-applied-by-itself", "agents"),
        ("identity-applied-by-itself", "oidc"),
        ("identity-applied-by-itself", "p-deploy"),
        ("identity-applied-by-itself", "p-deploy-policy"),
        ("identity-applied-by-itself", "settings"),
        ("identity-org-resource-in-run", "agents"),
        ("identity-org-resource-in-run", "settings"),
    ]
    assert all(f.level is Level.MANDATORY for f in findings if f.rule.startswith("identity-"))
    # The same resources in the identity plan, applied by an admin: no such finding.
    _, clean = judge(build(records), [role, policy, oidc, *identity])
    assert not [f for f in clean if f.rule.startswith("identity-")]


def test_the_boundary_a_deployments_role_and_the_token_in_the_platform_plan_are_blockers() -> None:
    """The deploy role denies itself every change to them: in the plan it applies, a change to any
    would fail; they are the identity project's (least-privilege's boundary used to be created in
    the platform stack, next to the role). A role under the deploy role's `<prefix>-deployments-`
    (say one an admin adds) falls under its Deny by pattern; a role elsewhere in the prefix does not."""
    records, identity = plan(public=False, entry=True, kube_role=True, pool=True)
    name = DEPLOY.rsplit("/", 1)[1]  # p-deployments-deploy; its pattern: p-deployments-*
    boundary = reg("p-boundary", "aws:iam/policy:Policy", inputs={"name": "eks-platform-prod-boundary"})
    sibling = reg("p-sibling", "aws:iam/role:Role", inputs={"name": name.removesuffix("deploy") + "new"})
    bounded = reg("p-ci", "aws:iam/role:Role", inputs={"name": "p-ci"})
    token = reg(
        "p-token", "aws:secretsmanager/secret:Secret", inputs={"name": "eks-platform-prod/deploy-agent-token"}
    )
    other = reg("p-grafana", "aws:secretsmanager/secret:Secret", inputs={"name": "eks-platform-prod/grafana"})
    _, findings = judge(build([*records, boundary, sibling, bounded, token, other]), identity)
    found = sorted(str(f.urn).rsplit("::", 1)[-1] for f in findings if f.rule == "identity-applied-by-itself")
    assert found == ["p-boundary", "p-sibling", "p-token"]
    _, clean = judge(build(records), [boundary, sibling, token, *identity])
    assert not [f for f in clean if f.rule.startswith("identity-")]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_first_up_of_every_resource_comes_after_the_identity_project(
    stack: str, plan_documents: dict[str, dict[str, Any]]
) -> None:
    """The platform only derives the deploy role's and the boundary's ARNs (plain strings): no
    dependency orders it after the identity project, so the plan says so for every resource."""
    rows = plan_documents[stack]["rehearsal"]["appliedBy"]
    assert rows and all(r["firstApply"].startswith("after make up PROJECT=identity") for r in rows)
    roles = [r for r in plan_documents[stack]["resources"] if r["type"] == "aws:iam/role:Role"]
    assert roles and all(isinstance(r["inputs"]["permissionsBoundary"], str) for r in roles)


def test_without_deployments_there_is_no_identity_to_wait_for() -> None:
    records, _ = plan(public=True, cidrs=["0.0.0.0/0"], entry=True, kube_role=False, pool=False)
    graph = build(records)
    appliers, _ = judge(graph)  # no identity plan: no settings, so `make up` alone
    assert [a.path for a in appliers] == ["make up"]
    assert not [r for r in applied_by(graph, appliers) if "PROJECT=identity" in r["firstApply"]]
