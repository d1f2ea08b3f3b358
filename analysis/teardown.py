"""On destroy, what each controller needs while it cleans up, checked on the destroy order.

    findings = check(graph)              # graph = analysis.graph.build(records)
    part = section(graph)                # the rehearsal section's `teardown` list

`pulumi destroy` deletes a resource once everything that depends on it is gone. A controller that
finishes a deletion (Karpenter terminating a NodePool's instances, the EBS CSI driver deleting a
claim's volume) must still run, and still reach what it calls, until that deletion ends: every
object it cleans up must depend on each of its needs. The controllers, what they clean up, what
they need and why, with sources, are data: platform/teardown.yaml. Rule ids:

- `rehearsal-teardown`: an object a controller cleans up does not depend on one of its needs (the
  destroy may delete the need first: it hangs or leaves cloud resources behind); a claim of an
  operator's StatefulSet in a namespace the stack does not delete; a resource whose delete fails
  unless an input allows it (a pushed-to ECR repository without `force_delete`).
- `rehearsal-volume-reclaim`: a claim whose volume is reclaimed with `Delete` in a stack whose
  destroy deletes the CSI driver: the holder's delete ends when the claim is gone, the driver's
  add-on is deleted next, and nothing awaits the volume's detach and deletion, so it may be left
  (`volumeReclaim` in the data). Retained volumes are kept by design, not leaked.
- `rehearsal-claim-retention` (advisory): a StatefulSet's claims outlive it although their volumes
  would be deleted (only the namespace then deletes them), or go with it although their
  StorageClass keeps the volumes (a reinstalled release starts empty beside a Released volume).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analysis.graph import Graph
from analysis.prerequisites import chart, objects, releases, top
from model.findings import Finding
from model.records import Registration
from policy.model import Level
from stacks.data import load_yaml

RULE = "rehearsal-teardown"
RULE_RETENTION = "rehearsal-claim-retention"
RULE_RECLAIM = "rehearsal-volume-reclaim"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE = "aws:iam/role:Role"
ROLE_POLICIES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
LevelName = Literal["mandatory", "advisory"]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Data):
    type: str
    inputs: dict[str, Any] = {}


class PodIdentity(_Data):
    namespace: str
    serviceAccount: str  # noqa: N815 (the data file's key)


class ValueOf(_Data):
    path: str
    type: str


class Need(_Data):
    what: str
    why: str
    source: str
    level: LevelName
    match: Match | None = None
    podIdentity: PodIdentity | None = None  # noqa: N815
    valueOf: ValueOf | None = None  # noqa: N815

    @model_validator(mode="after")
    def _one_selector(self) -> Need:
        chosen = [k for k in ("match", "podIdentity", "valueOf") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"need {self.what!r}: give exactly one of match, podIdentity, valueOf "
                f"(got {chosen or 'none'})"
            )
        return self


class CleansUp(_Data):
    chart: str | None = None
    apiGroups: tuple[str, ...] = ()  # noqa: N815
    claimHolders: bool = False  # noqa: N815


class Controller(_Data):
    what: str
    cleansUp: CleansUp  # noqa: N815
    needs: tuple[Need, ...] = Field(min_length=1)
    retainedLevel: LevelName | None = None  # noqa: N815


class Switch(_Data):
    path: str
    default: bool
    also: str | None = None
    alsoDefault: bool = True  # noqa: N815


class Claim(_Data):
    what: str
    when: Switch
    storageClass: str  # noqa: N815
    owner: Literal["helm", "statefulset"]
    retention: str | None = None


class Blocker(_Data):
    type: str
    input: str
    want: Any
    why: str
    source: str


class VolumeReclaim(_Data):
    driver: Match
    why: str
    source: str


class Teardown(_Data):
    controllers: dict[str, Controller]
    volumeReclaim: VolumeReclaim  # noqa: N815
    claims: dict[str, tuple[Claim, ...]]
    deleteBlockers: tuple[Blocker, ...] = ()  # noqa: N815


@cache
def rules() -> Teardown:
    """platform/teardown.yaml, validated."""
    return Teardown.model_validate(load_yaml("teardown.yaml"))


def _label(r: Registration) -> str:
    return f"{r.type.rsplit(':', 1)[-1]} {r.name}"


def _finding(rule: str, level: LevelName, r: Registration, message: str) -> Finding:
    return Finding(rule, Level(level), r.urn, message)


# -- claims ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimUse:
    """One kind of claim a release creates, with what decides its fate on destroy."""

    release: Registration
    claim: Claim
    namespace: str
    # The reclaim policy of its StorageClass (Kubernetes' default for a provisioned volume: Delete).
    reclaim: str
    # whenDeleted of its StatefulSet (Retain, Kubernetes' default, when unset); None for Helm's own.
    when_deleted: str | None


def _storage_classes(graph: Graph) -> list[dict[str, Any]]:
    return [
        obj
        for r in graph.nodes.values()
        if r.type.startswith("kubernetes:")
        for obj in objects(r)
        if obj.get("kind") == "StorageClass"
    ]


def _reclaim(graph: Graph, class_name: str | None) -> str:
    classes = _storage_classes(graph)
    if class_name is None:
        default = "storageclass.kubernetes.io/is-default-class"
        chosen = [
            c for c in classes if ((c.get("metadata") or {}).get("annotations") or {}).get(default) == "true"
        ]
    else:
        chosen = [c for c in classes if (c.get("metadata") or {}).get("name") == class_name]
    return str(chosen[0].get("reclaimPolicy", "Delete")) if chosen else "Delete"


def _on(r: Registration, switch: Switch) -> bool:
    on = bool(r.get(f"values.{switch.path}", switch.default))
    if on and switch.also is not None:
        on = bool(r.get(f"values.{switch.also}", switch.alsoDefault))
    return on


def claim_uses(graph: Graph) -> list[ClaimUse]:
    """Every kind of claim the plan's releases create (platform/teardown.yaml `claims`)."""
    table = rules().claims
    out = []
    for r in releases(graph, *table):
        for claim in table[chart(r)]:
            if not _on(r, claim.when):
                continue
            when_deleted = None
            if claim.owner == "statefulset":
                when_deleted = (
                    str(r.get(f"values.{claim.retention}", "Retain")) if claim.retention else "Retain"
                )
            reclaim = _reclaim(graph, r.get(f"values.{claim.storageClass}"))
            out.append(ClaimUse(r, claim, str(top(r, "namespace") or "default"), reclaim, when_deleted))
    return out


def _namespace_objects(graph: Graph, namespace: str) -> list[Registration]:
    return [
        r
        for r in sorted(graph.nodes.values(), key=lambda x: x.urn)
        if r.type.startswith("kubernetes:")
        and any(
            o.get("kind") == "Namespace" and (o.get("metadata") or {}).get("name") == namespace
            for o in objects(r)
        )
    ]


def _claim_holders(graph: Graph) -> tuple[dict[str, list[ClaimUse]], list[Finding]]:
    """URN -> the claims deleting it deletes (releases and the namespaces of operator-made claims),
    and the findings for claims nothing in the stack deletes."""
    holders: dict[str, list[ClaimUse]] = {}
    findings: list[Finding] = []
    for use in claim_uses(graph):
        holders.setdefault(use.release.urn, []).append(use)
        if use.claim.owner != "statefulset":
            continue
        namespaces = _namespace_objects(graph, use.namespace)
        for ns in namespaces:
            holders.setdefault(ns.urn, []).append(use)
        if not namespaces and use.when_deleted != "Delete" and use.reclaim == "Delete":
            findings.append(
                _finding(
                    RULE,
                    "mandatory",
                    use.release,
                    f"{_label(use.release)}: {use.claim.what} are claims of a StatefulSet that Helm does "
                    f"not delete, in namespace {use.namespace}, which the stack does not own: nothing "
                    "deletes them, and their volumes stay after the destroy. Create the namespace in "
                    "the stack (ordered after the EBS CSI add-on) or set whenDeleted: Delete.",
                )
            )
    return holders, findings


def retention(graph: Graph) -> Iterator[Finding]:
    """StatefulSet claims whose fate differs from their volumes' (`rehearsal-claim-retention`)."""
    for use in claim_uses(graph):
        if use.when_deleted is None or use.claim.retention is None:
            continue
        if use.reclaim == "Delete" and use.when_deleted != "Delete":
            problem = (
                f"outlive their StatefulSet (whenDeleted {use.when_deleted}) although their StorageClass "
                "deletes the volumes: only deleting the namespace removes them. Set "
                f"{use.claim.retention}: Delete"
            )
        elif use.reclaim == "Retain" and use.when_deleted == "Delete":
            problem = (
                "go with their StatefulSet although their StorageClass keeps the volumes: a replaced "
                "release starts with empty volumes beside Released ones no claim binds. Set "
                f"{use.claim.retention}: Retain"
            )
        else:
            continue
        yield _finding(
            RULE_RETENTION, "advisory", use.release, f"{_label(use.release)}: {use.claim.what} {problem}."
        )


def unawaited_reclaims(graph: Graph) -> Iterator[Finding]:
    """Claims whose volumes a destroy deletes without awaiting them (`rehearsal-volume-reclaim`)."""
    data = rules().volumeReclaim
    # `protect` does not count: a protected stack is unprotected before its destroy
    # (docs/retiring-a-stack.md), while retainOnDelete leaves the driver running after it.
    drivers = [r for r in graph.nodes.values() if _matches(r, data.driver) and not r.retain_on_delete]
    if not drivers:
        return
    for use in claim_uses(graph):
        if use.reclaim != "Delete":
            continue
        if use.claim.owner == "helm" or use.when_deleted == "Delete":
            holder = f"the release {use.release.get('name') or use.release.name}"
        else:
            holder = f"the namespace {use.namespace}"
        yield _finding(
            RULE_RECLAIM,
            "mandatory",
            use.release,
            f"{_label(use.release)}: the reclaim policy of {use.claim.what} is Delete, and {holder} "
            f"deletes their claims; but {data.why}. Keep no claim in a stack that is destroyed (an "
            "emptyDir), or retain the volumes (reclaimPolicy Retain) and list them in "
            "docs/retiring-a-stack.md.",
        )


# -- controllers ----------------------------------------------------------------------------------


def _matches(r: Registration, match: Match) -> bool:
    return r.type == match.type and all(r.get(k) == v for k, v in match.inputs.items())


def requirements(graph: Graph, need: Need, controller: Registration | None) -> list[frozenset[str]]:
    """What satisfies `need` in this plan: each set must have a member among a subject's ancestors.

    Empty when the plan has nothing of the kind (an add-on the stack does not install).
    """
    if need.match is not None:
        found = frozenset(r.urn for r in graph.nodes.values() if _matches(r, need.match))
        return [found] if found else []
    if need.podIdentity is not None:
        pi = need.podIdentity
        out: list[frozenset[str]] = []
        for assoc in graph.of_type(ASSOCIATION):
            if (assoc.get("namespace"), assoc.get("serviceAccount")) != (pi.namespace, pi.serviceAccount):
                continue
            roles = {u for u in graph.needs[assoc.urn] if graph.nodes[u].type == ROLE}
            policies = [r.urn for r in graph.of_type(*ROLE_POLICIES) if roles & graph.needs[r.urn]]
            out += [frozenset({assoc.urn}), *(frozenset({p}) for p in policies)]
        return out
    assert need.valueOf is not None
    named = controller.get(f"values.{need.valueOf.path}") if controller is not None else None
    found = frozenset(r.urn for r in graph.of_type(need.valueOf.type) if named and r.get("name") == named)
    return [found] if found else []


def subjects(graph: Graph, cleans: CleansUp, holders: dict[str, list[ClaimUse]]) -> list[Registration]:
    """What a controller cleans up on destroy, in this plan."""
    out: dict[str, Registration] = {}
    if cleans.chart:
        out |= {r.urn: r for r in releases(graph, cleans.chart)}
    if cleans.apiGroups:
        for r in graph.nodes.values():
            groups = {
                str(o.get("apiVersion", "")).split("/", 1)[0]
                for o in objects(r)
                if "/" in str(o.get("apiVersion", ""))
            }
            if groups & set(cleans.apiGroups):
                out[r.urn] = r
    if cleans.claimHolders:
        out |= {urn: graph.nodes[urn] for urn in holders}
    return [out[u] for u in sorted(out)]


def _level(need: Need, controller: Controller, uses: list[ClaimUse]) -> LevelName:
    retained = bool(uses) and all(u.reclaim == "Retain" for u in uses)
    if retained and controller.retainedLevel is not None and need.level == "mandatory":
        return controller.retainedLevel
    return need.level


def needs_on_delete(graph: Graph) -> Iterator[Finding]:
    """Each object a controller cleans up depends on each of the controller's needs."""
    holders, unowned = _claim_holders(graph)
    yield from unowned
    for controller in rules().controllers.values():
        release = (
            next(iter(releases(graph, controller.cleansUp.chart)), None)
            if controller.cleansUp.chart
            else None
        )
        reqs = {need.what: requirements(graph, need, release) for need in controller.needs}
        for subject in subjects(graph, controller.cleansUp, holders):
            ancestors = graph.ancestors(subject.urn)
            for need in controller.needs:
                if all(req & ancestors for req in reqs[need.what]):
                    continue
                yield _finding(
                    RULE,
                    _level(need, controller, holders.get(subject.urn, [])),
                    subject,
                    f"{_label(subject)} is cleaned up by {controller.what} on destroy but does not depend "
                    f"on {need.what}: a destroy may delete that first, and then {need.why}.",
                )


def delete_blockers(graph: Graph) -> Iterator[Finding]:
    """Resources the stack destroys whose delete fails unless an input allows it."""
    for blocker in rules().deleteBlockers:
        for r in graph.of_type(blocker.type):
            if r.protect or r.retain_on_delete or r.get(blocker.input) == blocker.want:
                continue
            yield _finding(
                RULE,
                "mandatory",
                r,
                f"{_label(r)} is deleted by a destroy without {blocker.input}={blocker.want!r}: "
                f"{blocker.why}.",
            )


def check(graph: Graph) -> list[Finding]:
    """Every teardown finding, sorted by rule, resource and message."""
    found = {*needs_on_delete(graph), *retention(graph), *unawaited_reclaims(graph), *delete_blockers(graph)}
    return sorted(found, key=lambda f: (f.rule, f.urn or "", f.message))


def section(graph: Graph) -> list[dict[str, Any]]:
    """Per controller: what it cleans up and, per need, the resources that provide it."""
    holders, _ = _claim_holders(graph)
    out = []
    for name, controller in rules().controllers.items():
        release = (
            next(iter(releases(graph, controller.cleansUp.chart)), None)
            if controller.cleansUp.chart
            else None
        )
        out.append(
            {
                "controller": name,
                "cleansUp": [r.urn for r in subjects(graph, controller.cleansUp, holders)],
                "needs": [
                    {
                        "what": need.what,
                        "level": need.level,
                        "resources": sorted(set().union(*requirements(graph, need, release))),
                    }
                    for need in controller.needs
                ],
            }
        )
    return out
