"""Prove the plan's NetworkPolicies: the flows the platform needs pass, the ones it must not stay denied.

Reads the plan document (never the components): NetworkPolicies in `kubernetes:yaml/v2:ConfigGroup`
`objs` and typed NetworkPolicy registrations, those Helm rendered (`rendered`, when the chart cache has
the package), and the services' own (charts/microservice rendered with services/<name>/deploy/<stack>.yaml,
as Argo CD renders it). The flow table is platform/network-flows.yaml.

The evaluator is analysis/netpol_eval.py. With the VPC CNI pods have VPC addresses, so ipBlock rules
match pods too (amazon-vpc-cni-k8s README: pods get VPC IP addresses): each pod gets an address inside
the VPC CIDR, as do the API server's ENIs and the nodes. Node-local, link-local endpoints (EKS Pod
Identity's agent, IMDS) keep their real addresses: the VPC CNI's policy agent exempts none of them.

Beyond the table, the plan itself says which pods need credentials: every Pod Identity association
(and an add-on's) names a namespace and a service account, whose pods must reach the agent; every
other pod outside kube-system must not, and none may reach IMDS unless the table allows it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.netpol_credentials import (
    IMDS,
    POD_IDENTITY_AGENT,
    SERVICE,
    Association,
    credential_flows,
    pod_identity_associations,
    policed_pods,
)
from analysis.netpol_eval import Endpoint, Flow, allows, selects
from components.netpol import kubernetes_service_ip
from stacks.data import load_yaml, read_yaml

ROOT = Path(__file__).resolve().parent.parent
FLOWS_FILE = "network-flows.yaml"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
NETPOL_TYPE = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
APP_PROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"
VPC_TYPE = "awsx:ec2:Vpc"
INTERNET = "198.51.100.10"  # TEST-NET-2: an address outside any VPC
CLUSTER_IP = " (ClusterIP)"  # suffix of an endpoint that is a Service's ClusterIP
ADDRESS_KINDS = ("api-server", "internet", "node", "own-node")  # or a literal IP address


# -- the plan --------------------------------------------------------------------------------------


def plan_policies(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every NetworkPolicy the plan applies: the program's own and those Helm rendered."""
    out: list[dict[str, Any]] = []
    for r in document["resources"]:
        if r["type"] == CONFIG_GROUP:
            out += [o for o in r["inputs"].get("objs") or [] if o.get("kind") == "NetworkPolicy"]
        elif r["type"] == NETPOL_TYPE:
            out.append(r["inputs"])
    for release in document.get("rendered") or []:
        for obj in release["objects"]:
            if obj.get("kind") == "NetworkPolicy":
                meta = {"namespace": release.get("namespace"), **obj["metadata"]}
                out.append({**obj, "metadata": meta})
    return out


def service_namespaces(document: Mapping[str, Any]) -> list[str]:
    """The namespaces Argo CD delivers services to (the AppProjects' destinations but argocd)."""
    names = {
        d.get("namespace")
        for r in document["resources"]
        if r["type"] == APP_PROJECT
        for d in (r["inputs"].get("spec") or {}).get("destinations") or []
    }
    return sorted(n for n in names if n and n != "argocd")


def service_cidr(document: Mapping[str, Any]) -> str | None:
    """The cluster's Service range (the EKS cluster's `kubernetesServiceIpAddressRange`), if planned."""
    for r in document["resources"]:
        if r["type"] == "eks:index:Cluster":
            value = r["inputs"].get("kubernetesServiceIpAddressRange")
            return str(value) if value else None
    return None


def vpc_cidr(document: Mapping[str, Any]) -> str:
    for r in document["resources"]:
        if r["type"] == VPC_TYPE:
            return str(r["inputs"]["cidrBlock"])
    raise ValueError("the plan has no awsx:ec2:Vpc: no VPC CIDR to place pods and the API server in")


def _check_address(source: str, name: str, spec: Mapping[str, Any]) -> None:
    if "address" not in spec:
        return
    if "serviceAccount" in spec or "namespace" in spec:
        raise ValueError(f"{source}: endpoint {name!r} is an address: it has no namespace or serviceAccount")
    if spec["address"] in ADDRESS_KINDS:
        return
    try:
        ipaddress.ip_address(spec["address"])
    except ValueError:
        raise ValueError(
            f"{source}: endpoint {name!r} has address {spec['address']!r}: "
            f"not one of {', '.join(ADDRESS_KINDS)} or an IP address"
        ) from None


def load_table(path: Path | None = None) -> dict[str, Any]:
    """platform/network-flows.yaml (or the table at `path`), checked."""
    table: dict[str, Any] = read_yaml(path) if path else load_yaml(FLOWS_FILE)
    source = path.name if path else FLOWS_FILE
    names = set(table["endpoints"])
    for name, spec in table["endpoints"].items():
        _check_address(source, name, spec)
    for required in (POD_IDENTITY_AGENT, IMDS):
        if required not in names:
            raise ValueError(f"{source}: endpoint {required!r} is missing (the analysis requires it)")
        if len(table["endpoints"][required].get("ports") or {}) != 1:
            raise ValueError(f"{source}: endpoint {required!r} needs exactly one port, the one pods call")
    for kind in ("allowed", "denied"):
        for row in table[kind]:
            for end in ("from", "to"):
                if row[end] not in names:
                    raise ValueError(f"{source}: {kind} flow names unknown endpoint {row[end]!r}")
    for name, spec in table["endpoints"].items():
        if spec.get("alternativeTo", name) not in names:
            raise ValueError(
                f"{source}: endpoint {name!r} is an alternative to unknown {spec['alternativeTo']!r}"
            )
    return table


def endpoints(
    table: Mapping[str, Any], cidr: str, services: Sequence[str], service_cidr: str | None = None
) -> dict[str, list[Endpoint]]:
    """Each table endpoint as concrete endpoints (`service` once per service namespace).

    The API server is two: the `kubernetes` Service's ClusterIP (the first address of the service
    range), which in-cluster clients dial and which the VPC CNI's policy agent sees (it enforces
    before kube-proxy's rewrite), and a control-plane ENI's address in the VPC."""
    hosts = ipaddress.ip_network(cidr).hosts()
    addresses = {"internet": INTERNET}
    out: dict[str, list[Endpoint]] = {}
    for name, spec in sorted(table["endpoints"].items()):
        if "address" in spec:
            kind = spec["address"]
            ip = addresses.get(kind) or (str(next(hosts)) if kind in ADDRESS_KINDS else kind)
            ports = spec.get("ports") or {}
            out[name] = [Endpoint(name=name, ip=ip, ports=ports, own_node=kind == "own-node")]
            if spec["address"] == "api-server" and service_cidr is not None:
                ip = kubernetes_service_ip(service_cidr)
                out[name].append(Endpoint(name=f"{name}{CLUSTER_IP}", ip=ip))
            continue
        if spec["namespace"] == SERVICE:
            out[name] = [
                Endpoint(
                    name=f"{svc}/{svc}",
                    ip=str(next(hosts)),
                    namespace=svc,
                    labels={k: svc for k in spec["labels"]},
                    ports=spec.get("ports") or {},
                )
                for svc in services
            ]
            continue
        out[name] = [
            Endpoint(
                name=name,
                ip=str(next(hosts)),
                namespace=spec["namespace"],
                labels=spec["labels"],
                ports=spec.get("ports") or {},
            )
        ]
    return out


def flows(table: Mapping[str, Any], ends: Mapping[str, list[Endpoint]]) -> list[Flow]:
    """The table's flows, plus DNS (UDP and TCP 53) from every pod outside kube-system."""
    out: list[Flow] = []
    for kind in ("allowed", "denied"):
        for row in table[kind]:
            # A ClusterIP is only ever a destination: the API server calls webhooks from its ENIs.
            for src in (e for e in ends[row["from"]] if not e.name.endswith(CLUSTER_IP)):
                for dst in ends[row["to"]]:
                    if row["from"] == row["to"] == SERVICE and src.namespace != dst.namespace:
                        continue
                    out.append(
                        Flow(
                            source=src,
                            destination=dst,
                            port=row["port"],
                            protocol=row.get("protocol", "TCP"),
                            allowed=kind == "allowed",
                            why=row.get("why") or f"ServiceMonitor {row.get('serviceMonitor')}",
                        )
                    )
    for dns in ends.get("coredns", []):
        for _, pod in sorted(policed_pods(ends).items()):
            out += [
                Flow(source=pod, destination=dns, port=53, protocol=p, allowed=True, why="DNS")
                for p in ("UDP", "TCP")
            ]
    return out


def service_chart_policies(
    stack: str, services: Sequence[str], kube_version: str | None
) -> list[dict[str, Any]]:
    """The NetworkPolicies of charts/microservice for each service, rendered as Argo CD renders them."""
    import helm_python

    from analysis.helm import render_chart

    out: list[dict[str, Any]] = []
    with helm_python.Chart.load(ROOT / "charts" / "microservice") as chart:
        for svc in services:
            values_file = ROOT / "services" / svc / "deploy" / f"{stack}.yaml"
            if not values_file.exists():
                raise ValueError(f"service {svc}: no values file services/{svc}/deploy/{stack}.yaml")
            values = read_yaml(values_file) or {}
            for obj in render_chart(chart, values, release=svc, namespace=svc, kube_version=kube_version):
                if obj.get("kind") == "NetworkPolicy":
                    out.append({**obj, "metadata": {**obj["metadata"], "namespace": svc}})
    return out


POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def stale_endpoints(table: Mapping[str, Any], document: Mapping[str, Any]) -> list[str]:
    """Pod endpoints whose labels select no pod Helm rendered in their namespace (rendered releases only).

    Pods an operator or EKS creates (`createdBy` in the table: Prometheus, Alertmanager, CoreDNS)
    are not rendered. An endpoint with an `alternativeTo` (dev's redis, prod's redis-ha) is stale
    only when neither it nor its alternative selects a rendered pod.
    """
    pods: dict[str, list[Mapping[str, str]]] = {}
    for release in document.get("rendered") or []:
        for obj in release["objects"]:
            if obj.get("kind") in POD_KINDS:
                ns = obj["metadata"].get("namespace") or release.get("namespace")
                labels = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
                    "labels"
                ) or {}
                pods.setdefault(ns, []).append(labels)
    endpoints = table["endpoints"]

    def found(name: str) -> bool:
        spec = endpoints[name]
        return any(selects({"matchLabels": spec["labels"]}, p) for p in pods.get(spec.get("namespace"), []))

    out = []
    for name, spec in sorted(endpoints.items()):
        ns = spec.get("namespace")
        alternative = spec.get("alternativeTo")
        if (
            ns in pods
            and "createdBy" not in spec
            and not found(name)
            and not (alternative and found(alternative))
        ):
            out.append(f"endpoint {name}: labels {spec['labels']} select no rendered pod in namespace {ns}")
    return out


@dataclass(frozen=True)
class NetpolReport:
    results: list[tuple[Flow, bool]]
    policies: int
    stale: list[str]
    # Pod Identity associations no endpoint of the table runs as, with whether their namespace has
    # NetworkPolicies (then their pods' credential flow may well be denied, and nothing proves it).
    unmodelled: list[tuple[Association, bool]] = field(default_factory=list)

    @property
    def failures(self) -> list[tuple[Flow, bool]]:
        return [(f, v) for f, v in self.results if v != f.allowed]

    def document(self) -> dict[str, Any]:
        def row(f: Flow, verdict: bool) -> dict[str, Any]:
            return {
                "from": f.source.name,
                "to": f.destination.name,
                "port": f.port,
                "protocol": f.protocol,
                "required": "allow" if f.allowed else "deny",
                "verdict": "allow" if verdict else "deny",
                "why": f.why,
            }

        rows = sorted(
            (row(f, v) for f, v in self.results),
            key=lambda r: (r["from"], r["to"], str(r["port"]), r["protocol"]),
        )
        return {
            "policies": self.policies,
            "flows": rows,
            "failures": len(self.failures),
            "staleEndpoints": self.stale,
        }

    def findings(self, production: bool) -> list[dict[str, Any]]:
        """A required flow the policies deny breaks a real deploy (External Secrets without credentials,
        a webhook the API server cannot call): mandatory in every stack. A forbidden flow that passes
        is a security gap: mandatory in prod, advisory in dev."""
        out = [
            {
                "rule": "netpol-required-flows",
                "level": "mandatory" if f.allowed or production else "advisory",
                "urn": None,
                "message": f"{f.source.name} -> {f.destination.name} {f.port}/{f.protocol} must be "
                f"{'allowed' if f.allowed else 'denied'} ({f.why}) but the NetworkPolicies "
                f"{'deny' if f.allowed else 'allow'} it",
            }
            for f, _ in self.failures
        ]
        out += [
            {"rule": "netpol-flow-table", "level": "advisory", "urn": None, "message": m} for m in self.stale
        ]
        out += [
            {
                "rule": "netpol-pod-identity",
                "level": "mandatory" if policed else "advisory",
                "urn": a.urn,
                "message": f"Pod Identity association {a.namespace}/{a.service_account}: no endpoint of "
                f"platform/network-flows.yaml runs as it, so nothing proves its pods reach the agent "
                f"(169.254.170.23:80)"
                + (f"; namespace {a.namespace} has NetworkPolicies" if policed else ""),
            }
            for a, policed in self.unmodelled
        ]
        return out


def check(
    document: Mapping[str, Any],
    extra_policies: Sequence[Mapping[str, Any]] = (),
    table: Mapping[str, Any] | None = None,
) -> NetpolReport:
    """Evaluate the flow table on the plan's NetworkPolicies plus `extra_policies` (the services')."""
    table = table or load_table()
    policies = [*plan_policies(document), *extra_policies]
    ends = endpoints(table, vpc_cidr(document), service_namespaces(document), service_cidr(document))
    credentials, unmodelled = credential_flows(table, ends, pod_identity_associations(document))
    results = [(f, allows(policies, f)) for f in [*flows(table, ends), *credentials]]
    policed = {p["metadata"].get("namespace") for p in policies}
    return NetpolReport(
        results,
        len(policies),
        stale_endpoints(table, document),
        [(a, a.namespace in policed) for a in unmodelled],
    )


def section(document: Mapping[str, Any], stack: str, kube_version: str | None) -> NetpolReport:
    """The plan's `networkPolicies` section: the services' chart policies rendered, then every flow."""
    return check(document, service_chart_policies(stack, service_namespaces(document), kube_version))
