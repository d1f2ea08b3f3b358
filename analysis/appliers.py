"""Who applies the stack and each resource, from where: can that principal reach the API endpoint,
is it cluster admin, and does any resource it applies define the identity it applies as?

    appliers, findings = judge(graph, identity)      # a platform plan; `identity`: its identity plan
    rows = applied_by(graph, appliers)              # per resource: who, from where, on the first up
    rows, findings = admin_applied(graph)            # an identity plan (identity/): admins only

Two deploy paths: `make up` (the operator's AWS credentials, on a workstation outside the VPC) and
Pulumi Deployments on push (the deploy role through OIDC, on Pulumi-hosted runners unless
`DeploymentSettings.agentPoolId` names a customer-managed agent pool). Kubernetes resources are
applied with the cluster's kubeconfig, which assumes `providerCredentialOpts.roleArn` when set, so
both paths then act as that role. Facts and sources: platform/rehearsal.yaml (`hostedRunnerEgress`,
pulumi-eks defaults).

Findings: `rehearsal-applier-reach` / `rehearsal-applier-admin` per path (mandatory for Deployments,
which runs on every push; advisory for `make up`, which an operator can run from elsewhere), and
`rehearsal-no-deploy-path` (mandatory) when no path can both reach the endpoint and act as admin.

The deploy identity (the deploy role, its policies, any other `<prefix>-deployments-*` role, the
permissions boundary, Pulumi's OIDC provider, the agent pool, its token secret, the deployment
settings) belongs to the identity project, applied by admins from a workstation (DESIGN.md "Who
applies what"). The DeploymentSettings live in the identity plan, so a platform plan is judged
together with it. In a plan applied as the deploy role, a resource of that identity is `identity-
applied-by-itself` (mandatory: a change to the role fails on its own Deny, a broken trust or pool
leaves no run to repair it), and any Pulumi Cloud resource is `identity-org-resource-in-run`
(mandatory: a push-triggered run's token is admin on its own stack only, Pulumi docs, Deployments >
Deployment Permissions). An identity plan with a Kubernetes resource is `identity-needs-kubernetes`
(mandatory: its appliers work from outside the VPC); Deployments settings for the identity project
itself are `identity-applied-by-itself` too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.graph import Graph
from analysis.internals import grants_creator_admin
from analysis.prerequisites import facts
from model.findings import Finding
from model.records import Registration
from policy.model import Level

# A pool's id is computed by Pulumi Cloud (unknown in a plan): the settings' dependency on the pool
# resource says the same (pulumi/pulumi-pulumiservice schema.json @dc76a0186fd9).
POOL_TYPES = ("pulumiservice:index:AgentPool", "pulumiservice:api/agents:Pool")
SETTINGS = "pulumiservice:index:DeploymentSettings"
ROLE_CHILDREN = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
PULUMI_OIDC = "api.pulumi.com/oidc"
# The identity project's boundary policy and token secret (components/deploy_policy.py
# BOUNDARY_SUFFIX, components/deploy_roles.py agent_token_secret_name): the deploy role denies
# itself every change to them.
BOUNDARY_SUFFIX = "-boundary"
TOKEN_SECRET = "/deploy-agent-token"  # noqa: S105 - a secret's name, not its value
ADMIN = "an admin (a cluster.adminRoleArns role) with a personal Pulumi Cloud token"
WORKSTATION = "a workstation: AWS and Pulumi Cloud APIs only, never the Kubernetes API"
IDENTITY_FIRST = "after make up PROJECT=identity (the deploy role and the permissions boundary)"


@dataclass(frozen=True)
class Applier:
    path: str
    runs_on: str
    principal: str
    reaches: bool
    reach_reason: str
    admin: bool
    admin_reason: str
    mandatory: bool

    def document(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "runsOn": self.runs_on,
            "principal": self.principal,
            "reachesEndpoint": self.reaches,
            "reach": self.reach_reason,
            "clusterAdmin": self.admin,
            "admin": self.admin_reason,
        }


def admin_principals(graph: Graph, cluster: Registration) -> set[str]:
    """Principal ARNs with AmazonEKSClusterAdminPolicy: the cluster's `accessEntries` input, and
    standalone AccessPolicyAssociations."""
    policy = facts()["clusterAdminPolicy"]
    out = set()
    for entry in (cluster.get("accessEntries") or {}).values():
        policies = (entry.get("accessPolicies") or {}).values()
        if any(str(p.get("policyArn", "")).endswith(policy) for p in policies):
            out.add(str(entry.get("principalArn")))
    for assoc in graph.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        if str(assoc.get("policyArn", "")).endswith(policy):
            out.add(str(assoc.get("principalArn")))
    return out


def _covers(cidrs: Iterable[str], addresses: Iterable[str]) -> bool:
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    return all(any(ipaddress.ip_network(a).subnet_of(n) for n in nets) for a in addresses)  # type: ignore[arg-type]


def _endpoint(cluster: Registration) -> tuple[bool, list[str]]:
    public = cluster.get("endpointPublicAccess", facts()["endpointPublicDefault"])
    cidrs = list(cluster.get("publicAccessCidrs") or facts()["publicCidrsDefault"])
    return bool(public), cidrs


def _admin(principal: str | None, admins: set[str], fallback: tuple[bool, str]) -> tuple[bool, str]:
    if principal is None:
        return fallback
    if principal in admins:
        return True, f"{principal} has an access entry with {facts()['clusterAdminPolicy']}"
    return False, f"{principal} has no access entry with {facts()['clusterAdminPolicy']}"


def _operator_admin(cluster: Registration, admins: set[str]) -> tuple[bool, str]:
    """Whether `make up` with the operator's own credentials is cluster admin. Only through an access
    entry: EKS's creator bootstrap counts only where the component's recorded children still ask
    for it (components/cluster.py `creator_admin_off` turns it off; analysis/internals.py)."""
    if grants_creator_admin(cluster):
        return True, "the identity that creates the cluster is made admin (pulumi-eks bootstrap)"
    policy = facts()["clusterAdminPolicy"]
    if admins:
        return (
            True,
            f"the operator acts as one of {', '.join(sorted(admins))} "
            f"(each has an access entry with {policy})",
        )
    return False, (
        f"no principal has an access entry with {policy} (cluster.adminRoleArns is empty), and the "
        "creator's bootstrap admin entry is off"
    )


def judge(graph: Graph, identity: Sequence[Registration] = ()) -> tuple[list[Applier], list[Finding]]:
    """The deploy paths of a platform plan; `identity`: its identity plan's records, which hold the
    DeploymentSettings (a plan that still holds its own settings is judged on those too)."""
    clusters = graph.of_type("eks:index:Cluster")
    if not clusters:
        return [], []
    cluster = clusters[0]
    public, cidrs = _endpoint(cluster)
    admins = admin_principals(graph, cluster)
    kube_role = cluster.get("providerCredentialOpts.roleArn")
    appliers = []

    reach = (
        (True, f"public endpoint, if the operator's address is in {', '.join(cidrs)}")
        if public
        else (False, "the endpoint is private and a workstation is outside the VPC")
    )
    creator = _operator_admin(cluster, admins)
    appliers.append(
        Applier(
            "make up",
            "an operator's workstation, outside the VPC",
            kube_role or "the operator's AWS credentials",
            *reach,
            *_admin(kube_role, admins, creator),
            mandatory=False,
        )
    )
    pools = [*graph.of_type(*POOL_TYPES), *(r for r in identity if r.type in POOL_TYPES)]
    for settings in [*graph.of_type(SETTINGS), *(r for r in identity if r.type == SETTINGS)]:
        deploy_role = settings.get("operationContext.oidc.aws.roleARN")
        pool = settings.get("agentPoolId") or next(
            (p.name for p in pools if p.urn in _needs(graph, settings)), None
        )
        if pool:
            runs_on, reach = (
                f"customer-managed agents of pool {pool}, in the stack's private subnets",
                (True, "the agents run inside the VPC"),
            )
        else:
            egress = facts()["hostedRunnerEgress"]
            ok = public and _covers(cidrs, egress)
            runs_on = "Pulumi-hosted runners, outside the VPC"
            reach = (
                ok,
                "public endpoint open to Pulumi's egress addresses"
                if ok
                else (
                    "the endpoint is private"
                    if not public
                    else f"publicAccessCidrs {', '.join(cidrs)} exclude Pulumi's egress {', '.join(egress)}"
                ),
            )
        not_creator = (
            False,
            "the deploy role is created by this stack, so it cannot be the cluster's creator",
        )
        principal = kube_role or deploy_role
        admin = _admin(principal, admins, not_creator) if principal else not_creator
        appliers.append(
            Applier("Pulumi Deployments", runs_on, str(principal), *reach, *admin, mandatory=True)
        )
    principals = {a.principal for a in appliers if a.path == "Pulumi Deployments"} | (
        {kube_role} if kube_role else set()
    )
    return appliers, _findings(cluster, appliers) + self_applied(graph, principals)


def _needs(graph: Graph, r: Registration) -> frozenset[str]:
    return graph.ancestors(r.urn) if r.urn in graph.nodes else frozenset(r.dependencies)


def _role_name(arn: str) -> str:
    return arn.rsplit(":role/", 1)[-1].rsplit("/", 1)[-1]


def self_applied(graph: Graph, principals: set[str]) -> list[Finding]:
    """Resources of the deploy identity in a plan applied as that identity (see the module docstring)."""
    names = {_role_name(p) for p in principals if ":role/" in p}
    if not names:
        return []
    roles = [r for r in graph.of_type("aws:iam/role:Role") if r.get("name") in names]
    own = {r.urn for r in roles}
    # Any other role under the deploy role's `<prefix>-deployments-` (components/deploy_roles.py
    # role_name): the role's own Deny covers the pattern (components/deploy_policy.py identity_denies).
    stems = tuple(n.removesuffix("deploy") for n in names if n.endswith("-deployments-deploy"))
    out = []
    for r in graph.nodes.values():
        what = None
        if r.urn in own:
            what = f"the deploy role {r.get('name')}"
        elif r.type in ROLE_CHILDREN and own & set(r.dependencies):
            what = "a policy of the deploy role"
        elif r.type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider" and PULUMI_OIDC in str(
            r.get("url")
        ):
            what = "Pulumi's OIDC provider, which the deploy role's trust names"
        elif r.type == "aws:iam/policy:Policy" and str(r.get("name", "")).endswith(BOUNDARY_SUFFIX):
            what = "the permissions boundary, which every role the deploy role writes must carry"
        elif r.type == "aws:iam/role:Role" and str(r.get("name")).startswith(stems):
            what = f"the role {r.get('name')} (a `-deployments-*` role, which the deploy role denies itself)"
        elif r.type == "aws:secretsmanager/secret:Secret" and str(r.get("name", "")).endswith(TOKEN_SECRET):
            what = "the agent pool's token secret"
        elif r.type in (*POOL_TYPES, SETTINGS):
            what = "the agent pool" if r.type in POOL_TYPES else "the deployment settings"
        if what:
            out.append(
                Finding(
                    "identity-applied-by-itself",
                    Level.MANDATORY,
                    r.urn,
                    f"{what} is applied by {', '.join(sorted(principals))}, the identity it defines: "
                    "a change to it fails on the role's own Deny or breaks the run that applies it, "
                    "with no path left to repair it; it belongs to the identity project (identity/, "
                    "applied by an admin).",
                )
            )
        if r.type.startswith("pulumiservice:"):
            out.append(
                Finding(
                    "identity-org-resource-in-run",
                    Level.MANDATORY,
                    r.urn,
                    f"{r.type} is managed through Pulumi Cloud's API, and a push-triggered deployment's "
                    "token is admin on its own stack only (Pulumi docs, Deployments > Deployment "
                    "Permissions): refresh and every change are refused; apply it from the identity project.",
                )
            )
    return out


def applied_by(graph: Graph, appliers: list[Applier]) -> list[dict[str, str]]:
    """Per resource of a platform plan: who applies it, from where, and who creates it on the first up."""
    runs = [a for a in appliers if a.path == "Pulumi Deployments"] or appliers
    by, where = (f"{runs[0].path}, as {runs[0].principal}", runs[0].runs_on) if runs else ("make up", "")
    bootstrap = "make bootstrap or make up: an admin's workstation, as the deploy role, no Kubernetes API"
    deployed = "the first deployment run (needs the Kubernetes API)"
    if any(a.path == "Pulumi Deployments" for a in appliers):
        # The platform derives the deploy role's and the boundary's ARNs (plain strings, no
        # dependency the engine could order by): the identity project must exist first.
        bootstrap, deployed = (f"{IDENTITY_FIRST}, then {first}" for first in (bootstrap, deployed))
    rows = []
    for r in sorted(graph.nodes.values(), key=lambda r: r.urn):
        kubernetes = r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))
        first = deployed if kubernetes else bootstrap
        rows.append({"urn": r.urn, "appliedBy": by, "from": where, "firstApply": first})
    return rows


def admin_applied(graph: Graph) -> tuple[list[dict[str, str]], list[Finding]]:
    """Per resource of an identity plan: an admin from a workstation; a Kubernetes resource there is
    a finding (the admins cannot reach a private endpoint)."""
    rows, findings = [], []
    for r in sorted(graph.nodes.values(), key=lambda r: r.urn):
        rows.append(
            {
                "urn": r.urn,
                "appliedBy": f"make up PROJECT=identity: {ADMIN}",
                "from": WORKSTATION,
                "firstApply": "the same",
            }
        )
        if r.type == SETTINGS and str(r.get("project", "")).endswith("-identity"):
            findings.append(
                Finding(
                    "identity-applied-by-itself",
                    Level.MANDATORY,
                    r.urn,
                    f"deployment settings for the identity project itself ({r.get('project')}): a run "
                    "would apply the role, trust and pool it runs with; the identity is applied by "
                    "admins only (make up PROJECT=identity).",
                )
            )
        if r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes")):
            findings.append(
                Finding(
                    "identity-needs-kubernetes",
                    Level.MANDATORY,
                    r.urn,
                    f"{r.type} in the identity project needs the Kubernetes API, which its appliers "
                    "(admins on a workstation) cannot reach behind a private endpoint.",
                )
            )
    return rows, findings


def _findings(cluster: Registration, appliers: list[Applier]) -> list[Finding]:
    out = []
    for a in appliers:
        level = Level.MANDATORY if a.mandatory else Level.ADVISORY
        if not a.reaches:
            out.append(
                Finding(
                    "rehearsal-applier-reach",
                    level,
                    cluster.urn,
                    f"{a.path} runs on {a.runs_on} and cannot reach the API endpoint: {a.reach_reason}; "
                    "every Kubernetes resource would time out.",
                )
            )
        if not a.admin:
            out.append(
                Finding(
                    "rehearsal-applier-admin",
                    level,
                    cluster.urn,
                    f"{a.path} applies as {a.principal}, which is not a cluster admin: {a.admin_reason}; "
                    "the Kubernetes provider gets 'Unauthorized'.",
                )
            )
    if not any(a.reaches and a.admin for a in appliers):
        out.append(
            Finding(
                "rehearsal-no-deploy-path",
                Level.MANDATORY,
                cluster.urn,
                "no deploy path can apply this stack: "
                + "; ".join(f"{a.path}: reach {a.reaches}, admin {a.admin}" for a in appliers),
            )
        )
    return sorted(out, key=lambda f: (f.rule, f.message))
