"""Scheduling fit of the system node group (analysis/fit.py), on both stacks and on bad designs."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from analysis import fit
from model.records import PlanResult, Registration
from policy.model import Level


def with_group(plan: PlanResult, **inputs: Any) -> list[Registration]:
    """The plan's records with the system node group's inputs changed."""
    group = fit.system_group(plan.records)
    changed = dataclasses.replace(group, raw_inputs={**group.raw_inputs, **inputs})
    return [changed if r is group else r for r in plan.records]


@pytest.mark.parametrize(
    ("vcpu", "reserved"),
    # amazon-eks-ami nodeadm getCPUMillicoresToReserve: 6 % of core 1, 1 % of core 2, 0.5 % of
    # cores 3-4, 0.25 % above.
    [(1, 0.06), (2, 0.07), (4, 0.08), (8, 0.09), (16, 0.11)],
)
def test_kube_reserved_cpu_follows_the_al2023_formula(vcpu: int, reserved: float) -> None:
    assert fit.kube_reserved_cpu(vcpu) == pytest.approx(reserved)


def test_allocatable_of_an_m7g_large() -> None:
    cpu, memory, pods = fit.allocatable("m7g.large")
    assert pods == 3 * (10 - 1) + 2  # 3 ENIs x (10 IPv4 - 1) + 2
    assert cpu == pytest.approx(1.93)
    # 8 GiB less 7.5 % VM overhead, less kube-reserved (11 x 29 + 255 MiB) and 100 MiB eviction.
    assert memory == pytest.approx(8 * 0.925 - (11 * 29 + 255 + 100) / 1024)


def test_an_unknown_instance_type_is_named() -> None:
    with pytest.raises(KeyError, match=r"'m9z.huge' is not in capacity.yaml"):
        fit.allocatable("m9z.huge")


@pytest.mark.parametrize(
    ("text", "value"), [("250m", 0.25), ("1", 1.0), ("1.5", 1.5), ("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30)]
)
def test_quantities(text: str, value: float) -> None:
    assert fit.quantity(text) == pytest.approx(value)


def test_a_bad_quantity_is_named() -> None:
    with pytest.raises(ValueError, match="'lots' is not a Kubernetes quantity"):
        fit.quantity("lots")


def test_prod_fits_with_one_node_lost(prod: PlanResult) -> None:
    report = fit.system_nodes(prod.records)
    assert report["basis"] == "values"
    assert (report["fits"], report["fitsWithOneNodeLost"]) == (True, True)
    assert fit.findings(report, production=True) == []
    names = {p["name"] for p in report["pods"]}
    # Chart workloads, EKS add-on controllers and DaemonSets are all counted.
    assert {"karpenter", "argocd-redis-ha-haproxy", "coredns", "ebs-csi-controller", "kube-proxy"} <= names
    assert "argocd-redis" not in names  # replaced by redis-ha in prod
    assert "prometheus" not in names  # runs on Karpenter nodes


def test_the_old_prod_design_does_not_fit(prod: PlanResult) -> None:
    """3 x m7g.large: about 5.0 of 5.79 vCPU requested (one pod finds no room once packed), and
    2 x 1.93 vCPU left after a node is lost."""
    report = fit.system_nodes(with_group(prod, instanceTypes=["m7g.large", "m6g.large"]))
    assert report["fitsWithOneNodeLost"] is False
    assert len(report["unscheduledWithOneNodeLost"]) > 10
    found = fit.findings(report, production=True)
    assert {f.level for f in found} == {Level.MANDATORY}
    assert {f.rule for f in found} == {"system-nodes-fit"}
    assert any("with one node lost" in f.message for f in found)
    assert {f.level for f in fit.findings(report, production=False)} == {Level.ADVISORY}


def test_too_few_nodes_do_not_fit(prod: PlanResult) -> None:
    report = fit.system_nodes(with_group(prod, scalingConfig={"minSize": 1, "desiredSize": 1, "maxSize": 1}))
    assert report["fits"] is False
    assert report["unscheduled"]


def test_every_system_controller_sets_requests(plan: PlanResult) -> None:
    """The values estimate is honest only if every pod on the system nodes asks for something."""
    report = fit.system_nodes(plan.records)
    charts = [
        p for p in report["pods"] if not p["perNode"] and p["name"] not in {"coredns", "ebs-csi-controller"}
    ]
    assert charts and all(p["cpu"] > 0 and p["memoryGiB"] > 0 for p in charts), charts


def _deployment(
    name: str, cpu: str, memory: str, *, system: bool = True, replicas: int = 2
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "nodeSelector": {"eks-platform.io/node-pool": "system"} if system else {},
                    "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
                }
            },
        },
    }


def test_rendered_pods_are_used_when_every_release_is_rendered(prod: PlanResult) -> None:
    releases = sorted(r.urn for r in prod.of_type(fit.HELM))
    rendered: list[dict[str, Any]] = [
        {"urn": u, "chart": "c", "version": "1", "objects": []} for u in releases
    ]
    rendered[0]["objects"] = [
        _deployment("big", "3", "1Gi"),
        _deployment("elsewhere", "8", "1Gi", system=False),
    ]
    report = fit.system_nodes(prod.records, rendered)
    assert report["basis"] == "rendered"
    assert "Deployment/elsewhere" not in {p["name"] for p in report["pods"]}
    # Two 3-CPU pods fit on three nodes and on the two left after a loss; a third needs all three.
    assert (report["fits"], report["fitsWithOneNodeLost"]) == (True, True)
    rendered[0]["objects"].append(_deployment("bigger", "3.5", "1Gi", replicas=1))
    report = fit.system_nodes(prod.records, rendered)
    assert report["fits"] is True and report["fitsWithOneNodeLost"] is False


def test_a_partial_render_falls_back_to_values(prod: PlanResult) -> None:
    one = next(iter(prod.of_type(fit.HELM))).urn
    report = fit.system_nodes(prod.records, [{"urn": one, "objects": [_deployment("x", "100", "1Gi")]}])
    assert report["basis"] == "values" and report["fits"] is True
