"""Node-local credentials under default deny: which pods must reach EKS Pod Identity's agent, and IMDS.

The plan says which pods get AWS credentials: every Pod Identity association (aws:eks/
podIdentityAssociation, and an EKS add-on's `podIdentityAssociations`) names a namespace and a
service account. Their pods fetch credentials from the agent on their node, 169.254.170.23:80, which
the VPC CNI's policy agent does not exempt from a default deny (aws-network-policy-agent v1.3.1
pkg/fwruleprocessor/fw_rule_processor.go exempts the node's own IP only). So, on the flow table
(platform/network-flows.yaml) of analysis/netpol.py: each association's pods must reach the agent,
every other pod outside kube-system must not, and no pod outside kube-system reaches IMDS unless a
table row allows it. An association no table endpoint runs as cannot be proved: the caller reports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.netpol_eval import Endpoint, Flow

SERVICE = "service"  # the flow table's stand-in for each service namespace
POD_IDENTITY_AGENT = "pod-identity-agent"  # the table's endpoint names the analysis relies on
IMDS = "imds"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ADDON = "aws:eks/addon:Addon"
# An EKS add-on installs into kube-system unless its `namespaceConfig` names another namespace
# (EKS API reference, CreateAddon `namespaceConfig`).
ADDON_NAMESPACE = "kube-system"


@dataclass(frozen=True)
class Association:
    """A Pod Identity association of the plan: the pods of `service_account` get AWS credentials."""

    namespace: str
    service_account: str
    urn: str


def pod_identity_associations(document: Mapping[str, Any]) -> list[Association]:
    """Every Pod Identity association the plan creates, the EKS add-ons' included."""
    out = []
    for r in document["resources"]:
        inputs = r["inputs"]
        if r["type"] == ASSOCIATION:
            out.append(Association(str(inputs["namespace"]), str(inputs["serviceAccount"]), r["urn"]))
        elif r["type"] == ADDON:
            namespace = (inputs.get("namespaceConfig") or {}).get("namespace") or ADDON_NAMESPACE
            out += [
                Association(str(namespace), str(a["serviceAccount"]), r["urn"])
                for a in inputs.get("podIdentityAssociations") or []
            ]
    return sorted(out, key=lambda a: (a.namespace, a.service_account, a.urn))


def runs_as(
    table: Mapping[str, Any], ends: Mapping[str, list[Endpoint]], namespace: str, account: str
) -> list[Endpoint]:
    """The pod endpoints that run as `namespace`/`account` (a service's account is its release name)."""
    out = []
    for name, spec in sorted(table["endpoints"].items()):
        if "serviceAccount" not in spec:
            continue
        for e in ends[name]:
            sa = e.namespace if spec["namespace"] == SERVICE else spec["serviceAccount"]
            if (e.namespace, sa) == (namespace, account):
                out.append(e)
    return out


def credential_flows(
    table: Mapping[str, Any], ends: Mapping[str, list[Endpoint]], associations: Sequence[Association]
) -> tuple[list[Flow], list[Association]]:
    """The node-local credential flows the plan implies, and the associations no endpoint runs as.

    Each association's pods reach the Pod Identity agent on its port; every other pod outside
    kube-system is denied it, and every pod outside kube-system that no table row allows IMDS is
    denied IMDS."""
    agent, imds = ends[POD_IDENTITY_AGENT][0], ends[IMDS][0]
    [agent_port] = agent.ports.values()
    [imds_port] = imds.ports.values()
    out: list[Flow] = []
    unmodelled: list[Association] = []
    with_role: set[str] = set()
    for assoc in associations:
        pods = runs_as(table, ends, assoc.namespace, assoc.service_account)
        if not pods:
            unmodelled.append(assoc)
        why = f"EKS Pod Identity credentials of {assoc.namespace}/{assoc.service_account}"
        for pod in pods:
            with_role.add(pod.name)
            out.append(Flow(source=pod, destination=agent, port=agent_port, allowed=True, why=why))
    imds_allowed = {row["from"] for row in table["allowed"] if row["to"] == IMDS}
    for name, pod in sorted(policed_pods(ends).items()):
        if name not in with_role:
            why = "no Pod Identity association: nothing to fetch from the agent"
            out.append(Flow(source=pod, destination=agent, port=agent_port, allowed=False, why=why))
        if not any(pod in ends[allowed] for allowed in imds_allowed):
            why = "IMDS: no policed pod needs it (docs/network-policies.md)"
            out.append(Flow(source=pod, destination=imds, port=imds_port, allowed=False, why=why))
    return out, unmodelled


def policed_pods(ends: Mapping[str, list[Endpoint]]) -> dict[str, Endpoint]:
    """Every pod endpoint outside kube-system (the namespace the platform leaves unpoliced)."""
    return {e.name: e for group in ends.values() for e in group if e.namespace not in (None, "kube-system")}
