"""A small NetworkPolicy evaluator: does a flow pass the policies of both its ends?

Kubernetes NetworkPolicy semantics for what the platform uses: a pod is isolated for a direction when
a policy of its namespace selects it with that policy type; a flow passes when the source's egress and
the destination's ingress both allow it (an end that is not a pod, or not isolated, allows
everything). Peers: podSelector (same namespace), namespaceSelector (+ podSelector), ipBlock (cidr,
except). Selectors: matchLabels and matchExpressions. Ports: number, named container port of the
destination, endPort, protocol (TCP by default). One rule is the VPC CNI's, not Kubernetes': its policy
agent always allows a pod's traffic to and from its own node's primary IP, both directions
(aws-network-policy-agent v1.3.1, the version vpc-cni v1.21.1 ships, pkg/fwruleprocessor/
fw_rule_processor.go `ComputeMapEntriesFromEndpointRules`); an Endpoint marked `own_node` is that
address. Every other address, link-local ones (EKS Pod Identity's agent, IMDS) included, passes only
by a rule. No library on PyPI in the project's environment
evaluates NetworkPolicies, hence this one (tests/unit/test_netpol.py pins each construct).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A pod (namespace and labels, named container ports) or an address that is not a pod."""

    name: str
    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    # The pod's own node's primary IP (its kubelet, host-network pods on it): the policy agent's one
    # automatic exception. Any other node is an ordinary address.
    own_node: bool = False


@dataclass(frozen=True, kw_only=True)
class Flow:
    source: Endpoint
    destination: Endpoint
    port: int | str
    protocol: str = "TCP"
    allowed: bool  # what the table requires
    why: str = ""


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector matches labels (an empty selector matches everything)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op)
        if ok is None:
            raise ValueError(
                f"matchExpressions operator {op!r} is not one of In, NotIn, Exists, DoesNotExist"
            )
        if not ok:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], policy_ns: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(other.ip)
        if ip not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
    if other.namespace is None:  # not a pod: only an ipBlock selects it
        return False
    if "namespaceSelector" in peer:
        ns_labels = {NAME_LABEL: other.namespace}
        return selects(peer["namespaceSelector"], ns_labels) and selects(
            peer.get("podSelector"), other.labels
        )
    return other.namespace == policy_ns and selects(peer.get("podSelector"), other.labels)


def _port_matches(rule_ports: Sequence[Mapping[str, Any]] | None, flow: Flow) -> bool:
    if not rule_ports:
        return True
    number = flow.destination.ports.get(flow.port) if isinstance(flow.port, str) else flow.port
    for p in rule_ports:
        if p.get("protocol", "TCP") != flow.protocol:
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, str):
            if want == flow.port or flow.destination.ports.get(want) == number is not None:
                return True
            continue
        if number is not None and want <= number <= p.get("endPort", want):
            return True
    return False


def _types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def _side_allows(policies: Iterable[Mapping[str, Any]], flow: Flow, direction: str) -> bool:
    """Whether one side (egress of the source, ingress of the destination) lets the flow through."""
    pod, other = (flow.source, flow.destination) if direction == "Egress" else (flow.destination, flow.source)
    if pod.namespace is None or other.own_node:
        return True
    isolating = [
        p
        for p in policies
        if p["metadata"].get("namespace") == pod.namespace
        and direction in _types(p)
        and selects((p.get("spec") or {}).get("podSelector"), pod.labels)
    ]
    if not isolating:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for p in isolating:
        for rule in (p.get("spec") or {}).get(key) or []:
            peers = rule.get(peers_key)
            if peers and not any(_peer_matches(peer, p["metadata"]["namespace"], other) for peer in peers):
                continue
            if _port_matches(rule.get("ports"), flow):
                return True
    return False


def allows(policies: Sequence[Mapping[str, Any]], flow: Flow) -> bool:
    return _side_allows(policies, flow, "Egress") and _side_allows(policies, flow, "Ingress")
