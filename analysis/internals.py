"""What packaged components create inside themselves, and what an import adopts, against the program.

    findings = check(graph)              # graph = analysis.graph.build(records, lookups)

Mocks see a remote component's inputs, not its children. platform/component-internals.yaml keeps,
with its source, what the pinned component creates for given inputs; the offline engine builds those
children (`children`), runs the component's transforms over them as the real engine would, and
records the result on the component's registration (`Registration.children`). The rules here judge
that record (or, for a plan saved without it, the children built from the inputs):

- `rehearsal-component-creator-admin`: EKS gives the creating principal its own admin access entry
  while the program creates explicit admin entries, one of them for whoever runs the first `up`:
  that `up` fails with ResourceInUseException (409).
- `rehearsal-component-duplicate`: the component creates something the program creates as well
  (an add-on, an access entry, the cluster's OIDC provider): the second create fails.
- `rehearsal-import-replaces` (mandatory) / `rehearsal-import-updates` (advisory): an `import` whose
  declared inputs differ from what AWS holds (the program's recorded lookup of it). The engine
  imports, then updates in the same deployment (pulumi v3.174.0+, pulumi/pulumi#19339); a difference
  in a property the provider replaces on makes the adoption a replacement of a fixed-name resource.

`destroyed` says what AWS holds once a stack is destroyed (retained resources, names kept taken,
what EKS recreates), so a test can replay destroy -> up -> destroy -> up on the plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from model.findings import Finding
from model.records import Account, Registration, reveal
from policy.model import Level
from stacks.data import load_yaml

if TYPE_CHECKING:
    from analysis.graph import Graph

ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"


@cache
def data() -> dict[str, Any]:
    """platform/component-internals.yaml, read once."""
    return dict(load_yaml("component-internals.yaml"))


def _at(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def holds(when: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    """Whether a `when` condition of the data holds for a component's inputs."""
    if "any" in when:
        return any(holds(w, inputs) for w in when["any"])
    if "all" in when:
        return all(holds(w, inputs) for w in when["all"])
    value = _at(inputs, when["input"])
    if when.get("present"):
        return value is not None
    return bool((when.get("default") if value is None else value) == when["equals"])


def _fill(template: Any, inputs: Mapping[str, Any], item: Mapping[str, Any]) -> Any:
    if isinstance(template, Mapping):
        if set(template) == {"input"}:
            return _at(inputs, template["input"])
        if set(template) == {"item"}:
            return _at(item, template["item"])
        return {k: _fill(v, inputs, item) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, inputs, item) for v in template]
    return template


def children(component_type: str, name: str, inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The children the pinned component creates for these (engine, camelCase) inputs, as the
    component builds them, before any transform: {type, name, props, ignoreChanges}."""
    spec = data()["components"].get(component_type)
    out: list[dict[str, Any]] = []
    for child in spec["children"] if spec else []:
        if not holds(child["when"], inputs):
            continue
        entries = (_at(inputs, child["forEach"]) or {}) if "forEach" in child else {"": {}}
        for key in sorted(entries):
            item = entries[key] if isinstance(entries[key], Mapping) else {}
            out.append(
                {
                    "type": child["type"],
                    "name": child["name"].format(name=name, key=key),
                    "props": _fill(child.get("props", {}), inputs, item),
                    "ignoreChanges": list(child.get("ignoreChanges", [])),
                }
            )
    return out


def _children_of(r: Registration) -> list[dict[str, Any]]:
    """What the engine recorded (after the transforms), else what the data says the component builds."""
    return r.children or children(r.type, r.name, reveal(r.raw_inputs))


def _spec(component_type: str, child: Mapping[str, Any]) -> dict[str, Any]:
    for spec in data()["components"][component_type]["children"]:
        if spec["type"] == child["type"] and _matches_name(spec["name"], child["name"]):
            found: dict[str, Any] = spec
            return found
    return {}


def _matches_name(pattern: str, name: str) -> bool:
    regex = re.escape(pattern).replace(r"\{name\}", ".+").replace(r"\{key\}", ".+")
    return re.fullmatch(regex, name) is not None


def _finding(rule: str, level: Level, urn: str, message: str) -> Finding:
    return Finding(f"rehearsal-{rule}", level, urn, message)


def _components(graph: Graph) -> list[Registration]:
    return graph.of_type(*data()["components"])


def _people_entries(graph: Graph, component: Registration) -> list[str]:
    """Principals with a STANDARD access entry (people and deploy roles, not nodes): the component's
    own entries and the program's. EKS's creator entry collides with any of them."""
    entries = [c["props"] for c in _children_of(component) if c["type"] == ACCESS_ENTRY]
    entries += [
        {"principalArn": r.get("principalArn"), "type": r.get("type")} for r in graph.of_type(ACCESS_ENTRY)
    ]
    return sorted({str(e.get("principalArn")) for e in entries if e.get("type", "STANDARD") == "STANDARD"})


def grants_creator_admin(component: Registration) -> bool:
    """Whether the component, as recorded after its transforms, has EKS give the principal that
    creates the cluster an admin access entry of its own (pulumi-eks's creator bootstrap)."""
    for child in _children_of(component):
        field = _spec(component.type, child).get("grantsCreatorAdmin")
        if field and _at(child["props"], field):
            return True
    return False


def creator_admin(graph: Graph) -> Iterator[Finding]:
    """EKS's bootstrap admin entry for the creator collides with the program's explicit entry.

    With `bootstrapClusterCreatorAdminPermissions` true, EKS creates an access entry for the principal
    that calls CreateCluster; the program's own entry for the same principal then fails with
    "ResourceInUseException: The specified access entry resource is already in use"
    (github.com/terraform-aws-modules/terraform-aws-eks/issues/2968, /2969, /3293). The first `up`
    runs as one of the admin roles (docs/first-deploy.md), so any admin entry makes it fail.
    """
    for component in _components(graph):
        for child in _children_of(component):
            field = _spec(component.type, child).get("grantsCreatorAdmin")
            if not field or not _at(child["props"], field):
                continue
            admins = _people_entries(graph, component)
            if admins:
                yield _finding(
                    "component-creator-admin",
                    Level.MANDATORY,
                    component.urn,
                    f"{component.type} {component.name} creates {child['type']} {child['name']} with "
                    f"{field} true: EKS gives whoever runs the first `up` an admin access entry of its "
                    f"own, and the program's entry for that principal (one of {', '.join(admins)}) "
                    "fails with ResourceInUseException (409). Turn the bootstrap off (a transform on "
                    "the component) so that every admin entry is the program's.",
                )


def duplicates(graph: Graph) -> Iterator[Finding]:
    """The component creates inside itself what the program creates too: the second create fails
    (EKS: "ResourceInUseException: Addon already exists" / "access entry ... already in use"; IAM:
    EntityAlreadyExists for an OIDC provider of the same URL)."""
    for component in _components(graph):
        for child in _children_of(component):
            rule = _spec(component.type, child).get("duplicates")
            if not rule:
                continue
            for r in graph.of_type(rule["type"]):
                if r.parent == component.urn:
                    continue
                same = all(
                    r.get(k) is not None and r.get(k) == child["props"].get(k) for k in rule.get("same", [])
                )
                like = all(re.search(p, str(r.get(k, ""))) for k, p in rule.get("like", {}).items())
                if same and like:
                    yield _finding(
                        "component-duplicate",
                        Level.MANDATORY,
                        r.urn,
                        f"{r.type} {r.name} duplicates {child['name']}, which {component.type} "
                        f"{component.name} creates inside itself: the second create fails. Create it "
                        "in one place only (turn it off in the component's inputs, or drop the program's).",
                    )


def _normal(value: Any) -> Any:
    return None if value in ("", 0, {}, [], None) else value


def imports(graph: Graph) -> Iterator[Finding]:
    """An `import` whose declared inputs differ from what AWS holds (the program's recorded lookup)."""
    specs = data()["imports"]
    for r in sorted(graph.nodes.values(), key=lambda x: x.urn):
        spec = specs.get(r.type)
        if not r.import_id or not spec:
            continue
        held = next(
            (
                call.get("result")
                for call in graph.lookups
                if call.get("token") == spec["lookup"]
                and (call.get("args") or {}).get(spec["lookupKey"]) == r.get("name", r.import_id)
                and call.get("result") is not None
            ),
            None,
        )
        if held is None:
            yield _finding(
                "import-updates",
                Level.ADVISORY,
                r.urn,
                f"{r.type} {r.name} imports {r.import_id}, but the plan recorded no lookup of what AWS "
                f"holds there ({spec['lookup']}), so it cannot say what the import changes.",
            )
            continue
        differ = {
            key: (_normal(held.get(field)), _normal(r.get(key, spec["defaults"].get(key))))
            for key, field in spec["compare"].items()
            if r.get(key, spec["defaults"].get(key)) is not None
        }
        differ = {k: v for k, v in differ.items() if v[0] != v[1]}
        replaced = sorted(k for k in differ if k in spec["replaceOn"])
        if replaced:
            yield _finding(
                "import-replaces",
                Level.MANDATORY,
                r.urn,
                f"{r.type} {r.name} imports {r.import_id} but declares {', '.join(replaced)} unlike "
                "what AWS holds: the provider replaces on them, so the engine replaces what it just "
                "adopted (a fixed name: the create fails, or the delete loses what it held). Declare "
                f"what AWS holds for these ({spec['source']}).",
            )
        elif differ:
            yield _finding(
                "import-updates",
                Level.ADVISORY,
                r.urn,
                f"{r.type} {r.name} adopts {r.import_id} and then, in the same deployment, updates "
                f"{', '.join(sorted(differ))} to what the program declares (pulumi v3.174.0+ imports, "
                "then diffs and updates: pulumi/pulumi#19339).",
            )


RULES: tuple[Callable[[Graph], Iterator[Finding]], ...] = (creator_admin, duplicates, imports)


def check(graph: Graph) -> list[Finding]:
    """Every rule's findings, sorted by rule, resource and message."""
    found = [f for rule in RULES for f in rule(graph)]
    return sorted(set(found), key=lambda f: (f.rule, f.urn or "", f.message))


def reserved_after_delete(r: Registration) -> int:
    """Days AWS keeps a deleted resource's name taken (a secret's recovery window), 0 when none."""
    rule = data()["imports"].get(r.type, {}).get("reservedAfterDelete")
    if not rule:
        return 0
    days = r.get(rule["input"], rule["default"])
    return 0 if days == rule["free"] else int(days)


def destroyed(records: list[Registration], account: Account) -> Account:
    """What the account holds once the plan's stack is destroyed, starting from `account` (what it
    held before the stack's last `up`), as the account the next generation's `up` runs against.

    A retained resource stays as declared; a deleted one goes, except a name AWS keeps taken after
    the delete (a secret in its recovery window: `scheduledForDeletion`), and what EKS recreates
    after its cluster is deleted (`afterDestroy`) comes back with its defaults.
    """
    specs = data()["imports"]
    held = {
        spec["account"]: {n: dict(s) for n, s in getattr(account, spec["account"]).items()}
        for spec in specs.values()
    }
    for r in records:
        spec = specs.get(r.type)
        if not spec or not r.get("name"):
            continue
        names = held[spec["account"]]
        if r.retain_on_delete:
            names[r.get("name")] = {field: r.get(key) for key, field in spec["compare"].items()}
        elif reserved_after_delete(r):
            names[r.get("name")] = {"scheduledForDeletion": True}
        else:
            names.pop(r.get("name"), None)
    logs = held[specs["aws:cloudwatch/logGroup:LogGroup"]["account"]]
    for r in records:
        recreated = data()["afterDestroy"].get(r.type)
        if recreated and r.get("enabledClusterLogTypes"):
            logs.setdefault(recreated["logGroup"].format(clusterName=r.get("name")), dict(recreated["state"]))
    return Account(**held, generation=account.generation + 1)


def after_destroy(
    records: list[Registration], held: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The log groups AWS holds after the plan's stack is destroyed, starting from `held` (`destroyed`)."""
    return {name: dict(state) for name, state in destroyed(records, Account(held)).log_groups.items()}
