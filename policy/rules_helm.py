"""Helm-installed add-ons: pinned charts, no secrets in values, HA, PDBs, requests, placement.

The workload-level rules read each chart's values through policy/helm_profiles.py. Secrets: the
offline engine shows a secret as "[secret]", which `helm-no-secret-values` catches anywhere in the
values; CrossGuard hands policies plaintext, so under `pulumi preview` only its literal-credential
key check (password, token, apiKey...) applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy.helm_profiles import SYSTEM_NODE_LABEL, chart_name, workloads
from policy.model import Context, Level, RuleSet, Source, bpg, checkov, cis
from policy.props import MASKED, dotted, get, is_map, walk
from policy.resource_types import HELM

rules = RuleSet()
M, A = Level.MANDATORY, Level.ADVISORY
SEMVER = re.compile(r"v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?")
# Values keys that hold a credential when given a literal (case-insensitive).
SECRET_KEYS = frozenset(
    {
        "password",
        "adminpassword",
        "argocdserveradminpassword",
        "token",
        "apitoken",
        "apikey",
        "api_key",
        "api_url",
        "slack_api_url",
        "webhook_url",
        "secretkey",
        "secret_key",
        "clientsecret",
        "client_secret",
        "secretaccesskey",
        "aws_secret_access_key",
        "privatekey",
        "private_key",
        "bearer_token",
    }
)
APPS = bpg("Reliability > Applications")
PLATFORM_CHARTS = Source("platform", "STYLE.md 6 (chart versions pinned in platform/charts.yaml)")


def _values(props: Mapping[str, Any]) -> Mapping[str, Any]:
    values = get(props, "values")
    return values if is_map(values) else {}


@rules.resource(
    "helm-chart-version-pinned",
    types=HELM,
    description="Every chart is pinned to an exact version (no range, no latest).",
    sources=(PLATFORM_CHARTS,),
    prod=M,
    dev=M,
)
def version_pinned(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    version = get(props, "version")
    if not isinstance(version, str) or not SEMVER.fullmatch(version):
        yield f"chart {chart_name(props)} version is {version!r}, not an exact version"


@rules.resource(
    "helm-no-secret-values",
    types=HELM,
    description="No secret in Helm values: reference a Kubernetes Secret (one secret hides all values).",
    sources=(Source("platform", "DESIGN.md Data flow (secret values out of Helm values)"), *cis("4.4.2")),
    prod=M,
    dev=M,
)
def no_secret_values(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    values = get(props, "values")
    if values == MASKED:
        yield "values is secret as a whole: a secret inside it hides every setting from review"
        return
    for path, value in walk(values):
        if value == MASKED:
            yield f"values.{dotted(path)} is a secret"
        elif path and path[-1].lower() in SECRET_KEYS and isinstance(value, str) and value:
            yield f"values.{dotted(path)} holds a literal credential"


@rules.resource(
    "helm-ha-replicas",
    types=HELM,
    description="Controllers run at least two replicas in prod (leader election, no single pod).",
    sources=(*APPS, Source("platform", "DESIGN.md Environments (prod: HA replicas)")),
    prod=M,
    dev=None,
)
def ha_replicas(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    values = _values(props)
    for workload in workloads(props) or ():
        count = workload.replica_count(values)
        if workload.replicas is not None and (count is None or count < 2):
            yield f"{workload.name}: {workload.replicas} is {count}, below 2"


@rules.resource(
    "helm-pdb-enabled",
    types=HELM,
    description="Replicated controllers have a PodDisruptionBudget in prod (drains keep one running).",
    sources=(*APPS, Source("platform", "DESIGN.md Environments (prod: PDBs)")),
    prod=M,
    dev=None,
)
def pdb_enabled(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    values = _values(props)
    for workload in workloads(props) or ():
        if workload.replicas is not None and workload.pdb is not None and not workload.pdb_on(values):
            yield f"{workload.name}: {workload.pdb} is off"


def _resources(props: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    values = _values(props)
    for workload in workloads(props) or ():
        found = get(values, workload.resources)
        yield workload.name, workload.resources, found if is_map(found) else {}


@rules.resource(
    "helm-resource-requests",
    types=HELM,
    description="Every add-on container requests CPU and memory (scheduling and eviction order).",
    sources=(*checkov("CKV_K8S_10", "CKV_K8S_12"), *APPS),
    prod=M,
    dev=A,
)
def resource_requests(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for name, path, resources in _resources(props):
        missing = [r for r in ("cpu", "memory") if not get(resources, f"requests.{r}")]
        if missing:
            yield f"{name}: {path}.requests lacks {' and '.join(missing)}"


@rules.resource(
    "helm-memory-limits",
    types=HELM,
    description="Every add-on container has a memory limit (a leak cannot starve its node).",
    sources=(*checkov("CKV_K8S_13"), *APPS),
    prod=A,
    dev=A,
)
def memory_limits(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for name, path, resources in _resources(props):
        if not get(resources, "limits.memory"):
            yield f"{name}: {path}.limits.memory is not set"


@rules.resource(
    "helm-system-node-placement",
    types=HELM,
    description="Cluster-critical add-ons run on the system node group, not on nodes Karpenter manages.",
    sources=(
        *bpg("Karpenter: run the controller on a node group or Fargate"),
        Source("platform", "DESIGN.md Data flow (SystemNodeGroup)"),
    ),
    prod=M,
    dev=M,
)
def system_placement(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    key, value = SYSTEM_NODE_LABEL
    values = _values(props)
    for workload in workloads(props) or ():
        if not workload.placement:
            continue
        selector = workload.node_selector(values) or {}
        if selector.get(key) != value:
            yield f"{workload.name}: no nodeSelector {key}={value} (at {workload.placement[0]})"


@rules.resource(
    "helm-chart-profile-known",
    types=HELM,
    description="Every chart has a workload profile, so the HA, PDB and resource rules can check it.",
    sources=(Source("platform", "policy/helm_profiles.py"),),
    prod=A,
    dev=A,
)
def profile_known(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if workloads(props) is None:
        yield f"chart {chart_name(props)} has no profile in policy/helm_profiles.py: its pods go unchecked"
