"""What packaged components create inside themselves, and what an import adopts (analysis/internals.py).

The children come from platform/component-internals.yaml (pulumi/pulumi-eks nodejs/eks/cluster/
cluster.ts and authenticationMode.ts at 7bf0c1b1, pinned pulumi_eks 4.4.0); the offline engine runs
the program's transforms over them (tools/mocks.py), so the plan shows the transform's effect.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pytest

import components.cluster
from analysis.graph import build, from_document
from analysis.internals import after_destroy, check, children, holds
from analysis.rehearsal import section
from components.cluster import CREATOR_ADMIN, creator_admin_off
from tests.unit.rehearsal_plans import mutate, reg
from tools.mocks import Account, PlanResult, Registration, reveal, run_stack
from tools.policy_check import Finding

CLUSTER = "eks:index:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def rules(plan: PlanResult, level: str | None = None) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in section(plan.records, plan.lookups)[1]:
        if level is None or f.level == level:
            out.setdefault(f.rule, []).append(f)
    return out


def eks_child(r: Registration, typ: str) -> dict[str, Any]:
    (child,) = [c for c in r.children if c["type"] == typ]
    return child


# -- the transform -----------------------------------------------------------------------------


def transformed(typ: str, props: dict[str, Any], ignore: list[str]) -> pulumi.ResourceTransformResult | None:
    args = pulumi.ResourceTransformArgs(
        custom=True, type_=typ, name="c", props=props, opts=pulumi.ResourceOptions(ignore_changes=ignore)
    )
    return creator_admin_off(args)


def test_transform_turns_the_creator_bootstrap_off_and_keeps_it_ignored() -> None:
    props = {
        "name": "c",
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
    }
    result = transformed("aws:eks/cluster:Cluster", props, ["bootstrapSelfManagedAddons"])
    assert result is not None
    assert result.props["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert result.props["name"] == "c"
    # ForceNew in terraform-provider-aws: an existing cluster must keep its value, not be replaced.
    assert result.opts.ignore_changes == ["bootstrapSelfManagedAddons", CREATOR_ADMIN]
    assert transformed("aws:eks/addon:Addon", {"addonName": "kube-proxy"}, []) is None
    with pytest.raises(ValueError, match="accessConfig as an object"):
        transformed("aws:eks/cluster:Cluster", {"name": "c"}, [])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_plan_records_what_the_transform_does_to_the_component_cluster(
    plans: dict[str, PlanResult], stack: str
) -> None:
    eks = plans[stack].one(CLUSTER)
    # What pulumi-eks builds from these inputs (the data) asks EKS for the creator's admin entry ...
    built = children(CLUSTER, eks.name, reveal(eks.raw_inputs))
    (raw,) = [c for c in built if c["type"] == "aws:eks/cluster:Cluster"]
    assert raw["props"]["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True
    # ... and the engine ran the program's transform over it: off, and still ignored on update.
    child = eks_child(eks, "aws:eks/cluster:Cluster")
    assert child["props"]["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert CREATOR_ADMIN in child["ignoreChanges"]
    # Every admin entry is an explicit child the program asked for.
    entries = {
        c["props"]["principalArn"] for c in eks.children if c["type"] == "aws:eks/accessEntry:AccessEntry"
    }
    assert entries == {e["principalArn"] for e in eks.get("accessEntries").values()}
    assert not rules(plans[stack]).get("rehearsal-component-creator-admin")


def test_without_the_transform_the_first_up_collides_with_the_creator_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug reintroduced in the program itself: the whole dev program, run with a no-op transform."""
    monkeypatch.setattr(components.cluster, "creator_admin_off", lambda args: None)
    dev = run_stack("dev")
    (finding,) = rules(dev, "mandatory")["rehearsal-component-creator-admin"]
    assert "ResourceInUseException" in finding.message and "platform-admins" in finding.message


def test_a_saved_plan_without_recorded_children_is_judged_from_the_data(dev: PlanResult) -> None:
    document = {"resources": [r.document() for r in dev.records]}
    records = from_document(document)
    assert next(r for r in records if r.type == CLUSTER).children  # the document carries them
    stripped = [dataclasses.replace(r, children=[]) for r in records]
    found = [f.rule for f in check(build(stripped, dev.lookups))]
    assert found == ["rehearsal-component-creator-admin"]


# -- duplicates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "duplicated"),
    [
        ({"corednsAddonOptions": {"enabled": True}}, "coredns"),
        ({"useDefaultVpcCni": False}, "vpc-cni"),
    ],
)
def test_an_addon_the_component_creates_too_is_a_duplicate(
    dev: PlanResult, change: dict[str, Any], duplicated: str
) -> None:
    def enable(r: Registration) -> Registration:
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, **change}, children=[])

    broken = mutate(dev, enable, lambda r: r.type == CLUSTER)
    (finding,) = rules(broken, "mandatory")["rehearsal-component-duplicate"]
    addon = next(r for r in dev.of_type("aws:eks/addon:Addon") if r.get("addonName") == duplicated)
    assert finding.urn == addon.urn


def test_the_clusters_oidc_provider_created_twice_is_a_duplicate_and_github_s_is_not(dev: PlanResult) -> None:
    assert dev.one(CLUSTER).get("createOidcProvider") is True
    github = [r for r in dev.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")]
    assert all("oidc.eks." not in str(r.get("url")) for r in github)
    twice = reg(
        "cluster-oidc",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        inputs={"url": "https://oidc.eks.eu-west-1.amazonaws.com/id/0123"},
    )
    broken = dataclasses.replace(dev, records=[*dev.records, twice])
    assert [f.urn for f in rules(broken, "mandatory")["rehearsal-component-duplicate"]] == [twice.urn]


@pytest.mark.parametrize(
    ("when", "inputs", "expected"),
    [
        ({"input": "a.b", "equals": True, "default": True}, {}, True),
        ({"input": "a.b", "equals": True, "default": True}, {"a": {"b": False}}, False),
        ({"input": "a", "present": True}, {"a": "API"}, True),
        ({"any": [{"input": "a", "present": True}, {"input": "b", "equals": 1, "default": 1}]}, {}, True),
        ({"all": [{"input": "a", "present": True}, {"input": "b", "equals": 1, "default": 1}]}, {}, False),
    ],
)
def test_conditions(when: dict[str, Any], inputs: dict[str, Any], expected: bool) -> None:
    assert holds(when, inputs) is expected


# -- destroy -> up -> destroy -> up, replayed on the plan --------------------------------------


def control_plane_logs(plan: PlanResult) -> Registration:
    cluster_name = plan.one(CLUSTER).get("name")
    (group,) = [r for r in plan.of_type(LOG_GROUP) if r.get("name") == f"/aws/eks/{cluster_name}/cluster"]
    return group


def test_dev_survives_destroy_up_destroy_up(dev: PlanResult) -> None:
    group = control_plane_logs(dev)
    name = group.get("name")
    assert group.import_id is None and not group.retain_on_delete  # a fresh account: created
    assert "rehearsal-import-updates" not in rules(dev)

    held: dict[str, dict[str, Any]] = {}
    plan = dev
    for generation in (1, 2):
        held = after_destroy(plan.records, held)
        # EKS recreated the group after the cluster went: no retention, no key, no tags.
        assert held[name] == {"retentionInDays": 0, "kmsKeyId": "", "logGroupClass": "STANDARD", "tags": {}}
        plan = run_stack("dev", Account(held, generation))
        adopted = control_plane_logs(plan)
        assert adopted.import_id == name
        found = rules(plan)
        assert "mandatory" not in {f.level for fs in found.values() for f in fs}, found
        (update,) = found["rehearsal-import-updates"]
        assert "kmsKeyId, retentionInDays" in update.message


def test_prod_rebuild_adopts_its_retained_group_under_a_new_key(prod: PlanResult) -> None:
    group = control_plane_logs(prod)
    assert group.retain_on_delete and group.protect
    held = after_destroy(prod.records, {})
    old_key = held[group.get("name")]["kmsKeyId"]
    assert old_key == group.get("kmsKeyId")  # kept as declared
    rebuilt = run_stack("prod", Account(held, 1))
    adopted = control_plane_logs(rebuilt)
    assert adopted.import_id == group.get("name") and adopted.get("kmsKeyId") != old_key
    found = rules(rebuilt)
    assert not [f for fs in found.values() for f in fs if f.level == "mandatory" and f.urn == adopted.urn]
    (update,) = [f for f in found["rehearsal-import-updates"] if f.urn == adopted.urn]
    assert "updates kmsKeyId " in update.message


def test_an_import_whose_inputs_force_a_replacement_is_mandatory(dev: PlanResult) -> None:
    """The kind reintroduced: the program declares what the adopted group cannot become in place."""
    held = after_destroy(dev.records, {})
    rebuilt = run_stack("dev", Account(held, 1))

    def infrequent(r: Registration) -> Registration:
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, "logGroupClass": "INFREQUENT_ACCESS"})

    broken = mutate(rebuilt, infrequent, lambda r: r.urn == control_plane_logs(rebuilt).urn)
    (finding,) = rules(broken, "mandatory")["rehearsal-import-replaces"]
    assert "logGroupClass" in finding.message
    # And an import the plan cannot compare (no recorded lookup of it) is said, not silently passed.
    blind = dataclasses.replace(
        rebuilt, lookups=[c for c in rebuilt.lookups if "getLogGroup:" not in c["token"]]
    )
    assert "cannot say" in rules(blind)["rehearsal-import-updates"][0].message
