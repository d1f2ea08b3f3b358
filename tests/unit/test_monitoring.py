"""The Monitoring component for both stacks under mocks: HA, retention, secrets, rules; bad config."""

from __future__ import annotations

import json

import pytest

from model.records import PlanResult
from stacks.config import PROJECT, validate
from tests.configcheck import assert_section_rejected
from tests.schemas import validate_custom_resource
from tests.stackinfo import is_production
from tools.mocks import run_program, stack_config


def stack_release(plan: PlanResult):
    (found,) = [
        r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.get("name") == "kube-prometheus-stack"
    ]
    return found


def crd_release(plan: PlanResult):
    (found,) = [
        r
        for r in plan.of_type("kubernetes:helm.sh/v3:Release")
        if r.get("name") == "prometheus-operator-crds"
    ]
    return found


def test_ha_counts_per_stack(plans: dict[str, PlanResult]) -> None:
    for stack, (prom, am) in (("dev", (1, 1)), ("prod", (2, 3))):
        values = stack_release(plans[stack]).get("values")
        assert values["prometheus"]["prometheusSpec"]["replicas"] == prom
        assert values["alertmanager"]["alertmanagerSpec"]["replicas"] == am
        assert values["prometheus"]["podDisruptionBudget"]["enabled"] is is_production(stack)
        assert values["alertmanager"]["podDisruptionBudget"]["enabled"] is is_production(stack)
        spread = "topologySpreadConstraints" in values["prometheus"]["prometheusSpec"]
        assert spread is is_production(stack)


def test_retention_and_storage_come_from_config(plan: PlanResult, configs) -> None:
    monitoring = configs[plan.stack].monitoring
    spec = stack_release(plan).get("values")["prometheus"]["prometheusSpec"]
    assert spec["retention"] == monitoring.retention
    assert spec["retentionSize"] == monitoring.retention_size
    size = f"{monitoring.storage_gib}Gi"
    if is_production(plan.stack):
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert claim["resources"]["requests"]["storage"] == size
        assert claim["storageClassName"] == "gp3-encrypted"  # encrypted, retained
    else:
        assert spec["storageSpec"] == {"emptyDir": {"sizeLimit": size}}
        # Scheduled (and a node launched) only where the disk has room for it.
        assert spec["resources"]["requests"]["ephemeral-storage"] == size


def test_prod_keeps_every_monitoring_claim_and_dev_has_none(plans: dict[str, PlanResult]) -> None:
    """Dev claims no volume (a destroy does not await a deleted claim's volume); prod keeps its
    claims when their StatefulSets go, on a class that retains the volumes."""
    for stack, persistent in (("dev", False), ("prod", True)):
        values = stack_release(plans[stack]).get("values")
        prometheus = values["prometheus"]["prometheusSpec"]
        alertmanager = values["alertmanager"]["alertmanagerSpec"]
        claims = [
            "volumeClaimTemplate" in prometheus["storageSpec"],
            "volumeClaimTemplate" in alertmanager["storage"],
            values["grafana"]["persistence"]["enabled"],
        ]
        assert claims == [persistent] * 3, stack
        if persistent:
            claim = alertmanager["storage"]["volumeClaimTemplate"]["spec"]
            assert claim["storageClassName"] == "gp3-encrypted"
            assert values["grafana"]["persistence"]["storageClassName"] == "gp3-encrypted"
            for spec in (prometheus, alertmanager):
                assert spec["persistentVolumeClaimRetentionPolicy"] == {
                    "whenDeleted": "Retain",
                    "whenScaled": "Retain",
                }
        else:
            assert alertmanager["storage"] == {"emptyDir": {"sizeLimit": "2Gi"}}


def test_prometheus_scrapes_every_monitor_in_the_cluster(plan: PlanResult) -> None:
    spec = stack_release(plan).get("values")["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec[f"{kind}Selector"] == {} and spec[f"{kind}NamespaceSelector"] == {}


def test_grafana_admin_comes_from_a_secret(plan: PlanResult) -> None:
    grafana = stack_release(plan).get("values")["grafana"]
    assert grafana["admin"] == {
        "existingSecret": "grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    assert "adminPassword" not in grafana
    text = json.dumps(stack_release(plan).inputs["values"])
    assert "[secret]" not in text  # no secret anywhere in the values: all of them stay reviewable


def test_without_a_receiver_alerts_go_nowhere_and_mount_nothing(dev: PlanResult) -> None:
    alertmanager = stack_release(dev).get("values")["alertmanager"]
    assert alertmanager["config"]["route"]["receiver"] == "null"
    assert alertmanager["alertmanagerSpec"]["secrets"] == []


def test_with_a_receiver_alertmanager_reads_it_from_the_secret() -> None:
    raw, keys = stack_config("dev")
    raw[f"{PROJECT}:alertReceiverUrl"] = "https://hooks.slack.com/services/T0/B0/x"
    result = run_program("dev", raw, secret_keys=[*keys, f"{PROJECT}:alertReceiverUrl"])
    (release,) = [
        r for r in result.of_type("kubernetes:helm.sh/v3:Release") if r.get("name") == "kube-prometheus-stack"
    ]
    alertmanager = release.get("values")["alertmanager"]
    assert alertmanager["config"]["route"]["receiver"] == "slack"
    assert alertmanager["alertmanagerSpec"]["secrets"] == ["alertmanager-receiver"]
    (slack,) = [r for r in alertmanager["config"]["receivers"] if r["name"] == "slack"]
    assert slack["slack_configs"][0]["api_url_file"].endswith("alertmanager-receiver/slack-api-url")
    assert "hooks.slack.com" not in json.dumps(release.inputs)


def test_crds_are_their_own_protected_release(plans: dict[str, PlanResult]) -> None:
    for stack in ("dev", "prod"):
        crds, main = crd_release(plans[stack]), stack_release(plans[stack])
        assert crds.protect is is_production(stack)
        assert main.get("skipCrds") is True and crds.urn in main.dependencies
        assert main.get("values")["crds"]["enabled"] is False


def test_rules_and_monitors_validate_and_wait_for_the_crds(plan: PlanResult) -> None:
    objects = plan.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule") + plan.of_type(
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
    )
    jobs = {r.get("metadata")["name"] for r in objects}
    assert {"platform-rules", "karpenter", "external-secrets"} <= jobs
    for record in objects:
        validate_custom_resource({k: record.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})
        assert crd_release(plan).urn in record.dependencies


def test_dashboards_load_through_the_sidecar(plan: PlanResult) -> None:
    group = next(r for r in plan.of_type("kubernetes:yaml/v2:ConfigGroup") if r.name.endswith("dashboards"))
    maps = group.get("objs")
    assert {m["metadata"]["name"] for m in maps} == {
        "dashboard-argocd",
        "dashboard-cluster",
        "dashboard-karpenter",
        "dashboard-nodes",
    }
    for config_map in maps:
        assert config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
        (text,) = config_map["data"].values()
        assert json.loads(text)["uid"]


BAD = [
    ("retention-unit", {"retention": "15 days"}, "monitoring.retention", "Prometheus duration"),
    ("retention-months", {"retention": "2mo"}, "monitoring.retention", "Prometheus duration"),
    ("storage-small", {"storageGiB": 10}, "monitoring.storageGiB", "at least 20 GiB"),
    ("receiver-kind", {"receiver": "pagerduty"}, "monitoring.receiver", "'slack' or 'webhook'"),
    ("typo", {"retentoin": "15d"}, "monitoring.retentoin", "unknown key"),
]


@pytest.mark.parametrize(("monitoring", "key", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_monitoring_config_is_rejected(monitoring, key, message) -> None:
    assert_section_rejected("prod", "monitoring", monitoring, key, message)


def test_dev_prometheus_must_fit_its_nodes_disk_and_prod_need_not() -> None:
    """Outside production Prometheus' data is an emptyDir on its Karpenter node's disk."""
    assert_section_rejected("dev", "monitoring", {"storageGiB": 51}, "monitoring.storageGiB", r"half of")
    raw, _ = stack_config("dev")
    raw[f"{PROJECT}:monitoring"] = json.dumps({"storageGiB": 80})
    raw[f"{PROJECT}:karpenter"] = json.dumps({**json.loads(raw[f"{PROJECT}:karpenter"]), "nodeDiskGiB": 160})
    validate(raw, PROJECT, "dev", "Pulumi.dev.yaml")
    raw, _ = stack_config("prod")
    raw[f"{PROJECT}:monitoring"] = json.dumps({"storageGiB": 500})
    validate(raw, PROJECT, "prod", "Pulumi.prod.yaml")
