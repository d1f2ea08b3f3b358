"""The deploy rehearsal: what a real `pulumi up` and `pulumi destroy` of the plan would do, and when.

    section = rehearse(records)          # the plan document's `rehearsal` section

Create: waves as the engine runs them (a resource starts when everything it waits for is done,
analysis/graph.py), each resource's typical duration from platform/durations.yaml, the critical
path and the predicted total; the same walk with each type's provider timeout gives the worst case.
Destroy: the reverse graph (a resource is deleted once everything that waits for it is gone), with
the delete durations. Who applies the stack and from where is analysis/appliers.py; the rules a real
deploy would trip over are analysis/prerequisites.py; what each controller needs while a destroy
cleans up is analysis/teardown.py. All add their findings to `findings`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from analysis import admin_trust, role_order, teardown
from analysis.appliers import applied_by, judge
from analysis.destroy_path import destroy_path
from analysis.graph import Graph, build
from analysis.internals import check as internals
from analysis.prerequisites import check, facts
from model.findings import Finding
from model.records import Registration
from stacks.data import load_yaml

_SLEEP = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


@cache
def durations() -> dict[str, Any]:
    """platform/durations.yaml, read once."""
    data: dict[str, Any] = load_yaml("durations.yaml")
    return data


def _go_duration(text: str) -> float:
    """Minutes of a duration such as "30s", "1m30s", "2h" (the time provider's format)."""
    match = _SLEEP.match(text.strip())
    if not text.strip() or not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 1m30s or 2h")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 60 + minutes + seconds / 60


def _entry(r: Registration) -> dict[str, Any] | None:
    entry: dict[str, Any] | None = durations()["types"].get(r.type)
    return entry


def create_minutes(r: Registration, nodes_exist: bool = False) -> float:
    """Typical minutes to create `r` (a local component or unknown non-custom type costs nothing).

    `nodes_exist`: a node group is created before `r` (it is among what `r` waits for). An add-on
    whose pods must run before it is ACTIVE costs its `beforeNodes` figure only without one.
    """
    entry = _entry(r)
    if entry is None:
        return float(durations()["default"]["create"]) if r.custom else 0.0
    if "durationInput" in entry and isinstance(r.get(entry["durationInput"]), str):
        return _go_duration(r.get(entry["durationInput"]))
    tables = [] if nodes_exist else list(entry.get("beforeNodes", {}).items())
    for key, table in [*tables, *entry.get("byInput", {}).items()]:
        if r.get(key) in table:
            return float(table[r.get(key)])
    return float(entry["create"])


def create_costs(graph: Graph) -> dict[str, float]:
    """Every node's typical create minutes, knowing which nodes wait for a node group."""
    groups = {r.urn for r in graph.of_type(*facts()["nodeGroupTypes"])}
    return {u: create_minutes(r, bool(groups & graph.ancestors(u))) for u, r in graph.nodes.items()}


def timeout_minutes(r: Registration) -> float:
    """The longest the provider waits to create `r` before failing (its typical time if it has none)."""
    entry = _entry(r)
    if entry is None:
        return create_minutes(r)
    if "timeoutInput" in entry and isinstance(r.get(entry["timeoutInput"]), int | float):
        return float(r.get(entry["timeoutInput"])) / 60
    return float(entry.get("timeout", create_minutes(r)))


def delete_minutes(r: Registration) -> float:
    entry = _entry(r)
    if entry is None:
        return float(durations()["default"]["delete"]) if r.custom else 0.0
    return float(entry["delete"])


@dataclass(frozen=True)
class Schedule:
    """Waves (each a sorted list of URNs), every node's finish time, the critical path, the total."""

    waves: list[list[str]]
    finish: dict[str, float]
    critical_path: list[str]
    minutes: float


def schedule(
    needs: Mapping[str, frozenset[str]], order: Sequence[str], cost: Mapping[str, float]
) -> Schedule:
    """Run a dependency graph with unlimited parallelism.

    `order` is a topological order of `needs`; a node starts when all it needs have finished. Its wave
    is one more than the latest wave it needs. The critical path walks back from the last finish
    through the need that finished last (ties broken by URN, so the result is deterministic).
    """
    wave: dict[str, int] = {}
    finish: dict[str, float] = {}
    for urn in order:
        deps = needs[urn]
        wave[urn] = 1 + max((wave[d] for d in deps), default=-1)
        finish[urn] = max((finish[d] for d in deps), default=0.0) + cost[urn]
    waves: list[list[str]] = [[] for _ in range(1 + max(wave.values(), default=-1))]
    for urn in sorted(wave):
        waves[wave[urn]].append(urn)
    path: list[str] = []
    current = min(finish, key=lambda u: (-finish[u], u)) if finish else None
    while current is not None:
        path.append(current)
        deps = needs[current]
        current = min(deps, key=lambda u: (-finish[u], u)) if deps else None
    total = round(max(finish.values(), default=0.0), 2)
    return Schedule(waves, finish, path[::-1], total)


def reverse(graph: Graph) -> dict[str, frozenset[str]]:
    """The destroy graph: a resource waits for everything that waits for it to be deleted first."""
    return {urn: frozenset(deps) for urn, deps in graph.dependents().items()}


@dataclass(frozen=True)
class Rehearsal:
    graph: Graph
    create: Schedule
    worst_case_minutes: float
    destroy: Schedule
    create_cost: Mapping[str, float]

    def steps(self) -> list[dict[str, Any]]:
        """The critical path with each step's name, type, minutes and finish time."""
        out = []
        for urn in self.create.critical_path:
            r = self.graph.nodes[urn]
            out.append(
                {
                    "urn": urn,
                    "name": r.name,
                    "type": r.type,
                    "minutes": round(self.create_cost[urn], 2),
                    "finish": round(self.create.finish[urn], 2),
                }
            )
        return out

    def document(self) -> dict[str, Any]:
        """The `create` and `destroy` parts of the plan document's `rehearsal` section."""
        return {
            "create": {
                "waves": self.create.waves,
                "criticalPath": self.create.critical_path,
                "minutes": self.create.minutes,
                "worstCaseMinutes": self.worst_case_minutes,
                "steps": self.steps(),
            },
            "destroy": {
                "waves": self.destroy.waves,
                "criticalPath": self.destroy.critical_path,
                "minutes": self.destroy.minutes,
            },
        }


def rehearse(records: Sequence[Registration], lookups: Sequence[Mapping[str, Any]] = ()) -> Rehearsal:
    graph = build(records, lookups)
    order = graph.order()
    cost = create_costs(graph)
    create = schedule(graph.needs, order, cost)
    worst = schedule(graph.needs, order, {u: timeout_minutes(r) for u, r in graph.nodes.items()})
    destroy = schedule(reverse(graph), order[::-1], {u: delete_minutes(r) for u, r in graph.nodes.items()})
    return Rehearsal(graph, create, worst.minutes, destroy, cost)


def section(
    records: Sequence[Registration],
    lookups: Sequence[Mapping[str, Any]] = (),
    identity: Sequence[Registration] = (),
    bootstrap: Sequence[Registration] | None = None,
) -> tuple[dict[str, Any], list[Finding]]:
    """The plan document's `rehearsal` section (create, destroy, appliers, who applies each
    resource) and the rehearsal's findings.

    `lookups`: the provider functions the program called (PlanResult.lookups), which show what it
    adopts when it exists. `identity`: the stack's identity plan (identity/), which holds the
    Deployments settings (analysis/appliers.py). `bootstrap`: what the program declares with
    `deployments.bootstrap: true`, the destroy path's second step (analysis/destroy_path.py).
    """
    rehearsal = rehearse(records, lookups)
    appliers, applier_findings = judge(rehearsal.graph, identity)
    document = rehearsal.document() | {
        "appliers": [a.document() for a in appliers],
        "appliedBy": applied_by(rehearsal.graph, appliers),
        "teardown": teardown.section(rehearsal.graph),
    }
    found = [
        *check(rehearsal.graph),
        *internals(rehearsal.graph),
        *applier_findings,
        *admin_trust.findings(rehearsal.graph, identity),
        *role_order.findings(rehearsal.graph),
        *teardown.check(rehearsal.graph),
    ]
    if bootstrap is not None:
        # A workstation ("make up") cannot reach the endpoint: prod's three-step destroy.
        private = any(a.path == "make up" and not a.reaches for a in appliers)
        document["destroyPath"], destroy_findings = destroy_path(records, bootstrap, private=private)
        found += destroy_findings
    return document, sorted(found, key=lambda f: (f.rule, f.urn or "", f.message))
