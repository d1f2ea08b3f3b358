"""On destroy, what each controller needs while it cleans up (analysis/teardown.py, platform/teardown.yaml).

The second review's teardown blockers (monitoring volumes, Karpenter's DNS, ECR force_delete),
reintroduced into the real dev and prod plans, are findings; the program's orderings, claim
retention and force_delete that fix them are asserted on the plans; the rule logic is checked on
small synthetic plans.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pydantic
import pytest

from analysis import teardown
from analysis.graph import build
from analysis.rehearsal import create_minutes, rehearse, section
from model.findings import Finding
from model.records import PlanResult, Registration
from tests.integration.conftest import it_config
from tests.stackinfo import is_production
from tests.unit.rehearsal_plans import mutate, reg
from tools.mocks import run_program

ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
NODE_TYPES = ("kubernetes:karpenter.sh/v1:NodePool", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")


def findings(plan: PlanResult, *rules: str) -> list[Finding]:
    return [f for f in section(plan.records, plan.lookups)[1] if f.rule in rules]


def named(found: list[Finding], level: str | None = None) -> set[str]:
    return {f.urn.rsplit("::", 1)[-1] for f in found if f.urn and (level is None or f.level == level)}


def node_objects(plan: PlanResult) -> list[Registration]:
    """The NodePools and the EC2NodeClass."""
    return [r for r in plan.records if r.type in NODE_TYPES]


def addon(plan: PlanResult, name: str) -> Registration:
    (found,) = [r for r in plan.of_type(ADDON) if r.get("addonName") == name]
    return found


def release(plan: PlanResult, chart: str) -> Registration:
    (found,) = [r for r in plan.of_type(RELEASE) if str(r.get("chart")).rsplit("/", 1)[-1] == chart]
    return found


def namespaces(plan: PlanResult) -> Registration:
    (group,) = [r for r in plan.of_type(CONFIG_GROUP) if r.name.endswith("-namespaces-group")]
    return group


def without(urns: set[str]) -> Any:
    def change(r: Registration) -> Registration:
        return dataclasses.replace(r, dependencies=[d for d in r.dependencies if d not in urns])

    return change


# -- the fixed program -----------------------------------------------------------------------------


def test_neither_stack_has_a_teardown_finding(plan: PlanResult) -> None:
    assert findings(plan, teardown.RULE, teardown.RULE_RETENTION, teardown.RULE_RECLAIM) == []


def test_namespaces_go_before_the_volume_driver_and_its_dns(plan: PlanResult) -> None:
    graph = build(plan.records)
    ancestors = graph.ancestors(namespaces(plan).urn)
    assert {addon(plan, "aws-ebs-csi-driver").urn, addon(plan, "coredns").urn} <= ancestors


def test_karpenter_and_its_node_pools_go_before_coredns_and_their_credentials(plan: PlanResult) -> None:
    graph = build(plan.records)
    association = next(
        r
        for r in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if r.get("serviceAccount") == "karpenter"
    )
    needs = {addon(plan, "coredns").urn, association.urn, plan.one("aws:sqs/queue:Queue").urn}
    for r in [release(plan, "karpenter"), *node_objects(plan)]:
        assert needs <= graph.ancestors(r.urn), r.name
        # Named directly, not only reached through the release (the fix must not hang on one edge).
        if r.type in NODE_TYPES:
            assert needs <= set(r.dependencies), r.name


def test_dev_claims_no_volume_and_prod_keeps_claims_and_volumes(plans: dict[str, PlanResult]) -> None:
    """A dev destroy has no volume to leave: nothing in it claims one. Prod's claims outlive their
    StatefulSets on a class that retains the volumes (kept by design: docs/retiring-a-stack.md)."""

    def reclaim(plan: PlanResult) -> str:
        (storage_class,) = [o for o in addon_objects(plan) if o["kind"] == "StorageClass"]
        return str(storage_class["reclaimPolicy"])

    assert teardown.claim_uses(build(plans["dev"].records)) == [] and reclaim(plans["dev"]) == "Delete"
    kept = teardown.claim_uses(build(plans["prod"].records))
    assert {u.claim.what for u in kept} == {
        "Prometheus' volumes",
        "Alertmanager's volumes",
        "Grafana's volume",
        "redis-ha's volumes",
    }
    assert {(u.reclaim, u.when_deleted) for u in kept} == {("Retain", "Retain"), ("Retain", None)}
    assert reclaim(plans["prod"]) == "Retain"


def test_an_ephemeral_integration_stack_claims_no_volume() -> None:
    """The integration run's leak check (tools/leak_check.py) finds a tagged volume as a leak: an
    it-* stack is dev-like (not production) and so claims none."""
    config = it_config(
        "eu-west-1",
        "203.0.113.10/32",
        "https://github.com/example-org/eks-platform.git",
        "arn:aws:iam::123456789012:role/it-runner",
        None,
    )
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    plan = run_program("it-0000abcd", raw)
    assert teardown.claim_uses(build(plan.records)) == []


def addon_objects(plan: PlanResult) -> list[dict[str, Any]]:
    return [o for r in plan.of_type(CONFIG_GROUP) if r.name.endswith("-addons-gp3") for o in r.get("objs")]


def test_dev_repositories_are_force_deleted_and_prod_keeps_them(plans: dict[str, PlanResult]) -> None:
    for stack, force in (("dev", True), ("prod", False)):
        repositories = plans[stack].of_type("aws:ecr/repository:Repository")
        assert repositories and {r.get("forceDelete") for r in repositories} == {force}, stack
        assert all(r.protect and r.retain_on_delete for r in repositories) is is_production(stack)


def test_the_rehearsal_section_lists_each_controller_and_its_needs(plans: dict[str, PlanResult]) -> None:
    dev, prod = plans["dev"], plans["prod"]
    part = {c["controller"]: c for c in section(dev.records)[0]["teardown"]}
    assert set(part) == {"karpenter", "ebs-csi"}
    assert part["ebs-csi"]["cleansUp"] == []  # dev claims no volume
    prod_part = {c["controller"]: c for c in section(prod.records)[0]["teardown"]}
    assert namespaces(prod).urn in prod_part["ebs-csi"]["cleansUp"]
    assert {r.urn for r in node_objects(dev)} <= set(part["karpenter"]["cleansUp"])
    dns = next(n for n in part["karpenter"]["needs"] if n["what"] == "CoreDNS")
    assert dns["resources"] == [addon(dev, "coredns").urn]


# -- the review's blockers, reintroduced ---------------------------------------------------------


def with_claims(plan: PlanResult, when_deleted: str = "Delete") -> PlanResult:
    """Dev as it was: Prometheus and Alertmanager on claims of the gp3 class (reclaim Delete in dev)."""

    def claims(r: Registration) -> Registration:
        values = json.loads(json.dumps(r.get("values")))
        claim = {"volumeClaimTemplate": {"spec": {"storageClassName": "gp3-encrypted"}}}
        policy = {"whenDeleted": when_deleted, "whenScaled": "Retain"}
        prometheus = values["prometheus"]["prometheusSpec"]
        alertmanager = values["alertmanager"]["alertmanagerSpec"]
        prometheus["storageSpec"], alertmanager["storage"] = claim, claim
        prometheus["persistentVolumeClaimRetentionPolicy"] = policy
        alertmanager["persistentVolumeClaimRetentionPolicy"] = policy
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, "values": values})

    stack = release(plan, "kube-prometheus-stack")
    return mutate(plan, claims, lambda r: r.urn == stack.urn)


def test_volume_race_dev_claims_reintroduced_are_a_mandatory_finding(dev: PlanResult) -> None:
    """The third review's race: the claims go, the CSI add-on is deleted next, and nothing awaits
    the volumes' detach and deletion. Ordered as well as it can be, dev's claims still leak."""
    stack = release(dev, "kube-prometheus-stack")
    broken = with_claims(dev)
    found = findings(broken, teardown.RULE_RECLAIM)
    assert [(f.level, f.urn) for f in found] == [("mandatory", stack.urn)] * 2
    assert {f.message.split("reclaim policy of ", 1)[1].split(" is ", 1)[0] for f in found} == {
        "Prometheus' volumes",
        "Alertmanager's volumes",
    }
    assert all("the release kube-prometheus-stack deletes their claims" in f.message for f in found)
    assert all("nothing awaits the PersistentVolume" in f.message for f in found)
    # The orderings of blocker 4 hold: this finding is about what no ordering can fix.
    assert findings(broken, teardown.RULE) == []


def test_volume_race_dev_grafana_persistence_reintroduced_is_a_mandatory_finding(dev: PlanResult) -> None:
    def persist(r: Registration) -> Registration:
        values = json.loads(json.dumps(r.get("values")))
        values["grafana"]["persistence"]["enabled"] = True
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, "values": values})

    stack = release(dev, "kube-prometheus-stack")
    found = findings(mutate(dev, persist, lambda r: r.urn == stack.urn), teardown.RULE_RECLAIM)
    assert [(f.level, f.urn) for f in found] == [("mandatory", stack.urn)]
    assert "Grafana's volume" in found[0].message and "the release kube-prometheus-stack" in found[0].message


def test_prods_retained_claims_are_not_a_leak(prod: PlanResult) -> None:
    assert teardown.claim_uses(build(prod.records))
    assert findings(prod, teardown.RULE_RECLAIM) == []


@pytest.mark.parametrize(("stack", "level"), [("dev", "mandatory"), ("prod", "advisory")])
def test_blocker_4_namespaces_not_ordered_after_the_volume_driver(
    plans: dict[str, PlanResult], stack: str, level: str
) -> None:
    """Dev (with its former claims) would leak its volumes (mandatory); prod retains them anyway
    (advisory)."""
    plan = with_claims(plans["dev"]) if stack == "dev" else plans[stack]
    addons = {r.urn for r in plan.records if "platform:addons:ClusterAddons" in r.urn}
    broken = mutate(plan, without(addons), lambda r: r.urn == namespaces(plan).urn)
    found = findings(broken, teardown.RULE)
    assert named(found, level) == {namespaces(plan).name}
    assert any("EBS CSI add-on" in f.message for f in found)
    assert not [f for f in found if f.level == "mandatory" and level == "advisory"]


def test_blocker_4_claims_kept_after_their_statefulset_in_dev(dev: PlanResult) -> None:
    stack = release(dev, "kube-prometheus-stack")
    found = findings(with_claims(dev, when_deleted="Retain"), teardown.RULE_RETENTION)
    assert [(f.level, f.urn) for f in found] == [("advisory", stack.urn)] * 2
    assert any("Prometheus' volumes outlive their StatefulSet" in f.message for f in found)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_blocker_5_karpenter_without_coredns(plans: dict[str, PlanResult], stack: str) -> None:
    plan = plans[stack]
    dns = {addon(plan, "coredns").urn}
    karpenter = {release(plan, "karpenter").urn, *(r.urn for r in node_objects(plan))}
    broken = mutate(plan, without(dns), lambda r: r.urn in karpenter)
    found = [f for f in findings(broken, teardown.RULE) if "CoreDNS" in f.message]
    assert {f.urn for f in found} == karpenter
    assert {f.level for f in found} == {"mandatory"}


def test_blocker_5_node_pools_that_may_outlive_karpenters_credentials(dev: PlanResult) -> None:
    association = next(
        r
        for r in dev.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if r.get("serviceAccount") == "karpenter"
    )
    # The release reaches the association through its settle Job; the NodePools name it directly.
    cut = {association.urn, *(r.urn for r in dev.of_type("kubernetes:batch/v1:Job") if "karpenter" in r.name)}
    targets = {release(dev, "karpenter").urn, *(r.urn for r in node_objects(dev))}
    broken = mutate(dev, without(cut), lambda r: r.urn in targets)
    found = [f for f in findings(broken, teardown.RULE) if "Pod Identity association" in f.message]
    assert {f.urn for f in found} == targets and {f.level for f in found} == {"mandatory"}


def test_blocker_6_dev_repository_without_force_delete(dev: PlanResult) -> None:
    def unforced(r: Registration) -> Registration:
        return dataclasses.replace(
            r, raw_inputs={k: v for k, v in r.raw_inputs.items() if k != "forceDelete"}
        )

    broken = mutate(dev, unforced, lambda r: r.type == "aws:ecr/repository:Repository")
    found = findings(broken, teardown.RULE)
    assert named(found, "mandatory") == {r.name for r in dev.of_type("aws:ecr/repository:Repository")}
    assert "RepositoryNotEmptyException" in found[0].message


# -- the rule logic on synthetic plans -------------------------------------------------------------


def synthetic(
    *, ns_deps: tuple[str, ...], when_deleted: str, reclaim: str, own_namespace: bool = True
) -> list[Any]:
    csi = reg("csi", ADDON, inputs={"addonName": "aws-ebs-csi-driver"})
    storage = reg(
        "sc",
        CONFIG_GROUP,
        inputs={
            "objs": [
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {
                        "name": "gp3",
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                    },
                    "reclaimPolicy": reclaim,
                }
            ]
        },
    )
    values = {
        "prometheus": {
            "prometheusSpec": {
                "storageSpec": {"volumeClaimTemplate": {"spec": {}}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": when_deleted},
            }
        }
    }
    records = [csi, storage]
    if own_namespace:
        records.append(
            reg(
                "ns",
                CONFIG_GROUP,
                *ns_deps,
                inputs={
                    "objs": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}]
                },
            )
        )
    records.append(
        reg(
            "kps",
            RELEASE,
            csi.urn,
            storage.urn,
            *([records[-1].urn] if own_namespace else []),
            inputs={"chart": "kube-prometheus-stack", "namespace": "monitoring", "values": values},
        )
    )
    return records


def rules_fired(records: list[Any]) -> list[tuple[str, str, str]]:
    return [(f.rule, f.level.value, str(f.urn).rsplit("::", 1)[-1]) for f in teardown.check(build(records))]


RECLAIM = ("rehearsal-volume-reclaim", "mandatory", "kps")
CSI = "urn:pulumi:s::p::aws:eks/addon:Addon::csi"


def test_retained_claims_ordered_after_the_driver_pass() -> None:
    assert rules_fired(synthetic(ns_deps=(CSI,), when_deleted="Retain", reclaim="Retain")) == []


def test_deleted_volumes_of_a_destroyed_driver_are_a_leak_however_ordered() -> None:
    """Ordered after the driver, claims deleted with their StatefulSet: the volumes still go
    unawaited once the claims are gone (the race of the third review)."""
    ordered = synthetic(ns_deps=(CSI,), when_deleted="Delete", reclaim="Delete")
    assert rules_fired(ordered) == [RECLAIM]
    kept_driver = [dataclasses.replace(r, retain_on_delete=True) if r.urn == CSI else r for r in ordered]
    assert rules_fired(kept_driver) == []  # the destroy leaves the driver running: it finishes
    protected = [dataclasses.replace(r, protect=True) if r.urn == CSI else r for r in ordered]
    assert rules_fired(protected) == [RECLAIM]  # unprotected before a real destroy
    without_driver = [r for r in ordered if r.urn != CSI]
    assert RECLAIM not in rules_fired(without_driver)  # a driver the stack does not delete


def test_a_namespace_deleted_after_the_driver_is_mandatory_for_deleted_volumes_only() -> None:
    leak = synthetic(ns_deps=(), when_deleted="Delete", reclaim="Delete")
    assert rules_fired(leak) == [("rehearsal-teardown", "mandatory", "ns"), RECLAIM]
    kept = synthetic(ns_deps=(), when_deleted="Retain", reclaim="Retain")
    assert rules_fired(kept) == [("rehearsal-teardown", "advisory", "ns")]


def test_claims_whose_fate_differs_from_their_volumes_are_advisories() -> None:
    outlive = rules_fired(synthetic(ns_deps=(CSI,), when_deleted="Retain", reclaim="Delete"))
    assert outlive == [("rehearsal-claim-retention", "advisory", "kps"), RECLAIM]
    orphan = rules_fired(synthetic(ns_deps=(CSI,), when_deleted="Delete", reclaim="Retain"))
    assert orphan == [("rehearsal-claim-retention", "advisory", "kps")]


def test_operator_claims_in_a_namespace_the_stack_does_not_own_are_never_deleted() -> None:
    records = synthetic(ns_deps=(), when_deleted="Retain", reclaim="Delete", own_namespace=False)
    assert ("rehearsal-teardown", "mandatory", "kps") in rules_fired(records)
    deleted = synthetic(ns_deps=(), when_deleted="Delete", reclaim="Delete", own_namespace=False)
    assert ("rehearsal-teardown", "mandatory", "kps") not in rules_fired(deleted)


def test_a_need_the_plan_does_not_have_is_not_required() -> None:
    """A stack without the Pod Identity agent add-on (IRSA, say) is not told to order after it."""
    records = synthetic(ns_deps=(CSI,), when_deleted="Retain", reclaim="Retain")
    assert not any(r.get("addonName") == "eks-pod-identity-agent" for r in records)
    assert rules_fired(records) == []


def test_a_need_with_two_selectors_is_refused_by_name() -> None:
    data = teardown.rules().model_dump()
    need = data["controllers"]["karpenter"]["needs"][0]
    need["podIdentity"] = {"namespace": "kube-system", "serviceAccount": "karpenter"}
    with pytest.raises(pydantic.ValidationError, match="need 'CoreDNS': give exactly one of match"):
        teardown.Teardown.model_validate(data)


def test_every_controller_need_names_why_and_its_source() -> None:
    for name, controller in teardown.rules().controllers.items():
        for need in controller.needs:
            assert need.why.strip() and need.source.strip(), f"{name}: {need.what}"


# -- durations: the add-on figure depends on whether nodes exist ---------------------------------


@pytest.mark.parametrize("name", ["coredns", "aws-ebs-csi-driver"])
def test_an_addon_created_after_the_nodes_costs_seconds_before_them_fifteen_minutes(name: str) -> None:
    group = reg("ng", "eks:index:ManagedNodeGroup")
    after = reg("after", ADDON, group.urn, inputs={"addonName": name})
    before = reg("before", ADDON, inputs={"addonName": name})
    cost = rehearse([group, after, before]).create_cost
    assert cost[after.urn] == create_minutes(after, nodes_exist=True) == 0.5
    assert cost[before.urn] == 15.0


def test_the_real_plans_charge_coredns_the_after_nodes_figure(plan: PlanResult) -> None:
    cost = rehearse(plan.records).create_cost
    assert cost[addon(plan, "coredns").urn] == 0.5
    assert cost[addon(plan, "aws-ebs-csi-driver").urn] == 0.5
