"""The plan's resource graph as the Pulumi engine orders it.

A resource starts once everything it waits for is done: its `dependencies` (input dependencies plus
`depends_on`), its provider (the Kubernetes provider itself waits for the cluster's kubeconfig), and
a custom parent. What the engine does with a local component in `depends_on` is read from the
installed SDK (pulumi 3.272, `pulumi/runtime/rpc.py` `_add_dependency`): "Local component resources
act as aggregations of their descendents", so the recorded dependencies already name the
component's custom and remote descendants, never the component. Local components are therefore no
nodes here; remote components (`eks:index:Cluster`, `awsx:ec2:Vpc`, ...) are, as single nodes,
since their children are not recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.records import Registration


@dataclass(frozen=True)
class Graph:
    """Nodes (custom resources and remote components) and, per node, what it waits for."""

    nodes: Mapping[str, Registration]
    needs: Mapping[str, frozenset[str]]
    # The provider functions the program called before registering (token, arguments): a lookup
    # shows, e.g., that the program adopts an existing resource instead of colliding with it.
    lookups: tuple[Mapping[str, Any], ...] = ()
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def dependents(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {urn: set() for urn in self.nodes}
        for urn, deps in self.needs.items():
            for dep in deps:
                out[dep].add(urn)
        return out

    def ancestors(self, urn: str) -> frozenset[str]:
        """Everything `urn` waits for, directly or through others (memoised: the rules ask often)."""
        if urn not in self._ancestors:
            seen: set[str] = set()
            stack = list(self.needs[urn])
            while stack:
                dep = stack.pop()
                if dep not in seen:
                    seen.add(dep)
                    stack.extend(self.needs[dep])
            self._ancestors[urn] = frozenset(seen)
        return self._ancestors[urn]

    def of_type(self, *types: str) -> list[Registration]:
        return sorted((r for r in self.nodes.values() if r.type in types), key=lambda r: r.urn)

    def order(self) -> list[str]:
        """A topological order (dependencies first), deterministic; a cycle is an error."""
        remaining = {urn: set(deps) for urn, deps in self.needs.items()}
        dependents = self.dependents()
        ready = sorted(urn for urn, deps in remaining.items() if not deps)
        out: list[str] = []
        while ready:
            urn = ready.pop(0)
            out.append(urn)
            for nxt in sorted(dependents[urn]):
                remaining[nxt].discard(urn)
                if not remaining[nxt]:
                    ready.append(nxt)
            ready.sort()
        if len(out) != len(self.nodes):
            stuck = sorted(set(self.nodes) - set(out))
            raise ValueError(f"the plan's dependencies form a cycle among: {', '.join(stuck[:5])}")
        return out


def provider_urn(reference: str | None) -> str | None:
    """A provider reference is `<provider urn>::<provider id>`; the URN is what a resource waits for."""
    return reference.rsplit("::", 1)[0] if reference else None


def build(records: Sequence[Registration], lookups: Sequence[Mapping[str, Any]] = ()) -> Graph:
    """The engine's graph of a recorded plan (and the lookups the program made)."""
    by_urn = {r.urn: r for r in records}
    children: dict[str, list[str]] = {}
    for r in records:
        if r.parent:
            children.setdefault(r.parent, []).append(r.urn)
    # A non-custom record with recorded children is a local component: an aggregation only.
    local = {r.urn for r in records if not r.custom and r.urn in children}
    nodes = {urn: r for urn, r in by_urn.items() if urn not in local}

    def expand(urns: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for urn in urns:
            if urn in local:
                out |= expand(children[urn])
            elif urn in nodes:
                out.add(urn)
        return out

    needs: dict[str, frozenset[str]] = {}
    for urn, r in nodes.items():
        waits = set(r.dependencies)
        provider = provider_urn(r.provider)
        if provider:
            waits.add(provider)
        if r.parent in nodes and nodes[r.parent].custom:
            waits.add(r.parent)
        needs[urn] = frozenset(expand(waits) - {urn})
    return Graph(nodes, needs, tuple(lookups))


def from_document(document: Mapping[str, Any]) -> list[Registration]:
    """The registrations of a saved plan document (plan.schema.json `resources`)."""
    return [
        Registration(
            urn=r["urn"],
            type=r["type"],
            name=r["name"],
            parent=r.get("parent"),
            custom=bool(r["custom"]),
            provider=r.get("provider"),
            providers={},
            protect=bool(r.get("protect", False)),
            retain_on_delete=bool(r.get("retainOnDelete", False)),
            dependencies=list(r.get("dependencies", [])),
            raw_inputs=dict(r.get("inputs", {})),
            import_id=r.get("importId"),
            children=list(r.get("children", [])),
        )
        for r in document["resources"]
    ]
