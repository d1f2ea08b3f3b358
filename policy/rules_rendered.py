"""Rules over rendered Helm objects: what checkov cannot know about this platform.

checkov (`make scan`, tools/scan.py) judges each rendered object on its own: requests, probes,
security contexts, image digests. These rules judge what needs the platform's design: the system
node group's label and taint, and prod's reliability bar for controllers with more than one
replica. They read the plan's `rendered` section (`[{"urn", "chart", "version", "objects"}]`),
one release at a time, so a PDB is matched with the workload of its own release.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policy.helm_profiles import SYSTEM_NODE_LABEL
from policy.memory import EVICTION, PLATFORM_CONTROLLERS, memory_unguaranteed
from policy.model import Context, Level, Rule, Source, bpg, checkov
from policy.props import get, is_map

M, A = Level.MANDATORY, Level.ADVISORY
SYSTEM_TAINT = "CriticalAddonsOnly"
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
CONTROLLERS = frozenset({"Deployment", "StatefulSet"})
WORKLOADS = CONTROLLERS | {"DaemonSet", "Job", "CronJob"}
# A tag that names a version (v1.2.3, 1.2, 8.2.3-alpine, v20231011-8b53cabe0, a 40-hex commit):
# not `latest`, not a branch name.
VERSION_TAG = re.compile(r"v?(\d+(\.\d+)+|\d{8})([-+._][0-9A-Za-z.+_-]+)?|[0-9a-f]{40}")
PLATFORM_SYSTEM = Source("platform", "DESIGN.md Environments (system nodes for add-ons)")
APPS = bpg("Reliability > Applications")

Obj = Mapping[str, Any]
RenderedCheck = Callable[[Sequence[Obj], Context], Iterable[tuple[str, str]]]


@dataclass(frozen=True, kw_only=True)
class RenderedRule(Rule):
    """A rule over the objects of one rendered release: yields (object, message)."""

    check: RenderedCheck


RULES: list[RenderedRule] = []


def rule(
    name: str, *, description: str, sources: Iterable[Source], prod: Level, dev: Level | None
) -> Callable[[RenderedCheck], RenderedCheck]:
    def register(fn: RenderedCheck) -> RenderedCheck:
        RULES.append(
            RenderedRule(
                name=name, description=description, sources=tuple(sources), prod=prod, dev=dev, check=fn
            )
        )
        return fn

    return register


def ident(obj: Obj) -> str:
    return f"{obj.get('kind')}/{get(obj, 'metadata.name')}"


def pod_spec(obj: Obj) -> Mapping[str, Any] | None:
    path = "spec.jobTemplate.spec.template.spec" if obj.get("kind") == "CronJob" else "spec.template.spec"
    spec = get(obj, path) if obj.get("kind") in WORKLOADS else None
    return spec if is_map(spec) else None


def pod_labels(obj: Obj) -> Mapping[str, Any]:
    labels = get(obj, "spec.template.metadata.labels", {})
    return labels if is_map(labels) else {}


def replica_count(obj: Obj, objects: Sequence[Obj]) -> int:
    """spec.replicas, or the minReplicas of the HorizontalPodAutoscaler that owns the count."""
    for hpa in objects:
        if hpa.get("kind") == "HorizontalPodAutoscaler" and get(hpa, "spec.scaleTargetRef.name") == get(
            obj, "metadata.name"
        ):
            return int(get(hpa, "spec.minReplicas", 1) or 1)
    return int(get(obj, "spec.replicas", 1) or 0)


def replicated(objects: Sequence[Obj]) -> Iterator[tuple[Obj, Mapping[str, Any]]]:
    """Deployments and StatefulSets with more than one replica (an absent count means one)."""
    for obj in objects:
        spec = pod_spec(obj)
        if obj.get("kind") in CONTROLLERS and spec is not None and replica_count(obj, objects) > 1:
            yield obj, spec


def tolerates_system(spec: Mapping[str, Any]) -> bool:
    for t in spec.get("tolerations") or []:
        if t.get("key") == SYSTEM_TAINT or (t.get("operator") == "Exists" and not t.get("key")):
            return True
    return False


@rule(
    "rendered-system-placement",
    description=(
        "Pods meant for the system nodes select and tolerate them; other pods never tolerate the "
        "system taint without selecting them (DaemonSets excepted)."
    ),
    sources=(PLATFORM_SYSTEM, *bpg("Reliability > Data plane")),
    prod=M,
    dev=M,
)
def system_placement(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    key, value = SYSTEM_NODE_LABEL
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        selects = (spec.get("nodeSelector") or {}).get(key) == value
        tolerates = tolerates_system(spec)
        if selects and not tolerates:
            yield ident(obj), f"selects {key}={value} but does not tolerate {SYSTEM_TAINT}: it stays pending"
        elif tolerates and not selects and obj.get("kind") != "DaemonSet":
            yield (
                ident(obj),
                f"tolerates {SYSTEM_TAINT} without selecting {key}={value}: it may take system room",
            )


def _selects(selector: Any, labels: Mapping[str, Any]) -> bool:
    match = get(selector, "matchLabels", {}) or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def _protects(pdb: Obj, replicas: int) -> bool:
    spec = pdb.get("spec") or {}
    if "maxUnavailable" in spec:
        bound = str(spec["maxUnavailable"])
        return (bound.endswith("%") and bound != "100%") or (bound.isdigit() and int(bound) < replicas)
    bound = str(spec.get("minAvailable", 0))
    return bound not in ("0", "0%")


@rule(
    "rendered-pdb-effective",
    description="In prod each replicated controller has a PodDisruptionBudget that protects something.",
    sources=(*APPS, Source("platform", "DESIGN.md Environments (prod: PDBs)")),
    prod=M,
    dev=None,
)
def pdb_effective(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    pdbs = [o for o in objects if o.get("kind") == "PodDisruptionBudget"]
    for obj in pdbs:
        if not _protects(obj, 2):
            yield ident(obj), "minAvailable is 0: this PDB allows every pod to be evicted at once"
    for obj, _ in replicated(objects):
        labels, replicas = pod_labels(obj), replica_count(obj, objects)
        mine = [p for p in pdbs if _selects(get(p, "spec.selector"), labels)]
        if not mine:
            yield ident(obj), f"{replicas} replicas and no PodDisruptionBudget selects its pods"
        elif not any(_protects(p, replicas) for p in mine):
            yield (
                ident(obj),
                f"its PodDisruptionBudget ({', '.join(ident(p) for p in mine)}) protects nothing",
            )


def _zone_terms(spec: Mapping[str, Any]) -> Iterator[str]:
    for c in spec.get("topologySpreadConstraints") or []:
        yield str(c.get("topologyKey"))
    anti = get(spec, "affinity.podAntiAffinity", {}) or {}
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        yield str(term.get("topologyKey"))
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        yield str(get(term, "podAffinityTerm.topologyKey"))


@rule(
    "rendered-zone-spread",
    description="In prod each replicated controller spreads over zones (topology spread or anti-affinity).",
    sources=(*APPS, Source("platform", "DESIGN.md Environments (prod: topology spread)")),
    prod=M,
    dev=None,
)
def zone_spread(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    for obj, spec in replicated(objects):
        if ZONE not in set(_zone_terms(spec)):
            yield ident(obj), f"no topologySpreadConstraint or pod anti-affinity on {ZONE} is rendered"


def _node_exclusive(spec: Mapping[str, Any]) -> bool:
    """True when two replicas can never share a node: a hard anti-affinity or spread per node/zone."""
    keys = {HOST, ZONE}
    anti = get(spec, "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution", []) or []
    hard_spread = [
        c
        for c in spec.get("topologySpreadConstraints") or []
        if c.get("whenUnsatisfiable") == "DoNotSchedule"
    ]
    return any(t.get("topologyKey") in keys for t in [*anti, *hard_spread])


@rule(
    "rendered-node-spread",
    description="In prod two replicas of a controller never share a node (one node loss takes one).",
    sources=(*APPS,),
    prod=M,
    dev=None,
)
def node_spread(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    for obj, spec in replicated(objects):
        if not _node_exclusive(spec):
            yield (
                ident(obj),
                (
                    f"only soft placement rules: its replicas may share one node (no required anti-affinity "
                    f"or DoNotSchedule spread on {HOST} or {ZONE})"
                ),
            )


@rule(
    "rendered-priority-class",
    description="In prod each replicated controller sets a priority class (it outranks workloads for room).",
    sources=(*APPS,),
    prod=M,
    dev=None,
)
def priority_class(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    for obj, spec in replicated(objects):
        if not spec.get("priorityClassName"):
            yield ident(obj), "no priorityClassName: under pressure it is evicted like any workload"


def image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and bool(VERSION_TAG.fullmatch(name.split(":", 1)[1]))


@rule(
    "rendered-image-pinned",
    description="Every container image is pinned by a version tag or a digest (never latest or untagged).",
    sources=(*checkov("CKV_K8S_14", "CKV_K8S_43"),),
    prod=M,
    dev=A,
)
def images_pinned(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            image = str(container.get("image", ""))
            if not image_pinned(image):
                yield (
                    ident(obj),
                    f"container {container.get('name')} image {image!r} is not pinned by version",
                )


def _memory(objects: Sequence[Obj], controllers: bool) -> Iterator[tuple[str, str]]:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None and (ident(obj) in PLATFORM_CONTROLLERS) == controllers:
            for message in memory_unguaranteed(spec):
                yield ident(obj), message


@rule(
    "rendered-controller-memory-guaranteed",
    description="The platform's controllers set a memory limit equal to their memory request.",
    sources=EVICTION,
    prod=M,
    dev=A,
)
def controller_memory(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    yield from _memory(objects, controllers=True)


@rule(
    "rendered-memory-limit-equals-request",
    description="Every other container sets a memory limit equal to its memory request.",
    sources=EVICTION,
    prod=A,
    dev=None,
)
def other_memory(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    yield from _memory(objects, controllers=False)


def evaluate(rendered: Iterable[Mapping[str, Any]], production: bool) -> list[tuple[str, Level, str, str]]:
    """(rule, level, release urn, "object: message") for every violation, in a stable order."""
    ctx = Context(production=production)
    out = []
    for release in rendered:
        objects = [o for o in release.get("objects") or [] if is_map(o)]
        for r in RULES:
            level = r.level(production)
            if level is None:
                continue
            for name, message in r.check(objects, ctx):
                out.append((r.name, level, str(release.get("urn")), f"{name}: {message}"))
    return sorted(out, key=lambda f: (f[1] != M, f[0], f[2], f[3]))


@rule(
    "rendered-no-load-balancer",
    description=(
        "No Service of type LoadBalancer: the permissions boundary allows the control plane no "
        "Elastic Load Balancing action, so one would stay pending (docs/deploy-role.md)."
    ),
    sources=(Source("platform", "platform/deploy-role.yaml boundary.withheld (review 19, round 4)"),),
    prod=M,
    dev=M,
)
def no_load_balancer(objects: Sequence[Obj], ctx: Context) -> Iterator[tuple[str, str]]:
    for obj in objects:
        if obj.get("kind") == "Service" and get(obj, "spec.type") == "LoadBalancer":
            yield (
                ident(obj),
                "type LoadBalancer: no role of the stack may create a load balancer; use ClusterIP",
            )
