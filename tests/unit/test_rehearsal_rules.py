"""The rehearsal's prerequisite rules: each fires on a bad synthetic plan and stays quiet on a good one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from analysis import prerequisites as p
from analysis.graph import Graph, build
from model.findings import Finding
from model.records import Registration
from policy.model import Level
from tests.unit.rehearsal_plans import K8S, reg

CLUSTER = reg("cluster", "eks:index:Cluster", custom=False)
PROVIDER = reg("k8s", "pulumi:providers:kubernetes", CLUSTER.urn)
MNG = reg("mng", "eks:index:ManagedNodeGroup", CLUSTER.urn, custom=False)
RELEASE = "kubernetes:helm.sh/v3:Release"


def release(
    name: str, chart: str, *deps: str, namespace: str = "kube-system", values: dict[str, Any] | None = None
) -> Registration:
    return reg(
        name,
        RELEASE,
        *deps,
        inputs={"name": name, "chart": chart, "namespace": namespace, "values": values or {}},
        provider=K8S,
    )


def fired(rule: Callable[[Graph], Iterator[Finding]], *records: Registration) -> list[str]:
    findings = list(rule(build([CLUSTER, PROVIDER, MNG, *records])))
    assert all(f.level is Level.MANDATORY and f.rule.startswith("rehearsal-") for f in findings)
    return sorted(f.urn.rsplit("::", 1)[-1] for f in findings if f.urn)


def test_cluster_scoped_resources_wait_for_the_cluster() -> None:
    role = reg("role", "aws:iam/role:Role")
    plain = reg("plain", "aws:eks/accessEntry:AccessEntry", role.urn, inputs={"clusterName": "c"})
    ordered = reg("ordered", "aws:eks/podIdentityAssociation:PodIdentityAssociation", role.urn, CLUSTER.urn)
    through = reg("through", "aws:eks/addon:Addon", MNG.urn)  # transitively, through the node group
    assert fired(p.cluster_order, role, plain, ordered, through) == ["plain"]


def test_custom_resources_wait_for_their_crds() -> None:
    crds = release("karpenter-crd", "oci://public.ecr.aws/karpenter/karpenter-crd")
    good = reg("good", "kubernetes:karpenter.sh/v1:NodePool", crds.urn, provider=K8S)
    bad = reg("bad", "kubernetes:karpenter.sh/v1:NodePool", provider=K8S)
    group = reg(
        "group",
        "kubernetes:yaml/v2:ConfigGroup",
        inputs={"objs": [{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor"}]},
    )
    core = reg("ns", "kubernetes:core/v1:Namespace", provider=K8S)
    assert fired(p.crd_order, crds, good, bad, group, core) == ["bad", "group"]


def test_controllers_outlive_the_objects_they_finalize() -> None:
    crds = release("karpenter-crd", "karpenter-crd")
    controller = release("karpenter", "oci://public.ecr.aws/karpenter/karpenter", crds.urn)
    argocd = release("argocd", "argo-cd", namespace="argocd")
    kept = reg("kept", "kubernetes:karpenter.sh/v1:NodePool", controller.urn)
    orphaned = reg("orphaned", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", crds.urn)
    finalized = reg(
        "finalized",
        "kubernetes:argoproj.io/v1alpha1:Application",
        inputs={"metadata": {"finalizers": ["resources-finalizer.argocd.argoproj.io"]}},
    )
    plain = reg("plain", "kubernetes:argoproj.io/v1alpha1:AppProject", inputs={"metadata": {"name": "x"}})
    records = (crds, controller, argocd, kept, orphaned, finalized, plain)
    assert fired(p.controller_on_delete, *records) == ["finalized", "orphaned"]


def test_workloads_wait_for_nodes() -> None:
    records = (
        release("on-nodes", "metrics-server", MNG.urn),
        release("no-nodes", "metrics-server"),
        release("crds-only", "prometheus-operator-crds"),
        reg("coredns", "aws:eks/addon:Addon", CLUSTER.urn, inputs={"addonName": "coredns"}),
        reg("cni", "aws:eks/addon:Addon", CLUSTER.urn, inputs={"addonName": "vpc-cni"}),
    )
    assert fired(p.nodes_first, *records) == ["coredns", "no-nodes"]


@pytest.mark.parametrize(
    ("wiring", "fires"),
    [("direct", True), ("none", True), ("settled", False), ("unrelated-sleep", True)],
)
def test_pod_identity_users_start_after_the_association_settles(wiring: str, fires: bool) -> None:
    assoc = reg(
        "assoc",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        CLUSTER.urn,
        inputs={"namespace": "kube-system", "serviceAccount": "karpenter"},
    )
    sleep_deps = [assoc.urn] if wiring == "settled" else []
    sleep = reg("settle", "time:index/sleep:Sleep", *sleep_deps, inputs={"createDuration": "30s"})
    deps = {
        "direct": [assoc.urn],
        "none": [],
        "settled": [sleep.urn],
        "unrelated-sleep": [assoc.urn, sleep.urn],
    }
    user = release("karpenter", "karpenter", MNG.urn, *deps[wiring])
    other = release("metrics-server", "metrics-server", MNG.urn)  # same namespace, other account
    assert fired(p.pod_identity_settle, assoc, sleep, user, other) == (["karpenter"] if fires else [])


def test_volume_users_sit_between_the_csi_driver_and_their_storage_class() -> None:
    csi = reg("csi", "aws:eks/addon:Addon", MNG.urn, inputs={"addonName": "aws-ebs-csi-driver"})
    sc = reg(
        "gp3",
        "kubernetes:yaml/v2:ConfigGroup",
        csi.urn,
        inputs={"objs": [{"kind": "StorageClass", "provisioner": "ebs.csi.aws.com"}]},
    )
    claim: dict[str, Any] = {
        "prometheus": {"prometheusSpec": {"storageSpec": {"volumeClaimTemplate": {"spec": {}}}}}
    }
    records = (
        csi,
        sc,
        release("ordered", "kube-prometheus-stack", sc.urn, values=claim),
        release("csi-only", "kube-prometheus-stack", csi.urn, values=claim),
        release("unordered", "kube-prometheus-stack", MNG.urn, values=claim),
        release("no-volumes", "kube-prometheus-stack", MNG.urn),
        release("redis-ha", "argo-cd", MNG.urn, values={"redis-ha": {"enabled": True}}),
        release(
            "redis-ha-ephemeral",
            "argo-cd",
            MNG.urn,
            values={"redis-ha": {"enabled": True, "persistentVolume": {"enabled": False}}},
        ),
    )
    assert fired(p.volumes, *records) == ["csi-only", "redis-ha", "unordered"]


def retained(r: Registration) -> Registration:
    return dataclasses.replace(r, retain_on_delete=True, protect=True)


def test_names_that_outlive_a_destroy() -> None:
    """A fixed name a destroy leaves taken (retained, recreated by EKS, or a secret's recovery window)
    is a finding unless the program looks it up; `protect` saves nothing (a retire lifts it)."""
    secret = "aws:secretsmanager/secret:Secret"
    log = "aws:cloudwatch/logGroup:LogGroup"
    records = (
        reg("fixed", secret, inputs={"name": "p/grafana", "recoveryWindowInDays": 7}),
        reg("default-window", secret, inputs={"name": "p/x"}),
        reg("forced", secret, inputs={"name": "p/y", "recoveryWindowInDays": 0}),
        reg("prefixed", secret, inputs={"namePrefix": "p/z"}),
        reg("protected", secret, inputs={"name": "p/w", "recoveryWindowInDays": 30}, protect=True),
        retained(reg("kept-secret", secret, inputs={"name": "p/kept", "recoveryWindowInDays": 30})),
        reg("eks-logs", log, inputs={"name": "/aws/eks/c/cluster"}),
        reg("eks-logs-kept", log, inputs={"name": "/aws/eks/c/cluster"}, protect=True),
        reg("vpc-logs", log, inputs={"name": "/aws/vpc/flow"}),
        retained(reg("vpc-logs-kept", log, inputs={"name": "/aws/vpc/kept"})),
        retained(reg("repo-kept", "aws:ecr/repository:Repository", inputs={"name": "p/svc"})),
        retained(reg("alias-kept", "aws:kms/alias:Alias", inputs={"name": "alias/p"})),
        retained(reg("key-kept", "aws:kms/key:Key", inputs={"description": "no name: a new key each time"})),
    )
    assert fired(p.reserved_names, *records) == sorted(
        [
            "alias-kept",
            "default-window",
            "eks-logs",
            "eks-logs-kept",
            "fixed",
            "kept-secret",
            "protected",
            "repo-kept",
            "vpc-logs-kept",
        ]
    )


def test_a_name_the_program_looks_up_and_imports_is_adopted() -> None:
    log = "aws:cloudwatch/logGroup:LogGroup"
    kept = retained(reg("vpc-logs-kept", log, inputs={"name": "/aws/vpc/kept"}))
    repo = retained(reg("repo-kept", "aws:ecr/repository:Repository", inputs={"name": "p/svc"}))
    secret = retained(reg("kept-secret", "aws:secretsmanager/secret:Secret", inputs={"name": "p/kept"}))

    def lookups(taken: bool) -> list[dict[str, Any]]:
        return [
            {
                "token": "aws:cloudwatch/getLogGroups:getLogGroups",
                "args": {"logGroupNamePrefix": "/aws/vpc/kept"},
                "result": {"logGroupNames": ["/aws/vpc/kept"] if taken else []},
            },
            {
                "token": "aws:ecr/getRepositories:getRepositories",
                "args": {},
                "result": {"names": ["p/other", "p/svc"] if taken else ["p/other"]},
            },
            {
                "token": "aws:secretsmanager/getSecrets:getSecrets",
                "args": {"filters": [{"name": "name", "values": ["p/kept"]}]},
                "result": {"names": ["p/kept"] if taken else []},
            },
        ]

    def run(*records: Registration, taken: bool) -> list[str]:
        graph = build([CLUSTER, PROVIDER, MNG, *records], lookups(taken))
        return sorted(f.urn.rsplit("::", 1)[-1] for f in p.reserved_names(graph) if f.urn)

    assert run(kept, repo, secret, taken=False) == []  # a fresh account: looked up, created
    # Taken: imported is adopted; found but not imported fails on the name.
    imported = [dataclasses.replace(r, import_id=r.get("name")) for r in (kept, repo, secret)]
    assert run(*imported, taken=True) == []
    assert run(kept, repo, secret, taken=True) == ["kept-secret", "repo-kept", "vpc-logs-kept"]
    # A lookup of another name adopts nothing.
    other = dataclasses.replace(secret, raw_inputs={"name": "p/kept-too"})
    assert run(other, taken=False) == ["kept-secret"]


def test_every_rule_cites_its_source() -> None:
    for rule in p.RULES:
        doc = rule.__doc__ or ""
        assert "github.com" in doc or "docs.aws.amazon.com" in doc or "@" in doc, rule.__name__
