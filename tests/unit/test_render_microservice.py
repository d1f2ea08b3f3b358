"""The project's own chart, charts/microservice, rendered by Helm's engine with every service's values
for every stack (services/<service>/deploy/<stack>.yaml), as ArgoCD renders it, and validated.

A values file that breaks the chart's values.schema.json, or a template, fails here. Custom resources
(ServiceMonitor, VerticalPodAutoscaler) are checked against their CRD schemas (tests/schemas.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from analysis.helm import RenderError, render_chart
from analysis.render import kube_version
from analysis.validate import validate_rendered
from components.gitops import GitOpsArgs, services_project
from components.helm import ChartSpec
from components.secrets import service_store
from model.records import PlanResult
from tests.conftest import STACKS
from tests.schemas import validate_custom_resource
from tools.mocks import ROOT

CHART = ROOT / "charts" / "microservice"
SERVICES = sorted(p.parent.parent.name for p in (ROOT / "services").glob("*/deploy/dev.yaml"))
CUSTOM = {"monitoring.coreos.com/v1 ServiceMonitor", "autoscaling.k8s.io/v1 VerticalPodAutoscaler"}


def render(values_file: Path, service: str, version: str | None) -> list[dict[str, Any]]:
    values = yaml.safe_load(values_file.read_text()) or {}
    with helm_python.Chart.load(CHART) as chart:
        return render_chart(chart, values, release=service, namespace=service, kube_version=version)


def test_every_service_has_values_for_every_stack() -> None:
    assert SERVICES, "no service under services/"
    for service in SERVICES:
        assert {p.stem for p in (ROOT / "services" / service / "deploy").glob("*.yaml")} == set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("service", SERVICES)
def test_chart_renders_valid_objects_with_each_services_values(
    service: str, stack: str, plans: dict[str, PlanResult]
) -> None:
    version = kube_version(r.document() for r in plans[stack].records)
    assert version, "the plan records the cluster's Kubernetes version"
    objects = render(ROOT / "services" / service / "deploy" / f"{stack}.yaml", service, version)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "VerticalPodAutoscaler",
        ]
    )
    report = validate_rendered(
        [{"urn": service, "release": service, "objects": objects}], version, schema_dir=None
    )
    assert [p.document() for p in report.problems] == []
    assert set(report.unknown_kinds) == CUSTOM, "custom resources are checked below"
    for obj in objects:
        if f"{obj['apiVersion']} {obj['kind']}" in CUSTOM:
            validate_custom_resource(obj)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_port_is_its_container_port(service: str, stack: str) -> None:
    """The VPC CNI's network policies need it (EKS User Guide, network policy considerations): a
    client's egress policy receives the Service's ClusterIP only when the ports are the same."""
    objects = render(ROOT / "services" / service / "deploy" / f"{stack}.yaml", service, None)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (svc,) = [o for o in objects if o["kind"] == "Service"]
    ports = {
        p["name"]: p["containerPort"]
        for c in deployment["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports", [])
    }
    for port in svc["spec"]["ports"]:
        target = port["targetPort"]
        assert port["port"] == (ports[target] if isinstance(target, str) else target), port


def merged(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"autoscaling": {"minReplicas": "many"}}, "minReplicas"),
        (
            {"verticalAutoscaling": {"updateMode": "Recreate", "controlledResources": ["cpu"]}},
            "controlledResources",
        ),
        ({"networkPolicy": {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}, "ports"),
        ({"networkPolicy": {"ingressFrom": [{"podSelectr": {}}]}}, "podSelectr"),
        # A key that only looks like leaving the service's own <prefix>/<service>/ folder (the store's
        # prefix keeps it there anyway), and the prefix value the chart no longer has.
        ({"externalSecrets": {"secrets": [{"name": "db", "key": "../x"}]}}, "key"),
        ({"externalSecrets": {"secrets": [{"name": "db", "key": "/x"}]}}, "key"),
        (
            {"externalSecrets": {"prefix": "eks-platform", "secrets": [{"name": "db", "key": "x"}]}},
            "additional properties 'prefix' not allowed",
        ),
    ],
)
def test_a_values_file_that_breaks_the_schema_fails_to_render(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    good = ROOT / "services" / SERVICES[0] / "deploy" / "prod.yaml"
    render(good, SERVICES[0], "1.35")
    bad = tmp_path / "prod.yaml"
    bad.write_text(yaml.safe_dump(merged(yaml.safe_load(good.read_text()), change)))
    with pytest.raises(RenderError, match=message):
        render(bad, SERVICES[0], "1.35")


SECRETS = {
    "externalSecrets": {"secrets": [{"name": "database", "key": "database"}]},
    "envFromSecrets": ["database"],
}


def test_a_service_brings_its_own_secrets_through_its_own_store(tmp_path: Path) -> None:
    """docs/secrets.md: externalSecrets renders one ExternalSecret per entry, read through the
    service's own ClusterSecretStore (components/secrets.py service_store, whose prefix is
    <prefix>/<service>/), naming only <key>, valid against the ExternalSecret CRD."""
    service = SERVICES[0]
    good = ROOT / "services" / service / "deploy" / "dev.yaml"
    values = tmp_path / "dev.yaml"
    values.write_text(yaml.safe_dump(merged(yaml.safe_load(good.read_text()), SECRETS)))
    objects = render(values, service, "1.35")
    (secret,) = [o for o in objects if o["kind"] == "ExternalSecret"]
    validate_custom_resource(secret)
    assert secret["metadata"]["name"] == "database"
    assert secret["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": service_store(service)}
    assert secret["spec"]["target"] == {"name": "database", "creationPolicy": "Owner"}
    assert secret["spec"]["dataFrom"] == [{"extract": {"key": "database"}}]
    # The operator fetches, not the service's pods: their NetworkPolicies are the same as without.
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert policies == [o for o in render(good, service, "1.35") if o["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("service", SERVICES)
def test_the_store_a_services_chart_names_is_confined_to_the_service(
    service: str, stack: str, tmp_path: Path, plans: dict[str, PlanResult]
) -> None:
    """The chart's ExternalSecret (rendered with the service's values for the stack, in its namespace)
    names a ClusterSecretStore of the stack's plan that serves that namespace alone and reads only
    <prefix>/<service>/: another namespace cannot use it, and its keys cannot leave the service's."""
    good = ROOT / "services" / service / "deploy" / f"{stack}.yaml"
    values = tmp_path / f"{stack}.yaml"
    values.write_text(yaml.safe_dump(merged(yaml.safe_load(good.read_text()), SECRETS)))
    (secret,) = [o for o in render(values, service, "1.35") if o["kind"] == "ExternalSecret"]
    ref = secret["spec"]["secretStoreRef"]
    stores = {
        s.get("metadata")["name"]: s.get("spec")
        for s in plans[stack].of_type("kubernetes:external-secrets.io/v1:ClusterSecretStore")
    }
    assert ref["kind"] == "ClusterSecretStore" and ref["name"] in stores
    spec = stores[ref["name"]]
    assert spec["conditions"] == [{"namespaces": [service]}]
    assert spec["provider"]["aws"]["prefix"] == f"eks-platform-{stack}/{service}/"
    # No other store of the stack serves the service's namespace.
    serving = [
        n for n, s in stores.items() if any(service in c.get("namespaces", []) for c in s["conditions"])
    ]
    assert serving == [ref["name"]]


def test_the_services_project_admits_every_kind_the_chart_renders(tmp_path: Path) -> None:
    """Every namespaced kind of charts/microservice (ExternalSecret included) may be synced by the
    `microservices` AppProject into a service namespace (components/gitops.py services_project)."""
    service = SERVICES[0]
    values = tmp_path / "dev.yaml"
    good = ROOT / "services" / service / "deploy" / "dev.yaml"
    values.write_text(yaml.safe_dump(merged(yaml.safe_load(good.read_text()), SECRETS)))
    args = GitOpsArgs(
        chart=ChartSpec(chart="argo-cd", version="1"),
        base_values={},
        high_availability=False,
        repo_url="https://github.com/o/r.git",
        revision="main",
        path="platform/gitops/dev",
        service_namespaces=(service,),
        labels={},
        annotations={},
        sso=None,
        depends_on=[],
    )
    spec = services_project(args)
    denied = {(d["group"], d["kind"]) for d in spec["namespaceResourceBlacklist"]}
    allowed = spec.get("namespaceResourceWhitelist")
    for obj in render(values, service, "1.35"):
        group = obj["apiVersion"].rpartition("/")[0]
        assert (group, obj["kind"]) not in denied
        assert allowed is None or {"group": group, "kind": obj["kind"]} in allowed
