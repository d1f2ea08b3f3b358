"""The plan document's records: what the offline engine (tools/mocks.py) recorded.

A `Registration` is one RegisterResource request; a `PlanResult` is one run of the program (its
registrations, outputs, warnings and provider lookups), and its `document()` is the plan document
(the schema the tests validate it against: tests/schemas.py). `Account` is what AWS holds before a
run. Secrets keep the engine's wire form in `raw_inputs`; `inputs` masks them, `reveal` unwraps
them. No engine and no CLI here: the engine fills these records, the analyses (analysis/, policy/)
judge them, the tools print them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The SDK's wire signatures (pulumi/runtime/rpc.py): a secret is {SECRET_SIG: SECRET_VALUE, "value": ...}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
MASKED = "[secret]"


def unsecret(value: Any) -> Any:
    """Replace every secret inside an engine value with the string "[secret]"."""
    if isinstance(value, Mapping):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return MASKED
        return {k: unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsecret(v) for v in value]
    return value


def reveal(value: Any) -> Any:
    """Unwrap secrets (for tests that must see the real value, e.g. to scan for leaks)."""
    if isinstance(value, Mapping):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return reveal(value.get("value"))
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def _unwrapped(value: Any) -> Any:
    """The value inside a secret (and inside a secret inside it), not revealed below that."""
    while isinstance(value, Mapping) and value.get(SECRET_SIG) == SECRET_VALUE:
        value = value.get("value")
    return value


@dataclass
class Registration:
    """One RegisterResource request, as the engine received it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    provider: str | None
    providers: dict[str, str]
    protect: bool
    retain_on_delete: bool
    dependencies: list[str]
    raw_inputs: dict[str, Any]
    # The `import` ID the program set (ResourceOptions.import_), if any.
    import_id: str | None = None
    # The inputs the engine keeps from the state after creation (ResourceOptions.ignore_changes).
    ignore_changes: list[str] = field(default_factory=list)
    # A packaged component's children as the offline engine built them from
    # platform/component-internals.yaml and the component's transforms changed them (analysis/internals.py).
    children: list[dict[str, Any]] = field(default_factory=list)

    @property
    def inputs(self) -> dict[str, Any]:
        """Inputs with every secret replaced by "[secret]"."""
        masked: dict[str, Any] = unsecret(self.raw_inputs)
        return masked

    def get(self, path: str, default: Any = None) -> Any:
        """Read a dotted path (`vpcConfig.endpointPublicAccess`, `taints.0.key`) from the inputs.

        Each step unwraps only the secret around the node it indexes, and the value found is
        revealed whole: what `reveal(inputs)` holds at the path, without copying the rest of the
        inputs at every step (a release's values are thousands of nodes)."""
        node: Any = self.raw_inputs
        for part in path.split("."):
            node = _unwrapped(node)
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return default
        return reveal(node)

    def document(self) -> dict[str, Any]:
        """This resource in the plan document's format (DESIGN.md, plan.schema.json)."""
        extra: dict[str, Any] = {"importId": self.import_id} if self.import_id else {}
        if self.children:
            extra["children"] = self.children
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "provider": self.provider,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "dependencies": self.dependencies,
            "inputs": self.inputs,
        } | extra


@dataclass(frozen=True)
class Account:
    """What the AWS account holds before the program runs: a fresh account by default. A test
    replays a destroy followed by an `up` by passing what the destroy left (analysis/internals.py
    `after_destroy`) and the next generation (AWS gives a rebuilt stack's keys new IDs)."""

    log_groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    generation: int = 0
    # ECR repositories and Secrets Manager secrets by name, with what they hold (as the lookups
    # answer it). A secret with `scheduledForDeletion` is one a destroy deleted with a recovery
    # window: its name stays taken, and ListSecrets and DescribeSecret-based reads do not see it.
    repositories: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class PlanResult:
    project: str
    stack: str
    records: list[Registration]
    outputs: dict[str, Any]
    secret_outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    # Provider functions the program called (token and arguments), sorted; see PlatformMocks.lookups.
    lookups: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.records if r.type == typ]

    def one(self, typ: str) -> Registration:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {len(found)}"
        return found[0]

    def urns(self) -> list[str]:
        return [r.urn for r in self.records]

    def document(self) -> dict[str, Any]:
        return {
            "format": 1,
            "project": self.project,
            "stack": self.stack,
            "resources": [r.document() for r in self.records],
            "outputs": {k: MASKED if k in self.secret_outputs else v for k, v in self.outputs.items()},
            "warnings": self.warnings,
            "lookups": self.lookups,
        }
