"""The monitoring data the Monitoring component loads: alert rules, ServiceMonitors, Grafana
dashboards and the kube-prometheus-stack base values.

Checked offline against the upstream CRD schemas and with a real PromQL parser (promql-parser),
plus the conventions that the runbooks, Alertmanager routing and the "no secret in Helm values"
rule depend on. The negative tests show each check rejects broken input.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml

from tests.schemas import validate_custom_resource
from tools.mocks import ROOT

PLATFORM = ROOT / "platform"
RULES_FILE = PLATFORM / "monitoring" / "rules" / "platform.yaml"
SERVICEMONITOR_FILES = sorted((PLATFORM / "monitoring" / "servicemonitors").glob("*.yaml"))
DASHBOARD_FILES = sorted((PLATFORM / "dashboards").glob("*.json"))
VALUES_FILE = PLATFORM / "values" / "kube-prometheus-stack.yaml"

RUNBOOK_BASE = "https://github.com/example-org/eks-platform/blob/main/docs/runbooks.md#runbook-"
SEVERITIES = {"critical", "warning"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
SYSTEM_NODE_SELECTOR = {"eks-platform.io/node-pool": "system"}
SYSTEM_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}
RECEIVER_SECRET_DIR = "/etc/alertmanager/secrets/alertmanager-receiver/"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


RULE_DOC: dict[str, Any] = load_yaml(RULES_FILE)
ALERTS: list[dict[str, Any]] = [rule for group in RULE_DOC["spec"]["groups"] for rule in group["rules"]]
VALUES: dict[str, Any] = load_yaml(VALUES_FILE)
DASHBOARDS: dict[str, dict[str, Any]] = {path.stem: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def dig(data: dict[str, Any], dotted: str) -> Any:
    """`dig(values, "grafana.admin")`; keys with dots are not supported (none are needed)."""
    node: Any = data
    for key in dotted.split("."):
        node = node[key]
    return node


# ---- helpers under test --------------------------------------------------------------------------


def kebab(name: str) -> str:
    """`ArgoCDAppOutOfSync` -> `argo-cd-app-out-of-sync`: acronyms stay one word."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def check_promql(expr: str) -> promql_parser.Expr:
    """Parse `expr`; promql-parser raises ValueError on bad syntax and on bad argument types."""
    return promql_parser.parse(expr)


GRAFANA_INTERVAL = re.compile(
    r"\$(?:__(?:rate_interval|interval|range)\b|\{__(?:rate_interval|interval|range)\})"
)
GRAFANA_VARIABLE = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+")


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's interval variables with a duration and template variables with a value."""
    return GRAFANA_VARIABLE.sub("placeholder", GRAFANA_INTERVAL.sub("5m", expr))


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(check_promql(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    return {s.name for s in selectors(expr) if s.name}


def rule_problems(rule: dict[str, Any]) -> list[str]:
    """What an alerting rule lacks for the on-call: an empty list means it is complete."""
    name = rule.get("alert", "<no alert name>")
    problems = []
    if not DURATION.match(str(rule.get("for", ""))):
        problems.append(f"{name}: `for` is missing or not a duration")
    if rule.get("labels", {}).get("severity") not in SEVERITIES:
        problems.append(f"{name}: labels.severity must be one of {sorted(SEVERITIES)}")
    annotations = rule.get("annotations", {})
    for key in ("summary", "description"):
        if not str(annotations.get(key, "")).strip():
            problems.append(f"{name}: annotations.{key} is empty")
    if annotations.get("runbook_url") != RUNBOOK_BASE + kebab(name):
        problems.append(f"{name}: annotations.runbook_url must be {RUNBOOK_BASE + kebab(name)}")
    return problems


SECRET_KEY = re.compile(
    r"(pass(word)?|passwd|secret|token|api_?key|api_url|url|routing_key|service_key|credentials?)$", re.I
)
# Keys that name a Secret, a key inside one, or a file path: references, not values.
REFERENCE_KEY = re.compile(r"(_file|existingSecret|Key|secretName)$")
SECRET_LOOKING = re.compile(
    r"hooks\.slack\.com/services|xox[abpr]-|AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY"
)


def secret_findings(node: Any, path: str = "") -> list[str]:
    """Every place in `node` (Helm values) that holds a secret value instead of a reference."""
    findings = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            secret_key = SECRET_KEY.search(str(key)) and not REFERENCE_KEY.search(str(key))
            if isinstance(value, str) and value and secret_key:
                findings.append(f"{here}: literal value for a secret-looking key")
            findings += secret_findings(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            findings += secret_findings(item, f"{path}[{i}]")
    elif isinstance(node, str):
        if SECRET_LOOKING.search(node):
            findings.append(f"{path}: looks like a credential")
        if path.startswith("alertmanager.config.receivers") and re.search(r"https?://", node):
            findings.append(f"{path}: receiver URL in values (read it from a mounted Secret file)")
    return findings


def servicemonitor_jobs() -> dict[str, str]:
    """ServiceMonitor name -> the fixed `job` label its relabeling sets."""
    jobs = {}
    for path in SERVICEMONITOR_FILES:
        monitor = load_yaml(path)
        for endpoint in monitor["spec"]["endpoints"]:
            for relabel in endpoint.get("relabelings", []):
                if relabel.get("targetLabel") == "job":
                    jobs[monitor["metadata"]["name"]] = relabel["replacement"]
    return jobs


# ---- PrometheusRule --------------------------------------------------------------------------------


def test_prometheus_rule_matches_the_crd_schema() -> None:
    validate_custom_resource(RULE_DOC)


def test_prometheus_rule_is_one_named_object_in_monitoring() -> None:
    assert len(list(yaml.safe_load_all(RULES_FILE.read_text()))) == 1
    assert (RULE_DOC["apiVersion"], RULE_DOC["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert RULE_DOC["metadata"]["name"] == "platform-rules"
    assert RULE_DOC["metadata"]["namespace"] == "monitoring"
    assert RULE_DOC["metadata"]["labels"]["eks-platform.io/rules"] == "platform"


def test_rules_are_alerts_with_unique_names() -> None:
    assert all("alert" in rule and "record" not in rule for rule in ALERTS)
    duplicates = [name for name, n in Counter(rule["alert"] for rule in ALERTS).items() if n > 1]
    assert not duplicates
    groups = [group["name"] for group in RULE_DOC["spec"]["groups"]]
    assert len(groups) == len(set(groups))


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_alert_has_for_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert rule_problems(rule) == []


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_alert_expression_is_valid_promql(rule: dict[str, Any]) -> None:
    check_promql(rule["expr"])


def test_alerts_cover_what_the_platform_must_watch() -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in ALERTS))
    required = {
        "kube_node_status_condition",  # nodes not ready
        "karpenter_cloudprovider_errors_total",  # Karpenter cannot launch
        "kube_pod_status_unschedulable",
        "karpenter_interruption_message_queue_duration_seconds_bucket",  # interruption backlog
        "karpenter_interruption_received_messages_total",
        "argocd_app_info",  # out of sync, degraded
        "kubelet_volume_stats_available_bytes",  # PVs filling up
        "kubelet_volume_stats_capacity_bytes",
        "kube_horizontalpodautoscaler_status_current_replicas",  # HPA at max
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "externalsecret_status_condition",  # External Secrets sync errors
        "up",  # the meta alert
    }
    assert required <= used, f"no alert uses {sorted(required - used)}"
    assert {rule["labels"]["severity"] for rule in ALERTS} == SEVERITIES


def test_platform_alert_names_do_not_repeat_the_charts_disabled_ones() -> None:
    ours = {rule["alert"] for rule in ALERTS}
    replaced = set(VALUES["defaultRules"]["disabled"])
    assert replaced == {"KubeNodeNotReady", "KubeHpaMaxedOut", "KubePersistentVolumeFillingUp"}
    assert all(VALUES["defaultRules"]["disabled"].values())
    assert not ours & replaced


def test_meta_alert_watches_exactly_the_jobs_the_servicemonitors_create() -> None:
    rule = next(rule for rule in ALERTS if rule["alert"] == "PlatformScrapeTargetDown")
    regex_jobs: set[str] = set()
    absent_jobs: set[str] = set()
    for selector in selectors(rule["expr"]):
        assert selector.name == "up"
        for matcher in selector.matchers.matchers:
            if matcher.name != "job":
                continue
            if matcher.op == promql_parser.MatchOp.Re:
                regex_jobs |= set(matcher.value.split("|"))
            elif matcher.op == promql_parser.MatchOp.Equal:
                absent_jobs.add(matcher.value)
    jobs = set(servicemonitor_jobs().values())
    assert len(jobs) == len(SERVICEMONITOR_FILES), "every ServiceMonitor sets its own job"
    assert regex_jobs == jobs
    assert absent_jobs == jobs


# ---- ServiceMonitors -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SERVICEMONITOR_FILES, ids=[p.stem for p in SERVICEMONITOR_FILES])
def test_servicemonitor_matches_the_crd_schema(path: Path) -> None:
    documents = list(yaml.safe_load_all(path.read_text()))
    assert len(documents) == 1, "one ServiceMonitor per file"
    validate_custom_resource(documents[0])


@pytest.mark.parametrize("path", SERVICEMONITOR_FILES, ids=[p.stem for p in SERVICEMONITOR_FILES])
def test_servicemonitor_lives_in_monitoring_and_selects_one_namespace(path: Path) -> None:
    monitor = load_yaml(path)
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    assert monitor["metadata"]["name"] == path.stem
    assert monitor["metadata"]["namespace"] == "monitoring"
    spec = monitor["spec"]
    assert len(spec["namespaceSelector"]["matchNames"]) == 1
    assert spec["selector"]["matchLabels"]
    assert all(endpoint["port"] and endpoint["honorLabels"] is True for endpoint in spec["endpoints"])


EXPECTED_MONITORS = {
    # name: (namespace, port, a label the selector must require)
    "karpenter": ("kube-system", "http-metrics", ("app.kubernetes.io/name", "karpenter")),
    "argocd-application-controller": (
        "argocd",
        "http-metrics",
        ("app.kubernetes.io/component", "application-controller"),
    ),
    "argocd-server": ("argocd", "http-metrics", ("app.kubernetes.io/component", "server")),
    "argocd-repo-server": ("argocd", "http-metrics", ("app.kubernetes.io/component", "repo-server")),
    "external-secrets": ("external-secrets", "metrics", ("app.kubernetes.io/name", "external-secrets")),
}


def test_servicemonitors_cover_karpenter_argocd_and_external_secrets() -> None:
    monitors = {path.stem: load_yaml(path) for path in SERVICEMONITOR_FILES}
    assert set(monitors) == set(EXPECTED_MONITORS)
    for name, (namespace, port, (label, value)) in EXPECTED_MONITORS.items():
        spec = monitors[name]["spec"]
        assert spec["namespaceSelector"]["matchNames"] == [namespace], name
        assert [endpoint["port"] for endpoint in spec["endpoints"]] == [port], name
        assert spec["selector"]["matchLabels"][label] == value, name
    assert servicemonitor_jobs() == {name: name for name in EXPECTED_MONITORS}


# ---- Grafana dashboards ----------------------------------------------------------------------------


def dashboard_queries() -> list[tuple[str, str]]:
    """(test id, PromQL) for every panel target and every query variable of every dashboard."""
    queries = []
    for stem, dashboard in DASHBOARDS.items():
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                queries.append((f"{stem}:{panel['title']}:{target['refId']}", target["expr"]))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["definition"])
                assert inner, f"{stem}: variable {variable['name']} is not label_values(<selector>, <label>)"
                queries.append((f"{stem}:${variable['name']}", inner.group(1)))
    return queries


QUERIES = dashboard_queries()


def test_the_four_dashboards_exist_with_unique_uids_and_titles() -> None:
    assert set(DASHBOARDS) == {"cluster", "nodes", "karpenter", "argocd"}
    uids = [dashboard["uid"] for dashboard in DASHBOARDS.values()]
    titles = [dashboard["title"] for dashboard in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids) and all(uids)
    assert len(set(titles)) == len(titles) and all(titles)


@pytest.mark.parametrize("stem", sorted(DASHBOARDS))
def test_dashboard_is_complete_and_uses_the_datasource_variable(stem: str) -> None:
    dashboard = DASHBOARDS[stem]
    assert isinstance(dashboard["schemaVersion"], int)
    assert isinstance(dashboard["uid"], str) and len(dashboard["uid"]) <= 40  # Grafana's uid limit
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert 4 <= len(panels) <= 8
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]
        used = set(re.findall(r"\$\{?(\w+)", " ".join(t["expr"] for t in panel["targets"])))
        assert used - {"__rate_interval", "__interval", "__range"} <= set(variables), panel["title"]


@pytest.mark.parametrize(("query_id", "expr"), QUERIES, ids=[query_id for query_id, _ in QUERIES])
def test_dashboard_query_is_valid_promql(query_id: str, expr: str) -> None:
    check_promql(grafana_to_promql(expr))


@pytest.mark.parametrize(
    ("grafana", "promql"),
    [
        ('rate(x{node=~"$node"}[$__rate_interval])', 'rate(x{node=~"placeholder"}[5m])'),
        ('sum(y{project=~"${project}"}) offset ${__interval}', 'sum(y{project=~"placeholder"}) offset 5m'),
        ('z{a=~"${node:regex}"}[$__range]', 'z{a=~"placeholder"}[5m]'),
    ],
)
def test_grafana_variables_are_substituted(grafana: str, promql: str) -> None:
    assert grafana_to_promql(grafana) == promql


# ---- kube-prometheus-stack values ------------------------------------------------------------------


def test_prometheus_selects_every_monitor_probe_and_rule_in_the_cluster() -> None:
    spec = VALUES["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False, kind
        assert spec.get(f"{kind}Selector", {}) == {}, kind
        assert spec.get(f"{kind}NamespaceSelector", {}) == {}, kind


def test_the_base_values_decide_no_storage() -> None:
    """Where the data lives is the component's choice per stack (claims in prod, emptyDir in dev):
    a claim in the base values would merge into dev's emptyDir and come back."""
    assert "storageSpec" not in VALUES["prometheus"]["prometheusSpec"]
    assert "storage" not in VALUES["alertmanager"]["alertmanagerSpec"]
    assert "enabled" not in VALUES["grafana"]["persistence"]


def test_grafana_admin_from_a_secret_pvc_persistence_and_dashboard_sidecar() -> None:
    grafana = VALUES["grafana"]
    assert grafana["admin"] == {
        "existingSecret": "grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    assert "adminPassword" not in grafana and "adminUser" not in grafana
    assert grafana["persistence"]["type"] == "pvc"
    dashboards = grafana["sidecar"]["dashboards"]
    assert dashboards["enabled"] is True
    assert dashboards["label"] == "grafana_dashboard"
    assert dashboards["searchNamespace"] == "ALL"


RESOURCED = [
    "prometheus.prometheusSpec",
    "alertmanager.alertmanagerSpec",
    "grafana",
    "grafana.sidecar",
    "prometheusOperator",
    "prometheusOperator.admissionWebhooks.patch",
    "kube-state-metrics",
    "prometheus-node-exporter",
]


@pytest.mark.parametrize("part", RESOURCED)
def test_every_part_requests_cpu_and_memory_and_caps_memory(part: str) -> None:
    resources = dig(VALUES, part)["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


ON_SYSTEM_NODES = [
    "prometheusOperator",
    "prometheusOperator.admissionWebhooks.patch",
    "kube-state-metrics",
    "grafana",
    "alertmanager.alertmanagerSpec",
]


@pytest.mark.parametrize("part", ON_SYSTEM_NODES)
def test_platform_parts_run_on_the_system_nodes(part: str) -> None:
    settings = dig(VALUES, part)
    assert settings["nodeSelector"] == SYSTEM_NODE_SELECTOR
    assert SYSTEM_TOLERATION in settings["tolerations"]


def test_node_exporter_tolerates_every_taint() -> None:
    assert VALUES["prometheus-node-exporter"]["tolerations"] == [{"operator": "Exists"}]


def test_admission_webhook_certificates_come_from_the_charts_hook_jobs() -> None:
    webhooks = VALUES["prometheusOperator"]["admissionWebhooks"]
    assert webhooks["patch"]["enabled"] is True
    assert "certManager" not in webhooks


def test_unreachable_eks_control_plane_targets_and_their_rules_are_off() -> None:
    for component in ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy"):
        assert VALUES[component]["enabled"] is False, component
    rules = VALUES["defaultRules"]["rules"]
    groups = ("etcd", "kubeControllerManager", "kubeSchedulerAlerting", "kubeSchedulerRecording", "kubeProxy")
    for group in groups:
        assert rules[group] is False, group


def route_receivers(route: dict[str, Any]) -> list[str]:
    found = [route["receiver"]] if "receiver" in route else []
    for child in route.get("routes", []):
        found += route_receivers(child)
    return found


def test_alertmanager_routes_group_inhibit_and_silence_the_watchdog() -> None:
    config = VALUES["alertmanager"]["config"]
    names = [receiver["name"] for receiver in config["receivers"]]
    assert all(isinstance(name, str) for name in names), "quote `null`: YAML reads it as None"
    assert len(names) == len(set(names))
    assert set(route_receivers(config["route"])) <= set(names)
    assert {"alertname", "namespace"} <= set(config["route"]["group_by"])
    watchdog = [r for r in config["route"]["routes"] if r.get("matchers") == ['alertname = "Watchdog"']]
    assert [route["receiver"] for route in watchdog] == ["null"]
    assert {
        "source_matchers": ['severity = "critical"'],
        "target_matchers": ['severity =~ "warning|info"'],
        "equal": ["alertname", "namespace"],
    } in config["inhibit_rules"]


def test_alertmanager_receivers_read_their_urls_from_the_mounted_secret() -> None:
    assert "alertmanager-receiver" in VALUES["alertmanager"]["alertmanagerSpec"]["secrets"]
    for receiver in VALUES["alertmanager"]["config"]["receivers"]:
        integrations = [
            integration
            for key, configs in receiver.items()
            if key.endswith("_configs")
            for integration in configs
        ]
        if receiver["name"] == "null":
            assert not integrations
            continue
        assert integrations, receiver["name"]
        for integration in integrations:
            files = {key: value for key, value in integration.items() if key.endswith("_file")}
            assert files, f"{receiver['name']}: the URL must come from a *_file field"
            assert all(value.startswith(RECEIVER_SECRET_DIR) for value in files.values())


def test_values_hold_no_secret() -> None:
    assert secret_findings(VALUES) == []


# ---- the checks catch broken input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        'max by (node) (kube_node_status_condition{condition="Ready"} == 0',  # unclosed parenthesis
        "rate(karpenter_cloudprovider_errors_total)",  # rate() of an instant vector
        "sum by (job) up == 0",  # aggregation without parentheses
        'kube_node_labels{label_eks_platform_io_node_pool="system"',  # unclosed braces
        'absent(up{job="karpenter"}) or',  # dangling operator
        "rate(x[5 minutes])",  # not a duration
        "histogram_quantil(0.99, x)",  # unknown function
        grafana_to_promql("sum(rate(x[$__rate_interval])"),  # a broken dashboard query
    ],
)
def test_promql_check_rejects_broken_expressions(expr: str) -> None:
    with pytest.raises(ValueError):
        check_promql(expr)


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value


BROKEN_RULES: dict[str, Callable[[dict[str, Any]], None]] = {
    "for-in-words": lambda doc: set_path(doc, "spec.groups.0.rules.0.for", "ten minutes"),
    "no-expr": lambda doc: doc["spec"]["groups"][0]["rules"][0].pop("expr"),
    "severity-not-a-string": lambda doc: set_path(doc, "spec.groups.0.rules.0.labels.severity", 1),
    "unnamed-group": lambda doc: doc["spec"]["groups"][0].pop("name"),
    "rules-not-a-list": lambda doc: set_path(doc, "spec.groups.0.rules", {"alert": "X"}),
}


@pytest.mark.parametrize("breakage", BROKEN_RULES)
def test_schema_check_rejects_a_broken_rule(breakage: str) -> None:
    broken = copy.deepcopy(RULE_DOC)
    BROKEN_RULES[breakage](broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(broken)


BROKEN_MONITORS: dict[str, Callable[[dict[str, Any]], None]] = {
    "port-number-not-name": lambda doc: set_path(doc, "spec.endpoints.0.port", 8080),
    "no-selector": lambda doc: doc["spec"].pop("selector"),
    "typo-in-namespace-selector": lambda doc: set_path(doc, "spec.namespaceSelector.matchName", ["argocd"]),
}


@pytest.mark.parametrize("breakage", BROKEN_MONITORS)
def test_schema_check_rejects_a_broken_servicemonitor(breakage: str) -> None:
    broken = load_yaml(SERVICEMONITOR_FILES[0])
    BROKEN_MONITORS[breakage](broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(broken)


INCOMPLETE_RULES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no-for": (lambda rule: rule.pop("for"), "`for`"),
    "empty-for": (lambda rule: rule.update({"for": ""}), "`for`"),
    "paging-severity": (lambda rule: rule["labels"].update({"severity": "page"}), "severity"),
    "no-summary": (lambda rule: rule["annotations"].pop("summary"), "summary"),
    "blank-description": (lambda rule: rule["annotations"].update({"description": " "}), "description"),
    "no-runbook": (lambda rule: rule["annotations"].pop("runbook_url"), "runbook_url"),
    "runbook-wrong-anchor": (
        lambda rule: rule["annotations"].update({"runbook_url": RUNBOOK_BASE + "nodes"}),
        "runbook_url",
    ),
}


@pytest.mark.parametrize("breakage", INCOMPLETE_RULES)
def test_completeness_check_reports_an_incomplete_rule(breakage: str) -> None:
    rule = copy.deepcopy(ALERTS[0])
    mutate, problem = INCOMPLETE_RULES[breakage]
    mutate(rule)
    problems = rule_problems(rule)
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize(
    ("alert", "anchor"),
    [
        ("PlatformNodeNotReady", "platform-node-not-ready"),
        ("ArgoCDAppOutOfSync", "argo-cd-app-out-of-sync"),
        ("PlatformHPAAtMaxReplicas", "platform-hpa-at-max-replicas"),
        ("KarpenterNodePoolNearLimit", "karpenter-node-pool-near-limit"),
    ],
)
def test_runbook_anchor_is_the_alert_name_in_kebab_case(alert: str, anchor: str) -> None:
    assert kebab(alert) == anchor


LEAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "slack-url-in-receiver": lambda values: set_path(
        values,
        "alertmanager.config.receivers.1.slack_configs.0.api_url",
        "https://hooks.slack.com/services/T000/B000/XXXX",
    ),
    "webhook-url-in-receiver": lambda values: set_path(
        values, "alertmanager.config.receivers.2.webhook_configs.0.url", "https://alerts.example.com/hook"
    ),
    "grafana-admin-password": lambda values: set_path(values, "grafana.adminPassword", "prom-operator"),
    "remote-write-token": lambda values: set_path(
        values, "prometheus.prometheusSpec.remoteWrite", [{"bearerToken": "abc123"}]
    ),
    "aws-key-anywhere": lambda values: set_path(
        values, "prometheus.prometheusSpec.externalLabels", {"note": "AKIAABCDEFGHIJKLMNOP"}
    ),
}


@pytest.mark.parametrize("leak", LEAKS)
def test_secret_scan_catches_a_secret_in_values(leak: str) -> None:
    leaky = copy.deepcopy(VALUES)
    LEAKS[leak](leaky)
    assert secret_findings(leaky)
