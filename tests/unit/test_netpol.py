"""NetworkPolicies: the evaluator's semantics, the component's policies, and the flows proved per stack.

The flow table is platform/network-flows.yaml; the policies are the program's (components/netpol.py),
the services' (charts/microservice, rendered here) and, when the chart cache has the packages, those
the upstream charts render (argo-cd 10.1.1's templates/*/networkpolicy.yaml).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from analysis import netpol
from analysis.netpol_eval import Endpoint, Flow, allows, selects
from components.netpol import PLATFORM_NAMESPACES, all_policies, kubernetes_service_ip
from model.records import PlanResult
from tools.mocks import ROOT

CIDR = "10.0.0.0/16"
SERVICE_CIDR = "172.20.0.0/16"
A = Endpoint(name="a", ip="10.0.1.1", namespace="x", labels={"app": "a"}, ports={"http": 8080})
B = Endpoint(name="b", ip="10.0.1.2", namespace="y", labels={"app": "b", "tier": "web"}, ports={"http": 8080})
OUTSIDE = Endpoint(name="out", ip="198.51.100.10")


def pol(ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": ns}, "spec": spec}


DENY_Y = pol("y", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {"app": "a"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "a"}, True),
        ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}, {"app": "b"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]}, {"app": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "a"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"app": "a"}, True),
    ],
)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selects(selector, labels) is expected


def test_an_unknown_selector_operator_is_an_error() -> None:
    with pytest.raises(ValueError, match="Equals"):
        selects({"matchExpressions": [{"key": "a", "operator": "Equals"}]}, {})


def ingress(peers: list[dict[str, Any]], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"from": peers}
    if ports is not None:
        rule["ports"] = ports
    return pol(
        "y", {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"], "ingress": [rule]}
    )


@pytest.mark.parametrize(
    ("policies", "source", "port", "protocol", "expected"),
    [
        ([], A, 8080, "TCP", True),  # nothing isolates either pod
        ([DENY_Y], A, 8080, "TCP", False),
        (
            [DENY_Y, ingress([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "x"}}}])],
            A,
            1,
            "TCP",
            True,
        ),
        # podSelector alone means the policy's own namespace: a is in x, the policy in y.
        ([DENY_Y, ingress([{"podSelector": {"matchLabels": {"app": "a"}}}])], A, 8080, "TCP", False),
        (
            [DENY_Y, ingress([{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "a"}}}])],
            A,
            1,
            "TCP",
            True,
        ),
        ([DENY_Y, ingress([{"ipBlock": {"cidr": "10.0.0.0/16"}}], [{"port": 8080}])], A, 8080, "TCP", True),
        ([DENY_Y, ingress([{"ipBlock": {"cidr": "10.0.0.0/16"}}], [{"port": 8080}])], A, 8081, "TCP", False),
        ([DENY_Y, ingress([{"ipBlock": {"cidr": "10.0.0.0/16"}}], [{"port": 8080}])], A, 8080, "UDP", False),
        (
            [DENY_Y, ingress([{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}}])],
            A,
            1,
            "TCP",
            False,
        ),
        (
            [DENY_Y, ingress([{"ipBlock": {"cidr": "10.0.0.0/16"}}], [{"port": 8000, "endPort": 8100}])],
            A,
            8080,
            "TCP",
            True,
        ),
        ([DENY_Y, ingress([{"ipBlock": {"cidr": "10.0.0.0/16"}}], [{"port": "http"}])], A, 8080, "TCP", True),
        (
            [DENY_Y, ingress([{"ipBlock": {"cidr": "10.0.0.0/16"}}], [{"port": "metrics"}])],
            A,
            8080,
            "TCP",
            False,
        ),
        (
            [DENY_Y, ingress([{"ipBlock": {"cidr": "0.0.0.0/0"}}], [{"port": 8080}])],
            OUTSIDE,
            8080,
            "TCP",
            True,
        ),
        # A selector peer never matches an address that is not a pod.
        ([DENY_Y, ingress([{"namespaceSelector": {}}])], OUTSIDE, 8080, "TCP", False),
    ],
)
def test_ingress_semantics(
    policies: list[dict[str, Any]], source: Endpoint, port: int, protocol: str, expected: bool
) -> None:
    assert (
        allows(policies, Flow(source=source, destination=B, port=port, protocol=protocol, allowed=True))
        is expected
    )


def test_egress_of_the_source_counts_too() -> None:
    deny_x = pol("x", {"podSelector": {}, "policyTypes": ["Egress"]})
    flow = Flow(source=A, destination=B, port=8080, allowed=True)
    assert not allows([deny_x], flow)
    open_x = pol("x", {"podSelector": {}, "egress": [{"to": [{"podSelector": {}, "namespaceSelector": {}}]}]})
    assert allows([deny_x, open_x], flow), "policyTypes default to Egress when egress rules are present"


# -- the component's policies -------------------------------------------------------------------


def test_every_namespace_the_platform_creates_denies_by_default() -> None:
    policies = all_policies(CIDR, SERVICE_CIDR, ("catalog",))
    deny = {
        p["metadata"]["namespace"]
        for p in policies
        if p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    }
    assert deny == {ns.namespace for ns in PLATFORM_NAMESPACES} | {"catalog"}
    assert "kube-system" not in {p["metadata"]["namespace"] for p in policies}


def test_no_rule_opens_the_vpc_or_the_internet_on_every_port_but_prometheus_scraping() -> None:
    for p in all_policies(CIDR, SERVICE_CIDR, ()):
        for rule in [*p["spec"].get("ingress", []), *p["spec"].get("egress", [])]:
            peers = rule.get("from", rule.get("to", []))
            if any("ipBlock" in peer for peer in peers) and not rule.get("ports"):
                assert p["metadata"]["name"] == "allow-scrape-everywhere", p


# -- the flows, per stack -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(plans: dict[str, PlanResult]) -> dict[str, netpol.NetpolReport]:
    out = {}
    for stack, plan in plans.items():
        doc = plan.document()
        out[stack] = netpol.section(doc, stack, "1.35")
    return out


def test_every_required_flow_passes_and_every_forbidden_one_is_denied(
    reports: dict[str, netpol.NetpolReport],
) -> None:
    for stack, report in reports.items():
        assert [f.why for f, _ in report.failures] == [], stack
        assert report.policies > 0


def test_a_service_pod_cannot_reach_argocd_repo_server(reports: dict[str, netpol.NetpolReport]) -> None:
    for report in reports.values():
        rows = [r for r in report.document()["flows"] if r["to"] == "argocd-repo-server" and "/" in r["from"]]
        assert rows and all(r["verdict"] == "deny" for r in rows)


def without(doc: dict[str, Any], name: str) -> dict[str, Any]:
    bad = copy.deepcopy(doc)
    for r in bad["resources"]:
        if r["type"] == netpol.CONFIG_GROUP and r["inputs"].get("objs"):
            r["inputs"]["objs"] = [o for o in r["inputs"]["objs"] if o["metadata"].get("name") != name]
    return bad


@pytest.mark.parametrize(
    ("removed", "broken"),
    [
        ("allow-dns-api-server", "DNS"),
        ("allow-api-server-webhook", "ExternalSecret validation"),
        ("allow-prometheus-scrape", "ServiceMonitor external-secrets"),
        ("allow-same-namespace", "manifests"),
        ("default-deny", "nothing outside reaches Argo CD's backend"),
    ],
)
def test_a_missing_policy_breaks_a_required_flow(dev: PlanResult, removed: str, broken: str) -> None:
    if removed == "default-deny":
        # Without any policy in argocd, the repo server is open to everyone.
        doc = dev.document()
        for r in doc["resources"]:
            if r["type"] == netpol.CONFIG_GROUP and r["inputs"].get("objs"):
                r["inputs"]["objs"] = [
                    o for o in r["inputs"]["objs"] if o["metadata"].get("namespace") != "argocd"
                ]
        report = netpol.check(doc)
    else:
        report = netpol.check(without(dev.document(), removed))
    assert broken in {f.why for f, _ in report.failures}
    assert report.findings(production=True)[0]["level"] == "mandatory"


def test_the_api_server_is_reached_at_its_cluster_ip_not_only_in_the_vpc(dev: PlanResult) -> None:
    """The policy agent sees the `kubernetes` ClusterIP (it enforces before kube-proxy's rewrite):
    a policy that allows only the VPC's range denies every in-cluster client's API call."""
    cluster_ip = f"{kubernetes_service_ip('172.20.0.0/16')}/32"
    assert cluster_ip == "172.20.0.1/32"
    assert netpol.service_cidr(dev.document()) == "172.20.0.0/16"
    services = netpol.service_chart_policies("dev", netpol.service_namespaces(dev.document()), None)
    assert not netpol.check(dev.document(), services).failures
    vpc_only = dev.document()
    for r in vpc_only["resources"]:
        for o in r["inputs"].get("objs") or [] if r["type"] == netpol.CONFIG_GROUP else []:
            for rule in o.get("spec", {}).get("egress", []):
                rule["to"] = [p for p in rule.get("to", []) if p.get("ipBlock", {}).get("cidr") != cluster_ip]
    broken = {(f.destination.name, f.source.namespace) for f, _ in netpol.check(vpc_only, services).failures}
    assert ("api-server (ClusterIP)", "external-secrets") in broken
    assert all(name == "api-server (ClusterIP)" for name, _ in broken)


def test_every_service_monitor_of_the_plan_has_a_scrape_flow(plan: PlanResult) -> None:
    table = netpol.load_table()
    covered = {row.get("serviceMonitor") for row in table["allowed"]}
    monitors = {
        yaml.safe_load(p.read_text())["metadata"]["name"]
        for p in (ROOT / "platform" / "monitoring" / "servicemonitors").glob("*.yaml")
    }
    assert monitors and monitors | {"service"} <= covered


def test_the_flow_table_names_known_endpoints(tmp_path: Any) -> None:
    bad = tmp_path / "flows.yaml"
    table = netpol.load_table()
    table["allowed"].append({"from": "prometheus", "to": "nobody", "port": 1})
    bad.write_text(yaml.safe_dump(table))
    with pytest.raises(ValueError, match="unknown endpoint 'nobody'"):
        netpol.load_table(bad)
    table = netpol.load_table()
    table["endpoints"]["argocd-redis"]["alternativeTo"] = "nobody"
    bad.write_text(yaml.safe_dump(table))
    with pytest.raises(ValueError, match="alternative to unknown 'nobody'"):
        netpol.load_table(bad)


def test_rendered_pods_check_the_table_labels(dev: PlanResult) -> None:
    table = netpol.load_table()
    labels = table["endpoints"]["argocd-repo-server"]["labels"]

    def rendered(pod_labels: dict[str, str]) -> dict[str, Any]:
        doc = dev.document()
        obj = {
            "kind": "Deployment",
            "metadata": {"name": "r"},
            "spec": {"template": {"metadata": {"labels": pod_labels}}},
        }
        doc["rendered"] = [{"namespace": "argocd", "objects": [obj]}]
        return doc

    stale = netpol.stale_endpoints(table, rendered(dict(labels)))
    assert not any("argocd-repo-server:" in s for s in stale)
    assert any("argocd-repo-server:" in s for s in netpol.stale_endpoints(table, rendered({"app": "other"})))
    # Either redis suffices: prod renders redis-ha's HAProxy and no plain redis, dev the reverse.
    haproxy = table["endpoints"]["argocd-redis-ha-haproxy"]["labels"]
    with_haproxy = netpol.stale_endpoints(table, rendered(dict(haproxy)))
    assert not any(
        s.startswith(("endpoint argocd-redis:", "endpoint argocd-redis-ha-haproxy:")) for s in with_haproxy
    )
    assert any(s.startswith("endpoint argocd-redis:") for s in stale)
    # CoreDNS is the EKS add-on: never a rendered pod, never stale.
    assert not any(s.startswith("endpoint coredns:") for s in stale)


def test_the_policies_come_after_the_releases(plan: PlanResult) -> None:
    group = next(r for r in plan.records if r.name.endswith("-network-policies-group"))
    deps = " ".join(group.dependencies)
    for component in ("platform:gitops:GitOps", "platform:monitoring:Monitoring", "platform:secrets:Secrets"):
        assert component in deps, component
