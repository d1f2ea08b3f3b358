"""Picture: a Mermaid flowchart of a plan document (`make diagram`, docs/architecture.md).

    text = mermaid(plan_document)

Drawn from the recorded resources only: the VPC with its AZs, subnets, NAT gateways and endpoints
(awsx:ec2:Vpc inputs and the VpcEndpoint resources), the cluster, the system node group and the
Karpenter NodePools, the EKS add-ons and Helm releases, the ECR repositories and the Secrets
Manager secrets. Every line is sorted or follows the plan's own order, so the same plan always
gives the same text (and GitHub renders the block in a job summary or a Markdown file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

Resource = Mapping[str, Any]


def _id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def _node(node_id: str, label: str, shape: str = "[]") -> str:
    """A Mermaid node; `shape` is its brackets, opening half then closing half (`[]`, `([])`)."""
    half = len(shape) // 2
    label = label.replace('"', "'")
    return f'{node_id}{shape[:half]}"{label}"{shape[half:]}'


def _of(resources: list[Resource], typ: str) -> list[Resource]:
    return sorted((r for r in resources if r["type"] == typ), key=lambda r: str(r["name"]))


def _short(resource: Resource, prefix: str) -> str:
    """A resource's name without the stack prefix (`eks-platform-prod-gitops-argocd` -> `gitops-argocd`)."""
    name = str(resource["name"])
    return name[len(prefix) + 1 :] if name.startswith(prefix + "-") else name


def _network(vpc: Resource, endpoints: list[Resource]) -> Iterator[str]:
    inputs = vpc.get("inputs") or {}
    zones: list[str] = inputs.get("availabilityZoneNames") or []
    strategy = (inputs.get("natGateways") or {}).get("strategy") or "OnePerAz"
    yield f'  subgraph vpc["VPC {inputs.get("cidrBlock", "")}"]'
    for i, zone in enumerate(zones):
        yield f'    subgraph {_id("az", zone)}["{zone}"]'
        for spec in inputs.get("subnetSpecs") or []:
            blocks = spec.get("cidrBlocks") or []
            cidr = blocks[i] if i < len(blocks) else ""
            kind = str(spec.get("type", spec.get("name", ""))).lower()
            yield "      " + _node(_id("subnet", kind, zone), f"{kind} subnet {cidr}")
        if strategy == "OnePerAz" or (strategy == "Single" and i == 0):
            yield "      " + _node(_id("nat", zone), "NAT gateway", "([])")
        yield "    end"
    services = sorted(
        str((e.get("inputs") or {}).get("serviceName", "")).rsplit(".", 1)[-1] for e in endpoints
    )
    gateways = sorted(
        str(s.get("serviceName", "")).rsplit(".", 1)[-1] for s in inputs.get("vpcEndpointSpecs") or []
    )
    if services:
        yield "    " + _node("endpoints", "interface endpoints: " + ", ".join(services), "[[]]")
    if gateways:
        yield "    " + _node("gateway_endpoints", "gateway endpoints: " + ", ".join(gateways), "[[]]")
    yield "  end"


def _nodes_label(r: Resource) -> str:
    inputs = r.get("inputs") or {}
    size = (inputs.get("scalingConfig") or {}).get("desiredSize")
    types = ", ".join(inputs.get("instanceTypes") or [])
    return f"system node group: {size} x {types}"


def _pool_label(r: Resource) -> str:
    spec = ((r.get("inputs") or {}).get("spec") or {}).get("template", {}).get("spec", {})
    capacity: list[str] = next(
        (
            q.get("values")
            for q in spec.get("requirements") or []
            if q.get("key") == "karpenter.sh/capacity-type"
        ),
        [],
    )
    name = ((r.get("inputs") or {}).get("metadata") or {}).get("name", r["name"])
    return f"Karpenter pool {name}: {', '.join(capacity or [])}"


def mermaid(document: Mapping[str, Any]) -> str:
    """The plan as a Mermaid flowchart (no code fence)."""
    resources: list[Resource] = list(document["resources"])
    prefix = f"{document.get('project', '')}-{document.get('stack', '')}"
    lines = ["flowchart TB"]
    vpcs = _of(resources, "awsx:ec2:Vpc")
    for vpc in vpcs:
        lines += _network(vpc, _of(resources, "aws:ec2/vpcEndpoint:VpcEndpoint"))
    clusters = _of(resources, "eks:index:Cluster")
    for cluster in clusters:
        inputs = cluster.get("inputs") or {}
        label = f"EKS {inputs.get('name', cluster['name'])} (Kubernetes {inputs.get('version', '?')})"
        lines.append("  " + _node("cluster", label, "{{}}"))
    lines.append('  subgraph compute["nodes"]')
    lines += [
        "    " + _node(_id("mng", _short(r, prefix)), _nodes_label(r))
        for r in _of(resources, "eks:index:ManagedNodeGroup")
    ]
    pools = _of(resources, "kubernetes:karpenter.sh/v1:NodePool")
    lines += ["    " + _node(_id("pool", _short(r, prefix)), _pool_label(r)) for r in pools]
    lines.append("  end")
    addons = sorted(
        str((r.get("inputs") or {}).get("addonName", r["name"]))
        for r in _of(resources, "aws:eks/addon:Addon")
    )
    releases = [_short(r, prefix) for r in _of(resources, "kubernetes:helm.sh/v3:Release")]
    lines.append('  subgraph services["add-ons and platform services"]')
    if addons:
        lines.append("    " + _node("eks_addons", "EKS add-ons: " + ", ".join(addons)))
    lines += ["    " + _node(_id("release", name), f"Helm {name}") for name in releases]
    lines.append("  end")
    repos = [_short(r, prefix) for r in _of(resources, "aws:ecr/repository:Repository")]
    secrets = [_short(r, prefix) for r in _of(resources, "aws:secretsmanager/secret:Secret")]
    if repos:
        lines.append("  " + _node("registries", "ECR: " + ", ".join(repos), "[()]"))
    if secrets:
        lines.append("  " + _node("secrets", "Secrets Manager: " + ", ".join(secrets), "[()]"))
    if clusters and vpcs:
        zones = vpcs[0].get("inputs", {}).get("availabilityZoneNames") or []
        lines += [f"  cluster --> {_id('subnet', 'private', z)}" for z in zones]
    if clusters:
        lines += ["  compute --> cluster", "  services --> cluster"]
        lines += ["  services -.-> registries"] if repos else []
        lines += ["  services -.-> secrets"] if secrets else []
    return "\n".join(lines) + "\n"


def markdown(document: Mapping[str, Any]) -> str:
    """The diagram as a Markdown block that GitHub renders."""
    return f"```mermaid\n{mermaid(document)}```\n"
