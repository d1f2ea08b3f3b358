"""The deploy rehearsal's engine model: graph, waves, critical path, durations, destroy order."""

from __future__ import annotations

import pytest

from analysis.graph import build, from_document
from analysis.rehearsal import (
    _go_duration,
    create_minutes,
    delete_minutes,
    durations,
    rehearse,
    timeout_minutes,
)
from model.records import PlanResult
from tests.unit.rehearsal_plans import reg, urn

ROLE = "aws:iam/role:Role"
CLUSTER = "eks:index:Cluster"
MNG = "eks:index:ManagedNodeGroup"
RELEASE = "kubernetes:helm.sh/v3:Release"


def diamond() -> list:
    """vpc (2) -> cluster (12.5) -> mng (2) and role (0.1, unsourced default) -> release (2);
    the release waits for the Kubernetes provider, which waits for the cluster."""
    role = reg("role", "some:unknown/type:Type")
    vpc = reg("vpc", "awsx:ec2:Vpc", custom=False)
    cluster = reg("cluster", CLUSTER, vpc.urn, role.urn, custom=False)
    provider = reg("k8s", "pulumi:providers:kubernetes", cluster.urn)
    mng = reg("mng", MNG, cluster.urn, custom=False)
    release = reg("rel", RELEASE, mng.urn, provider=provider.urn)
    return [role, vpc, cluster, provider, mng, release]


def test_waves_and_critical_path_of_a_small_graph() -> None:
    rh = rehearse(diamond())
    names = [{u.rsplit("::", 1)[-1] for u in wave} for wave in rh.create.waves]
    # Hand-computed: a node's wave is one more than the latest wave it waits for.
    assert names == [{"role", "vpc"}, {"cluster"}, {"k8s", "mng"}, {"rel"}]
    # vpc 2 + cluster 12.5 + mng 2 + release 2 (the provider costs nothing).
    assert rh.create.minutes == 18.5
    assert [u.rsplit("::", 1)[-1] for u in rh.create.critical_path] == ["vpc", "cluster", "mng", "rel"]
    # Worst case: NAT timeout 10 + cluster 30 + node group 60 + Helm default 300 s.
    assert rh.worst_case_minutes == 105.0


def test_destroy_runs_the_graph_backwards() -> None:
    rh = rehearse(diamond())
    names = [{u.rsplit("::", 1)[-1] for u in wave} for wave in rh.destroy.waves]
    assert names == [{"rel"}, {"k8s", "mng"}, {"cluster"}, {"role", "vpc"}]
    # release 1 + node group 3 + cluster 10 + VPC 5.
    assert rh.destroy.minutes == 19.0


def test_local_components_are_expanded_to_their_children() -> None:
    comp = reg("comp", "platform:x:X", custom=False)
    child_a = reg("a", ROLE, parent=comp.urn)
    child_b = reg("b", ROLE, parent=comp.urn)
    user = reg("user", ROLE, comp.urn)
    graph = build([comp, child_a, child_b, user])
    assert comp.urn not in graph.nodes
    assert graph.needs[user.urn] == {child_a.urn, child_b.urn}


def test_a_resource_waits_for_its_provider_and_its_custom_parent() -> None:
    provider = reg("k8s", "pulumi:providers:kubernetes")
    parent = reg("parent", ROLE)
    child = reg("child", ROLE, provider=provider.urn, parent=parent.urn)
    assert build([provider, parent, child]).needs[child.urn] == {provider.urn, parent.urn}


def test_a_cycle_is_an_error_naming_its_members() -> None:
    a = reg("a", ROLE, urn(ROLE, "b"))
    b = reg("b", ROLE, a.urn)
    with pytest.raises(ValueError, match=r"cycle among: .*::a"):
        build([a, b]).order()


@pytest.mark.parametrize(
    ("typ", "inputs", "create", "timeout"),
    [
        (RELEASE, {"timeout": 900}, 2.0, 15.0),
        (RELEASE, {}, 2.0, 5.0),
        ("aws:eks/addon:Addon", {"addonName": "coredns"}, 15.0, 20.0),
        ("aws:eks/addon:Addon", {"addonName": "vpc-cni"}, 0.5, 20.0),
        ("time:index/sleep:Sleep", {"createDuration": "1m30s"}, 1.5, 1.5),
        ("some:unknown/type:Type", {}, 0.1, 0.1),
    ],
)
def test_durations_come_from_the_data_file_and_the_inputs(
    typ: str, inputs: dict, create: float, timeout: float
) -> None:
    r = reg("x", typ, inputs=inputs)
    assert create_minutes(r) == create
    assert timeout_minutes(r) == timeout


def test_a_local_component_costs_nothing() -> None:
    r = reg("c", "platform:x:X", custom=False)
    assert create_minutes(r) == 0 and delete_minutes(r) == 0


@pytest.mark.parametrize("bad", ["", "soon", "30 s", "1d"])
def test_a_bad_sleep_duration_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        _go_duration(bad)


def test_every_figure_names_its_source_and_unsourced_ones_say_so() -> None:
    data = durations()
    for typ, entry in data["types"].items():
        assert entry.get("source"), f"{typ} has no source"
        assert {"create", "delete"} <= set(entry), typ
        if (
            "github.com" not in entry["source"]
            and "@" not in entry["source"]
            and not typ.startswith("pulumi:")
        ):
            assert entry.get("sourced") is False or "input" in entry["source"], typ
    assert data["default"]["sourced"] is False
    assert ".." + "/shared" not in str(data)  # cites the original sources, not a folder outside the checkout


def test_the_real_plans_have_an_eks_critical_path(plan: PlanResult) -> None:
    rh = rehearse(plan.records)
    types = [rh.graph.nodes[u].type for u in rh.create.critical_path]
    assert types[:2] == ["awsx:ec2:Vpc", CLUSTER]
    assert MNG in types
    # The cluster alone takes 12.5 minutes; the platform more than that, and less than the timeouts.
    assert 14.5 < rh.create.minutes < rh.worst_case_minutes
    # Every node is in exactly one wave, both ways.
    for waves in (rh.create.waves, rh.destroy.waves):
        flat = [u for wave in waves for u in wave]
        assert sorted(flat) == sorted(rh.graph.nodes) and all(w == sorted(w) for w in waves)
    # Destroy: the VPC goes after the cluster, the cluster after every Kubernetes object.
    position = {u: i for i, wave in enumerate(rh.destroy.waves) for u in wave}
    cluster = next(u for u, r in rh.graph.nodes.items() if r.type == CLUSTER)
    vpc = next(u for u, r in rh.graph.nodes.items() if r.type == "awsx:ec2:Vpc")
    assert position[vpc] > position[cluster]
    k8s = [u for u, r in rh.graph.nodes.items() if r.type.startswith("kubernetes:")]
    assert k8s and all(position[u] < position[cluster] for u in k8s)


def test_a_saved_plan_document_rehearses_like_the_live_plan(plan: PlanResult) -> None:
    live = rehearse(plan.records).document()
    saved = rehearse(from_document(plan.document())).document()
    assert saved == live
