"""NetworkPolicies of the platform's own namespaces: default deny, then the flows each component needs.

The VPC CNI enforces NetworkPolicies (`enableNetworkPolicy`, components/cluster.py). A policy selects
pods, so two peers that are not pods are reached by address: the Kubernetes API server (the cluster
endpoint's ENIs in the VPC; the network policy agent's maintainers advise allowing those addresses or
their subnets: the aws-network-policy-agent issue "How to allow control plane request in strict
NetworkPolicy mode?") and AWS APIs, Git and alert receivers outside
the VPC. Pod addresses are VPC addresses with the VPC CNI, so an ipBlock of the VPC CIDR also
matches every pod: rules with it are always narrowed by port. Pods on the host network (node-exporter)
are never subject to policies (amazon-vpc-cni-k8s v1.21.1 docs/network-policy-faq.md).

Node-local endpoints are not exempt either. The network policy agent that vpc-cni v1.21.1 ships
(aws-network-policy-agent v1.3.1, its chart's `nodeAgent.image.tag`) drops every flow no rule matches
and exempts one address only, the pod's own node's primary IP, in both directions
(pkg/fwruleprocessor/fw_rule_processor.go `ComputeMapEntriesFromEndpointRules`, used for the ingress
and the egress map; nothing in pkg/ or the eBPF programs pkg/ebpf/c/tc.v4*.bpf.c treats link-local
addresses apart). So a pod that takes AWS credentials from EKS Pod Identity needs an explicit allow
to the agent, which listens on the node at 169.254.170.23:80 (aws/eks-pod-identity-agent
configuration/config.go `DefaultIpv4TargetHost`, cmd/server.go `--port` 80; the same from v0.1.17 to
v0.1.37). The cluster is IPv4, so its IPv6 address fd00:ec2::23 is not listed: the agent drops a rule
of the other family (fw_rule_processor.go). IMDS (169.254.169.254) is allowed to no pod: none of the
policed pods calls it (docs/network-policies.md says why), and the nodes' hop limit of 1 refuses
IMDSv2 to pods anyway.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

ANYWHERE = "0.0.0.0/0"
NAME_LABEL = "kubernetes.io/metadata.name"
DNS_PEER = {
    "namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
API_SERVER_PORT = 443
# EKS Pod Identity's agent on every node (see the module docstring for the source).
POD_IDENTITY_AGENT = "169.254.170.23"
POD_IDENTITY_PORT = 80
# The platform's Prometheus pods (kube-prometheus-stack 88.5.3: the operator labels every Prometheus
# pod app.kubernetes.io/name=prometheus; check on a cluster: docs/network-policies.md).
PROMETHEUS_PEER = {
    "namespaceSelector": {"matchLabels": {NAME_LABEL: "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


@dataclass(frozen=True, kw_only=True)
class FromApiServer:
    """Pods the API server calls on `port`: an admission webhook, or a service-proxy target."""

    pods: Mapping[str, str]
    port: int


@dataclass(frozen=True, kw_only=True)
class NamespacePolicy:
    """What one platform namespace's pods may do besides DNS and the API server."""

    namespace: str
    # Pods of the namespace talk to each other on any port (Argo CD's components, monitoring's).
    within_namespace: bool = False
    # Container ports Prometheus scrapes (pods that only the same namespace scrapes need none).
    scrape_ports: tuple[int, ...] = ()
    webhooks: tuple[FromApiServer, ...] = ()
    # Pods reached through the API server's service proxy (`/api/v1/namespaces/<ns>/services/<svc>:
    # <port>/proxy/...`): the API server opens the connection to the pod, from its ENIs in the VPC.
    proxied: tuple[FromApiServer, ...] = ()
    # Pods (by labels) whose service account has an EKS Pod Identity association: they fetch their
    # credentials from the agent on their node, which the policy agent does not exempt.
    pod_identity: tuple[Mapping[str, str], ...] = ()
    # Pods (by labels) that call HTTPS endpoints outside the VPC: AWS APIs, Git, alert receivers.
    https_out: tuple[Mapping[str, str], ...] = ()
    # Pods (by labels) that scrape every pod and node of the cluster on any port (Prometheus).
    scrape_everywhere: tuple[Mapping[str, str], ...] = ()


# Labels and ports from the pinned charts' values (shared chart data) and platform/values/.
PLATFORM_NAMESPACES: tuple[NamespacePolicy, ...] = (
    NamespacePolicy(
        namespace="argocd",
        within_namespace=True,
        # argo-cd 10.1.1 metrics ports: application-controller 8082, server 8083, repo-server 8084.
        scrape_ports=(8082, 8083, 8084),
        https_out=(
            {"app.kubernetes.io/name": "argocd-repo-server"},  # Git over HTTPS (repoUrl is https://)
            {"app.kubernetes.io/name": "argocd-server"},  # the OIDC issuer (delivery.gitops.sso)
            {"app.kubernetes.io/name": "argocd-notifications-controller"},
        ),
    ),
    NamespacePolicy(
        namespace="external-secrets",
        # external-secrets 2.9.0: controller metrics 8080; webhook container port 10250.
        scrape_ports=(8080,),
        webhooks=(FromApiServer(pods={"app.kubernetes.io/name": "external-secrets-webhook"}, port=10250),),
        # Secrets Manager and STS: regional endpoints through the NAT (or interface endpoints).
        https_out=({"app.kubernetes.io/name": "external-secrets"},),
        # The controller runs as the service account of components/secrets.py's association (the
        # webhook and cert-controller have their own, with no AWS role). Its region comes from the
        # ClusterSecretStore (`provider.aws.region`), so it never asks IMDS.
        pod_identity=({"app.kubernetes.io/name": "external-secrets"},),
    ),
    NamespacePolicy(
        namespace="monitoring",
        within_namespace=True,
        # kube-prometheus-stack 88.5.3: the operator's admission webhook listens on 10250 (https).
        webhooks=(FromApiServer(pods={"app": "kube-prometheus-stack-operator"}, port=10250),),
        # `kubectl get --raw .../services/prometheus-operated:9090/proxy/api/v1/targets` (the
        # integration test): the operator's governing Service targets the pods' web port.
        proxied=(FromApiServer(pods={"app.kubernetes.io/name": "prometheus"}, port=9090),),
        https_out=({"app.kubernetes.io/name": "alertmanager"},),  # the alert receiver (Slack, webhook)
        scrape_everywhere=({"app.kubernetes.io/name": "prometheus"},),
    ),
)


def _policy(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "eks-platform"},
        },
        "spec": spec,
    }


def _selector(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(sorted(labels.items()))}


def kubernetes_service_ip(service_cidr: str) -> str:
    """The `kubernetes` Service's ClusterIP: the first address of the service range (the API server
    reserves it for that Service; Kubernetes docs, "Service ClusterIP allocation")."""
    return str(ipaddress.ip_network(service_cidr)[1])


def api_server_peers(vpc_cidr: str, service_cidr: str) -> list[dict[str, Any]]:
    """Where a pod's API calls go: the `kubernetes` ClusterIP, and the control plane's ENIs in the VPC.

    The VPC CNI's policy agent enforces in eBPF on the pod's interface, before kube-proxy rewrites a
    ClusterIP to its endpoints, and its controller adds Service ClusterIPs only for pod-selector peers
    (aws/amazon-network-policy-controller-k8s pkg/resolvers/endpoints.go; the agent's and the
    controller's issue trackers, on Service IPs in PolicyEndpoints): an ipBlock of the VPC alone
    would deny the in-cluster clients' calls to https://kubernetes.default.svc. The ENIs' range
    covers clients given the endpoint's name.
    """
    return [
        {"ipBlock": {"cidr": f"{kubernetes_service_ip(service_cidr)}/32"}},
        {"ipBlock": {"cidr": vpc_cidr}},
    ]


def pod_identity_egress() -> dict[str, Any]:
    """The egress rule to EKS Pod Identity's agent on the pod's node (charts/microservice has the same
    rule behind `networkPolicy.podIdentity`)."""
    return {
        "to": [{"ipBlock": {"cidr": f"{POD_IDENTITY_AGENT}/32"}}],
        "ports": [{"protocol": "TCP", "port": POD_IDENTITY_PORT}],
    }


def baseline(namespace: str, api_server: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Default deny (ingress and egress) and DNS; with `api_server` peers, the API server on 443 too."""
    egress: list[dict[str, Any]] = [{"to": [DNS_PEER], "ports": DNS_PORTS}]
    if api_server is not None:
        egress.append({"to": api_server, "ports": [{"protocol": "TCP", "port": API_SERVER_PORT}]})
    return [
        _policy(namespace, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _policy(
            namespace,
            "allow-dns-api-server" if api_server else "allow-dns",
            {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
        ),
    ]


def namespace_policies(ns: NamespacePolicy, vpc_cidr: str, service_cidr: str) -> list[dict[str, Any]]:
    """Every NetworkPolicy of one platform namespace."""
    out = baseline(ns.namespace, api_server_peers(vpc_cidr, service_cidr))
    name = ns.namespace
    if ns.within_namespace:
        same: list[dict[str, Any]] = [{"podSelector": {}}]
        out.append(
            _policy(
                name,
                "allow-same-namespace",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": same}],
                    "egress": [{"to": same}],
                },
            )
        )
    if ns.scrape_ports:
        ports = [{"protocol": "TCP", "port": p} for p in sorted(ns.scrape_ports)]
        out.append(
            _policy(
                name,
                "allow-prometheus-scrape",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [PROMETHEUS_PEER], "ports": ports}],
                },
            )
        )
    calls = [("webhook", i, c) for i, c in enumerate(ns.webhooks)]
    calls += [("proxy", i, c) for i, c in enumerate(ns.proxied)]
    for kind, i, call in calls:
        # The API server is not a pod: its connections come from the control plane's ENIs in the
        # cluster's subnets, so the peer is the VPC CIDR, narrowed to the one port.
        out.append(
            _policy(
                name,
                f"allow-api-server-{kind}-{i}" if i else f"allow-api-server-{kind}",
                {
                    "podSelector": _selector(call.pods),
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [{"ipBlock": {"cidr": vpc_cidr}}],
                            "ports": [{"protocol": "TCP", "port": call.port}],
                        }
                    ],
                },
            )
        )
    for i, pods in enumerate(ns.pod_identity):
        out.append(
            _policy(
                name,
                f"allow-pod-identity-agent-{i}" if i else "allow-pod-identity-agent",
                {
                    "podSelector": _selector(pods),
                    "policyTypes": ["Egress"],
                    "egress": [pod_identity_egress()],
                },
            )
        )
    for pods in ns.https_out:
        out.append(
            _policy(
                name,
                f"allow-https-out-{pods[next(iter(pods))]}",
                {
                    "podSelector": _selector(pods),
                    "policyTypes": ["Egress"],
                    "egress": [
                        {"to": [{"ipBlock": {"cidr": ANYWHERE}}], "ports": [{"protocol": "TCP", "port": 443}]}
                    ],
                },
            )
        )
    for pods in ns.scrape_everywhere:
        out.append(
            _policy(
                name,
                "allow-scrape-everywhere",
                {
                    "podSelector": _selector(pods),
                    "policyTypes": ["Egress"],
                    # Pods in every namespace, and the nodes (kubelet 10250, node-exporter 9100 on the
                    # host network) by the VPC CIDR.
                    "egress": [{"to": [{"namespaceSelector": {}}, {"ipBlock": {"cidr": vpc_cidr}}]}],
                },
            )
        )
    return out


def all_policies(
    vpc_cidr: str, service_cidr: str, service_namespaces: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The platform namespaces' policies, and default deny plus DNS in each service namespace."""
    out = [p for ns in PLATFORM_NAMESPACES for p in namespace_policies(ns, vpc_cidr, service_cidr)]
    # Services do not call the Kubernetes API (charts/microservice mounts no token); their own chart
    # adds their ingress and opens more egress from values.
    out += [p for ns in sorted(service_namespaces) for p in baseline(ns, None)]
    return sorted(out, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))


@dataclass(frozen=True, kw_only=True)
class NetworkPoliciesArgs:
    vpc_cidr: str
    # The cluster's Service range (cluster.serviceCidr): its first address is the API server's ClusterIP.
    service_cidr: str
    service_namespaces: tuple[str, ...] = ()
    # The releases (and namespaces) these policies govern: created after them, so a first install's
    # hooks run before any policy exists (later upgrades' hooks get DNS and the API server).
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class NetworkPolicies(pulumi.ComponentResource):
    """Default deny in every namespace the platform creates (not kube-system), plus the allows.

    Guarantees: every platform and service namespace denies ingress and egress by default; every pod of
    a platform namespace reaches CoreDNS and the API server; Argo CD and monitoring pods reach each
    other; Prometheus scrapes each platform namespace's metrics ports and the nodes; the API server
    reaches the admission webhooks and, through its service proxy, Prometheus' web port; only named
    pods reach HTTPS outside the VPC; the pods with a Pod Identity association reach the agent on
    their node, and no pod reaches IMDS. kube-system is left
    alone: the EKS add-ons live there and AWS manages their traffic. One raw-manifest group, like
    components/namespaces.py.
    """

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:netpol:NetworkPolicies", name, None, opts)
        self.group = k8s.yaml.v2.ConfigGroup(
            f"{name}-group",
            objs=all_policies(args.vpc_cidr, args.service_cidr, args.service_namespaces),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.register_outputs({})
