"""Diff: what changes between two plan documents (`make diff`), and which changes lose state.

    report = diff_plans(base_document, head_document)

Resources are matched by URN; inputs by path (`changes`): lists of objects by their identity
(`name`, `key`, `id`, a Kubernetes object's kind and name: `tolerations[key=x].effect`), other
lists by index; an input or list item present on one side only is one change holding it whole.
For two stacks of one commit (dev against prod), the stack name is masked in URNs and string inputs
(`eks-platform-dev-x` and `eks-platform-prod-x` are the same resource), so what remains are the
real differences between the stacks. Inputs are compared as the plan documents hold them, secrets
already "[secret]" on both sides.

Findings (same stack only): deleting a protected resource, changing an input that forces the
replacement of a stateful resource, per `platform/replacement.yaml` (each type with its source),
and changing an input that forces the replacement of a protected resource of any type listed
there (`diff-replaces-protected`): a replacement deletes the old resource, and the engine refuses
to delete a protected one (pulumi/pulumi pkg/resource/deploy/step.go, deleteProtectedError), so
the run fails until it is unprotected.
The cost change compares the two documents' `cost.fixedMonthly` (estimated when a document
predates the cost section).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from analysis.cost import estimate
from stacks.data import load_yaml

RULE_DELETE_PROTECTED = "diff-deletes-protected"
RULE_REPLACE_STATEFUL = "diff-replaces-stateful"
RULE_REPLACE_PROTECTED = "diff-replaces-protected"


class StatefulType(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    what: str
    source: str
    replaceOn: tuple[str, ...] = Field(min_length=1)  # noqa: N815 (the data file's key)
    statefulWhenValuesContain: tuple[str, ...] = ()  # noqa: N815
    # False for a type that holds no data: its replacement matters only when it is protected.
    stateful: bool = True


class ReplacementRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    types: dict[str, StatefulType]


@cache
def replacement_rules() -> ReplacementRules:
    """platform/replacement.yaml, validated."""
    return ReplacementRules.model_validate(load_yaml("replacement.yaml"))


@dataclass(frozen=True)
class InputChange:
    path: str
    before: Any
    after: Any
    replaces: bool

    def document(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after, "replaces": self.replaces}


@dataclass(frozen=True)
class Changed:
    urn: str
    type: str
    inputs: tuple[InputChange, ...]

    def document(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "inputs": [c.document() for c in self.inputs]}


@dataclass
class DiffReport:
    base: str
    head: str
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "added": self.added,
            "removed": self.removed,
            "changed": [c.document() for c in self.changed],
            "findings": self.findings,
            "cost": self.cost,
        }


def _mask_stack(value: Any, project: str, stack: str) -> Any:
    """The same value with this stack's name replaced by `<stack>` in every string."""
    if isinstance(value, str):
        return value.replace(f"urn:pulumi:{stack}::", "urn:pulumi:<stack>::").replace(
            f"{project}-{stack}", f"{project}-<stack>"
        )
    if isinstance(value, Mapping):
        return {k: _mask_stack(v, project, stack) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_stack(v, project, stack) for v in value]
    return value


IDENTITY_FIELDS = ("name", "key", "id")  # a list item's identity, in order of preference
ABSENT = None  # `before` of an added input, `after` of a removed one


def _object_identity(item: Any) -> str | None:
    """`Kind namespace/name` of a Kubernetes object (a ConfigGroup's `objs`), else None."""
    metadata = item.get("metadata") if isinstance(item, Mapping) else None
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        return None
    namespace = metadata.get("namespace")
    where = f"{namespace}/" if isinstance(namespace, str) else ""
    return f"{item.get('kind', '?')} {where}{metadata['name']}"


def _identities(before: list[Any], after: list[Any]) -> list[str] | None:
    """Each item's path segment (`[name=private]`, `[NetworkPolicy monitoring/deny]`) when every item
    of both lists is an object with a unique identity of one kind; None to compare by index."""
    items = [*before, *after]
    if not all(isinstance(item, Mapping) for item in items):
        return None
    for field_name in IDENTITY_FIELDS:
        values = [item.get(field_name) for item in items]
        if all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
            segments = [f"[{field_name}={v}]" for v in values]
            break
    else:
        objects = [_object_identity(item) for item in items]
        if None in objects:
            return None
        segments = [f"[{o}]" for o in objects]
    if len(set(segments[: len(before)])) < len(before) or len(set(segments[len(before) :])) < len(after):
        return None  # two items share an identity (tolerations with one key and two effects)
    return segments


def changes(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, before, after) for each difference between two input values, paths dotted
    (`scalingConfig.desiredSize`). Lists of objects with an identity (`name`, `key`, `id`, or a
    Kubernetes object's kind and name) are compared item by item under `[name=x]`, so an insertion
    is one added item, not every later item changed; other lists by index (`subnetSpecs.0`). An
    input or item present on one side only is one change holding it whole (ABSENT on the other)."""
    if before == after:
        return []
    if isinstance(before, Mapping) and isinstance(after, Mapping) and before and after:
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(before.keys() | after.keys()):
            inner = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                out.append((inner, before.get(key, ABSENT), after.get(key, ABSENT)))
            else:
                out += changes(before[key], after[key], inner)
        return out
    if isinstance(before, list) and isinstance(after, list) and before and after:
        segments = _identities(before, after)
        if segments is None:
            keyed_before = {f".{i}": item for i, item in enumerate(before)}
            keyed_after = {f".{i}": item for i, item in enumerate(after)}
        else:
            keyed_before = dict(zip(segments[: len(before)], before, strict=True))
            keyed_after = dict(zip(segments[len(before) :], after, strict=True))
        order = [*keyed_after, *(k for k in keyed_before if k not in keyed_after)]
        out = []
        for segment in order:
            inner = f"{path}{segment}" if path else segment.lstrip(".")
            if segment not in keyed_before or segment not in keyed_after:
                out.append((inner, keyed_before.get(segment, ABSENT), keyed_after.get(segment, ABSENT)))
            else:
                out += changes(keyed_before[segment], keyed_after[segment], inner)
        return out
    return [(path, before, after)]


def _forces_replacement(path: str, props: tuple[str, ...]) -> bool:
    return any(
        path == p or path.startswith((p + ".", p + "[")) or p.startswith((path + ".", path + "["))
        for p in props
    )


def _contains_key(value: Any, keys: tuple[str, ...]) -> bool:
    """Whether a key of `keys` holds a non-empty, not-disabled setting anywhere in `value`."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key in keys and inner not in (None, {}, [], False) and inner != {"enabled": False}:
                return True
            if _contains_key(inner, keys):
                return True
    if isinstance(value, list):
        return any(_contains_key(v, keys) for v in value)
    return False


def _replaced_on(resource: Mapping[str, Any]) -> StatefulType | None:
    """The replacement rule of `resource`'s type, stateful or not."""
    return replacement_rules().types.get(resource["type"])


def _stateful(resource: Mapping[str, Any]) -> StatefulType | None:
    rule = _replaced_on(resource)
    if rule is None or not rule.stateful:
        return None
    if rule.statefulWhenValuesContain and not _contains_key(
        resource.get("inputs", {}).get("values"), rule.statefulWhenValuesContain
    ):
        return None
    return rule


def _fixed_cost(document: Mapping[str, Any]) -> tuple[str, float | None]:
    cost = document.get("cost") or estimate(document).document()
    return cost["currency"], cost["fixedMonthly"] if cost.get("pricesAsOf") else None


def _label(document: Mapping[str, Any]) -> str:
    return str(document.get("stack", "?"))


def diff_plans(base: Mapping[str, Any], head: Mapping[str, Any], *, base_label: str | None = None,
               head_label: str | None = None) -> DiffReport:  # fmt: skip
    """Added, removed and changed resources from `base` to `head`, with findings and cost change."""
    same_stack = base.get("stack") == head.get("stack")
    project = str(head.get("project", ""))

    def index(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        resources = document["resources"]
        if not same_stack:
            resources = [_mask_stack(r, project, str(document.get("stack"))) for r in resources]
        return {r["urn"]: r for r in resources}

    old, new = index(base), index(head)
    report = DiffReport(base_label or _label(base), head_label or _label(head))
    report.added = [{"urn": u, "type": new[u]["type"]} for u in sorted(new.keys() - old.keys())]
    for urn in sorted(old.keys() - new.keys()):
        gone = old[urn]
        report.removed.append({"urn": urn, "type": gone["type"], "protect": bool(gone.get("protect"))})
        if same_stack and gone.get("protect"):
            message = f"{gone['type']} {gone['name']} is protected and would be deleted"
            report.findings.append(_finding(RULE_DELETE_PROTECTED, urn, message))
    for urn in sorted(old.keys() & new.keys()):
        rule, replaced_on = _stateful(old[urn]), _replaced_on(old[urn])
        replace_on = replaced_on.replaceOn if replaced_on else ()
        inputs = tuple(
            InputChange(path, before, after, _forces_replacement(path, replace_on))
            for path, before, after in changes(old[urn].get("inputs", {}), new[urn].get("inputs", {}))
        )
        if not inputs:
            continue
        report.changed.append(Changed(urn, new[urn]["type"], inputs))
        replacing = [c.path for c in inputs if c.replaces]
        if same_stack and replaced_on and replacing and old[urn].get("protect"):
            message = (
                f"{replaced_on.what} {new[urn]['name']} is protected and would be replaced: "
                f"{', '.join(replacing)} changed ({replaced_on.source} in platform/replacement.yaml); "
                "the engine refuses to delete a protected resource, so unprotect it first "
                "(`pulumi state unprotect <urn>`) or avoid the change"
            )
            report.findings.append(_finding(RULE_REPLACE_PROTECTED, urn, message))
        if same_stack and rule and replacing:
            message = (
                f"{rule.what} {new[urn]['name']} would be replaced (deleted and recreated): "
                f"{', '.join(replacing)} changed ({rule.source} in platform/replacement.yaml)"
            )
            report.findings.append(_finding(RULE_REPLACE_STATEFUL, urn, message))
    currency, before_cost = _fixed_cost(base)
    _, after_cost = _fixed_cost(head)
    change = None if before_cost is None or after_cost is None else round(after_cost - before_cost, 2)
    report.cost = {"currency": currency, "before": before_cost, "after": after_cost, "change": change}
    return report


def _finding(rule: str, urn: str, message: str) -> dict[str, Any]:
    return {"rule": rule, "level": "mandatory", "urn": urn, "message": message}
