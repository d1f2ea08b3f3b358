"""Who applies the stack, from where: can that principal reach the API endpoint, and is it cluster admin?

    appliers, findings = judge(graph)

Two deploy paths: `make up` (the operator's AWS credentials, on a workstation outside the VPC) and
Pulumi Deployments on push (the deploy role through OIDC, on Pulumi-hosted runners unless
`DeploymentSettings.agentPoolId` names a customer-managed agent pool). Kubernetes resources are
applied with the cluster's kubeconfig, which assumes `providerCredentialOpts.roleArn` when set, so
both paths then act as that role. Facts and sources: platform/rehearsal.yaml (`hostedRunnerEgress`,
pulumi-eks defaults).

Findings: `rehearsal-applier-reach` / `rehearsal-applier-admin` per path (mandatory for Deployments,
which runs on every push; advisory for `make up`, which an operator can run from elsewhere), and
`rehearsal-no-deploy-path` (mandatory) when no path can both reach the endpoint and act as admin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from analysis.graph import Graph
from analysis.prerequisites import facts
from policy.model import Level
from tools.mocks import Registration
from tools.policy_check import Finding

# A pool's id is computed by Pulumi Cloud (unknown in a plan): the settings' dependency on the pool
# resource says the same (pulumi/pulumi-pulumiservice schema.json @dc76a0186fd9).
POOL_TYPES = ("pulumiservice:index:AgentPool", "pulumiservice:api/agents:Pool")


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


def judge(graph: Graph) -> tuple[list[Applier], list[Finding]]:
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
    creator = (True, "the identity that creates the cluster is made admin (pulumi-eks bootstrap)")
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
    for settings in graph.of_type("pulumiservice:index:DeploymentSettings"):
        deploy_role = settings.get("operationContext.oidc.aws.roleARN")
        pool = settings.get("agentPoolId") or next(
            (p.name for p in graph.of_type(*POOL_TYPES) if p.urn in graph.ancestors(settings.urn)), None
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
    return appliers, _findings(cluster, appliers)


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
