"""Node-local and link-local flows under default deny (EKS Pod Identity's agent, IMDS, the kubelet), and
the API server's service proxy to Prometheus (what the integration test reads).

Upstream facts these tests rest on, read at the pinned versions:
- aws/eks-pod-identity-agent v0.1.37 (d4dc0f3; the same since v0.1.17): configuration/config.go
  `DefaultIpv4TargetHost = "169.254.170.23"`, cmd/server.go `--port` default 80; the chart's DaemonSet
  is `hostNetwork: true`. The eks-pod-identity-agent add-on pinned in platform/eks-addons.yaml runs it.
- aws/amazon-vpc-cni-k8s v1.21.1 charts/aws-vpc-cni/values.yaml: `nodeAgent.image.tag: v1.3.1`.
- aws/aws-network-policy-agent v1.3.1 pkg/fwruleprocessor/fw_rule_processor.go: the node's own IP is
  the one entry added to every (ingress and egress) map; no other address, link-local or not, is
  exempt (`git grep 169.254` over pkg/, cmd/, controllers/ finds nothing); pkg/ebpf/c/tc.v4egress.bpf.c
  drops a flow no entry matches once the pod is isolated.
"""

from __future__ import annotations

import copy
from typing import Any

import helm_python
import pytest
import yaml

from analysis import netpol
from analysis import netpol_credentials as credentials
from analysis.helm import RenderError, render_chart
from analysis.netpol_eval import Endpoint, Flow, allows
from components.netpol import POD_IDENTITY_AGENT, all_policies
from model.records import PlanResult
from tools.mocks import ROOT

CIDR = "10.0.0.0/16"
SERVICE_CIDR = "172.20.0.0/16"


def drop(doc: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """The plan document without one of the program's NetworkPolicies."""
    bad = copy.deepcopy(doc)
    for r in bad["resources"]:
        if r["type"] == netpol.CONFIG_GROUP and r["inputs"].get("objs"):
            r["inputs"]["objs"] = [
                o
                for o in r["inputs"]["objs"]
                if (o["metadata"].get("namespace"), o["metadata"].get("name")) != (namespace, name)
            ]
    return bad


def full(doc: dict[str, Any], stack: str, table: dict[str, Any] | None = None) -> netpol.NetpolReport:
    """The plan's report as `make plan` makes it: the services' chart policies included."""
    services = netpol.service_chart_policies(stack, netpol.service_namespaces(doc), None)
    return netpol.check(doc, services, table)


def failures(report: netpol.NetpolReport) -> set[tuple[str, str, str]]:
    return {(f.source.name, f.destination.name, f.why) for f, _ in report.failures}


# -- the credential endpoint ------------------------------------------------------------------------


def test_every_pod_identity_association_of_the_plan_is_found(plan: PlanResult) -> None:
    found = {(a.namespace, a.service_account) for a in credentials.pod_identity_associations(plan.document())}
    assert found == {
        ("external-secrets", "external-secrets"),  # components/secrets.py
        ("kube-system", "karpenter"),  # components/karpenter.py
        ("kube-system", "ebs-csi-controller-sa"),  # components/addons.py, the add-on's association
    }


def test_each_association_needs_its_pods_to_reach_the_agent_and_they_do(plan: PlanResult) -> None:
    report = full(plan.document(), plan.stack)
    assert not report.failures
    rows = {
        (f.source.name, v)
        for f, v in report.results
        if f.destination.name == "pod-identity-agent" and f.allowed
    }
    assert rows == {("external-secrets", True), ("karpenter", True), ("ebs-csi-controller", True)}
    assert not report.unmodelled


def test_removing_the_pod_identity_allow_is_a_mandatory_finding_in_every_stack(plan: PlanResult) -> None:
    """The bug this guards: ESO's first sync works (policies come last), every later credential
    fetch is dropped. Reintroduced, the plan must say so, in dev too: a real deploy breaks."""
    report = full(drop(plan.document(), "external-secrets", "allow-pod-identity-agent"), plan.stack)
    assert failures(report) == {
        (
            "external-secrets",
            "pod-identity-agent",
            "EKS Pod Identity credentials of external-secrets/external-secrets",
        )
    }
    for production in (False, True):
        [finding] = report.findings(production)
        assert finding["rule"] == "netpol-required-flows" and finding["level"] == "mandatory"
        assert "pod-identity-agent 80/TCP must be allowed" in finding["message"]


def test_the_allow_is_the_agents_address_and_port_only() -> None:
    [policy] = [
        p for p in all_policies(CIDR, SERVICE_CIDR, ()) if p["metadata"]["name"] == "allow-pod-identity-agent"
    ]
    assert policy["metadata"]["namespace"] == "external-secrets"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "external-secrets"}}
    assert policy["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": f"{POD_IDENTITY_AGENT}/32"}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        }
    ]


def test_pods_without_an_association_are_denied_the_agent_and_no_pod_reaches_imds(plan: PlanResult) -> None:
    results = netpol.check(plan.document()).results
    agent = {
        f.source.name: v for f, v in results if f.destination.name == "pod-identity-agent" and not f.allowed
    }
    assert "external-secrets-webhook" in agent and "grafana" in agent
    assert not any(agent.values())
    imds = [(f, v) for f, v in results if f.destination.name == "imds"]
    assert imds and all(not f.allowed and not v for f, v in imds)
    # kube-system is not policed: its pods are not in the generated denials.
    assert not any(f.source.namespace == "kube-system" for f, _ in imds)


def test_an_association_no_endpoint_runs_as_is_a_finding(dev: PlanResult) -> None:
    doc = dev.document()
    doc["resources"].append(
        {
            "urn": "urn:pulumi:dev::eks-platform::aws:eks/podIdentityAssociation:PodIdentityAssociation::x",
            "type": credentials.ASSOCIATION,
            "name": "x",
            "inputs": {"namespace": "monitoring", "serviceAccount": "thanos"},
        }
    )
    [finding] = [f for f in netpol.check(doc).findings(False) if f["rule"] == "netpol-pod-identity"]
    assert finding["level"] == "mandatory"  # monitoring has NetworkPolicies
    assert "monitoring/thanos" in finding["message"] and finding["urn"].endswith("::x")


def test_an_addon_association_in_its_configured_namespace(dev: PlanResult) -> None:
    doc = dev.document()
    for r in doc["resources"]:
        if r["type"] == credentials.ADDON and r["inputs"].get("podIdentityAssociations"):
            r["inputs"]["namespaceConfig"] = {"namespace": "storage"}
    found = {(a.namespace, a.service_account) for a in credentials.pod_identity_associations(doc)}
    assert ("storage", "ebs-csi-controller-sa") in found
    [finding] = [f for f in netpol.check(doc).findings(False) if f["rule"] == "netpol-pod-identity"]
    assert finding["level"] == "advisory"  # nothing polices `storage`


# -- a service with Pod Identity (charts/microservice `networkPolicy.podIdentity`) ---------------------


def service_policies(service: str, **network_policy: Any) -> list[dict[str, Any]]:
    values = yaml.safe_load((ROOT / "services" / service / "deploy" / "dev.yaml").read_text())
    values["networkPolicy"] = network_policy
    with helm_python.Chart.load(ROOT / "charts" / "microservice") as chart:
        objs = render_chart(chart, values, release=service, namespace=service, kube_version="1.35")
    return [
        {**o, "metadata": {**o["metadata"], "namespace": service}}
        for o in objs
        if o["kind"] == "NetworkPolicy"
    ]


@pytest.mark.parametrize("pod_identity", [False, True])
def test_a_services_association_needs_the_charts_pod_identity_value(
    dev: PlanResult, pod_identity: bool
) -> None:
    # Every service of the stack with its chart's policies; the association, and the value under
    # test, on the first one. No test may assume how many services a stack has (a second service
    # from `make new-service` must pass the suite).
    doc = dev.document()
    services = netpol.service_namespaces(doc)
    service = services[0]
    doc["resources"].append(
        {
            "urn": f"urn:x::{service}",
            "type": credentials.ASSOCIATION,
            "name": service,
            "inputs": {"namespace": service, "serviceAccount": service},
        }
    )
    policies = [
        *service_policies(service, podIdentity=pod_identity),
        *(p for svc in services[1:] for p in service_policies(svc)),
    ]
    report = netpol.check(doc, policies)
    broken = {(src, dst) for src, dst, _ in failures(report)}
    if pod_identity:
        assert not broken
    else:
        assert broken == {(f"{service}/{service}", "pod-identity-agent")}
    assert not report.unmodelled


def test_the_charts_default_opens_nothing_node_local(dev: PlanResult) -> None:
    service = netpol.service_namespaces(dev.document())[0]  # any service: the chart is the same
    values = yaml.safe_load((ROOT / "charts" / "microservice" / "values.yaml").read_text())
    assert values["networkPolicy"]["podIdentity"] is False
    policies = service_policies(service, **values["networkPolicy"])
    assert "169.254" not in yaml.safe_dump(policies)
    opened = service_policies(service, **{**values["networkPolicy"], "podIdentity": True})
    egress = [r for p in opened for r in p["spec"].get("egress", []) if "169.254" in yaml.safe_dump(r)]
    assert egress == [
        {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]}
    ]


# -- the evaluator's model of the VPC CNI's policy agent -----------------------------------------------

POD = Endpoint(name="p", ip="10.0.1.1", namespace="x", labels={"app": "p"}, ports={"web": 9090})
DENY_X = {
    "kind": "NetworkPolicy",
    "metadata": {"name": "d", "namespace": "x"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (Endpoint(name="own", ip="10.0.9.9", own_node=True), True),  # the agent's one exception
        (Endpoint(name="other-node", ip="10.0.9.9"), False),
        (Endpoint(name="agent", ip="169.254.170.23"), False),  # link-local: no exception
        (Endpoint(name="imds", ip="169.254.169.254"), False),
    ],
)
def test_only_the_own_nodes_address_is_exempt_both_ways(other: Endpoint, expected: bool) -> None:
    out = Flow(source=POD, destination=other, port=80, allowed=True)
    back = Flow(source=other, destination=POD, port="web", allowed=True)
    assert allows([DENY_X], out) is expected
    assert allows([DENY_X], back) is expected


def test_kubelet_probes_pass_by_the_exception_not_by_a_rule(dev: PlanResult) -> None:
    report = full(dev.document(), "dev")
    probes = {f.destination.name: v for f, v in report.results if f.source.name == "kubelet"}
    assert probes == {"prometheus": True, "grafana": True}
    table = netpol.load_table()
    table["endpoints"]["kubelet"] = {"address": "node"}  # an ordinary node address
    # Grafana admits only its namespace's pods: the probe passes by the exception alone. (Prometheus'
    # port 9090 admits the VPC for the API server's proxy, so its probe would pass either way.)
    assert {(f.source.name, f.destination.name) for f, _ in full(dev.document(), "dev", table).failures} == {
        ("kubelet", "grafana")
    }


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ({"address": "the-node"}, "'the-node': not one of api-server, internet, node, own-node or an IP"),
        ({"address": "169.254.170.23", "serviceAccount": "x"}, "is an address"),
    ],
)
def test_the_flow_table_rejects_a_bad_address(tmp_path: Any, endpoint: dict[str, Any], message: str) -> None:
    table = netpol.load_table()
    table["endpoints"]["pod-identity-agent"] = endpoint
    bad = tmp_path / "flows.yaml"
    bad.write_text(yaml.safe_dump(table))
    with pytest.raises(ValueError, match=message):
        netpol.load_table(bad)


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [(None, "endpoint 'imds' is missing"), ({"address": "169.254.169.254"}, "'imds' needs exactly one port")],
)
def test_the_flow_table_must_model_the_credential_endpoints(
    tmp_path: Any, endpoint: dict[str, Any] | None, message: str
) -> None:
    table = netpol.load_table()
    if endpoint is None:
        del table["endpoints"]["imds"]
    else:
        table["endpoints"]["imds"] = endpoint
    bad = tmp_path / "flows.yaml"
    bad.write_text(yaml.safe_dump(table))
    with pytest.raises(ValueError, match=message):
        netpol.load_table(bad)


# -- the API server's service proxy to Prometheus (tests/integration reads targets this way) ----------


def test_the_api_servers_proxy_reaches_prometheus_web_port(plan: PlanResult) -> None:
    """GET /api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy/api/v1/targets: the
    API server connects to a Prometheus pod's port 9090 from a control-plane ENI in the VPC."""
    doc = plan.document()
    table = netpol.load_table()
    ends = netpol.endpoints(
        table, netpol.vpc_cidr(doc), netpol.service_namespaces(doc), netpol.service_cidr(doc)
    )
    [eni] = [e for e in ends["api-server"] if not e.name.endswith(netpol.CLUSTER_IP)]
    [prometheus] = ends["prometheus"]
    flow = Flow(source=eni, destination=prometheus, port=9090, allowed=True)
    assert allows(netpol.plan_policies(doc), flow)
    # Only 9090: the same source is denied Prometheus' other ports, and Alertmanager.
    assert not allows(
        netpol.plan_policies(doc), Flow(source=eni, destination=prometheus, port=8080, allowed=False)
    )
    [alertmanager] = ends["alertmanager"]
    assert not allows(
        netpol.plan_policies(doc), Flow(source=eni, destination=alertmanager, port=9093, allowed=False)
    )
    # Without the allow, the table's required flow is a mandatory finding.
    report = full(drop(doc, "monitoring", "allow-api-server-proxy"), plan.stack)
    assert failures(report) == {
        ("api-server", "prometheus", "the service proxy to Prometheus (integration test)")
    }
    assert report.findings(False)[0]["level"] == "mandatory"


def test_the_proxy_allow_opens_prometheus_to_no_other_namespaces_pods(plan: PlanResult) -> None:
    rows = {
        (r["from"], r["to"]): r["verdict"]
        for r in netpol.check(plan.document()).document()["flows"]
        if r["to"] == "prometheus"
    }
    assert rows[("api-server", "prometheus")] == "allow"
    assert rows[("argocd-server", "prometheus")] == "deny"


def test_the_charts_schema_refuses_a_pod_identity_value_that_is_not_a_boolean(dev: PlanResult) -> None:
    service = netpol.service_namespaces(dev.document())[0]  # any service: the chart is the same
    values = yaml.safe_load((ROOT / "charts" / "microservice" / "values.yaml").read_text())
    with pytest.raises(RenderError, match="podIdentity"):
        service_policies(service, **{**values["networkPolicy"], "podIdentity": "yes"})
