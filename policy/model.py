"""The shape of a rule: what it checks, how strict it is per environment, and where it comes from.

A rule is a plain function plus metadata. Resource rules see one resource at a time:
`(resource type, props, context) -> [violation message]`. Stack rules see every resource:
`(resources, context) -> [(urn or None, violation message)]`. `props` are the engine's input names
(camelCase), the same under `pulumi preview --policy-pack policy` (`args.props`) and in the
offline plan (`Registration.inputs`). The same functions back both runners (policy/crossguard.py,
tools/policy_check.py), so a rule is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

SourceKind = Literal[
    "checkov",
    "cis-eks",
    "cis-aws",
    "eks-bpg",
    "aws-docs",
    "karpenter",
    "argocd",
    "external-secrets",
    "platform",
    "pulumi-docs",
    "kubernetes-docs",
]


class Level(StrEnum):
    """How a violation is treated: `mandatory` blocks a deployment, `advisory` only reports."""

    MANDATORY = "mandatory"
    ADVISORY = "advisory"


@dataclass(frozen=True)
class Source:
    """Where a rule comes from. `ref` is the framework's own id (`CKV_AWS_58`, `5.4.2`) or a page."""

    kind: SourceKind
    ref: str

    def __str__(self) -> str:
        names = {
            "checkov": "checkov",
            "cis-eks": "CIS EKS",
            "cis-aws": "CIS AWS Foundations",
            "eks-bpg": "EKS Best Practices Guide:",
            "aws-docs": "AWS docs:",
            "karpenter": "Karpenter docs:",
            "argocd": "Argo CD docs:",
            "external-secrets": "External Secrets Operator:",
            "platform": "platform",
            "pulumi-docs": "Pulumi docs:",
            "kubernetes-docs": "Kubernetes docs:",
        }
        return f"{names[self.kind]} {self.ref}"


def checkov(*ids: str) -> tuple[Source, ...]:
    return tuple(Source("checkov", i) for i in ids)


def cis(*sections: str) -> tuple[Source, ...]:
    """CIS Amazon EKS Benchmark section numbers (`5.4.2`)."""
    return tuple(Source("cis-eks", s) for s in sections)


def bpg(*topics: str) -> tuple[Source, ...]:
    """AWS EKS Best Practices Guide topics (`Security > Data encryption and secrets management`)."""
    return tuple(Source("eks-bpg", t) for t in topics)


@dataclass(frozen=True)
class Context:
    """What a rule may know besides the resource: whether the stack is a production stack."""

    production: bool


@dataclass(frozen=True)
class Resource:
    """One resource as a stack rule sees it."""

    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    # The `protect` resource option (CrossGuard: PolicyResource.opts.protect; offline: the registration).
    protect: bool = False
    # The `retain_on_delete` option where it is known: the offline plan records it; CrossGuard's
    # resource options carry no such field (pulumi_policy 1.21.0 PolicyResourceOptions), so under
    # `pulumi preview --policy-pack` it is None and rules on it stay silent.
    retain_on_delete: bool | None = None


ResourceCheck = Callable[[str, Mapping[str, Any], Context], Iterable[str]]
StackCheck = Callable[[Sequence[Resource], Context], Iterable[tuple[str | None, str]]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Metadata shared by both kinds of rule.

    `prod` is the level on a production stack; `dev` the level elsewhere, or None when the rule
    does not apply outside production (it is then not evaluated at all, and CrossGuard gets the
    policy as disabled).
    """

    name: str
    description: str
    sources: tuple[Source, ...]
    prod: Level
    dev: Level | None

    def level(self, production: bool) -> Level | None:
        return self.prod if production else self.dev


@dataclass(frozen=True, kw_only=True)
class ResourceRule(Rule):
    types: frozenset[str]
    check: ResourceCheck

    def evaluate(self, typ: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
        return list(self.check(typ, props, ctx)) if typ in self.types else []


@dataclass(frozen=True, kw_only=True)
class StackRule(Rule):
    check: StackCheck

    def evaluate(self, resources: Sequence[Resource], ctx: Context) -> list[tuple[str | None, str]]:
        return list(self.check(resources, ctx))


@dataclass
class RuleSet:
    """The rules of one module, registered by decorators in definition order."""

    rules: list[ResourceRule | StackRule] = field(default_factory=list)

    def resource(
        self,
        name: str,
        *,
        types: Iterable[str],
        description: str,
        sources: Iterable[Source],
        prod: Level,
        dev: Level | None,
    ) -> Callable[[ResourceCheck], ResourceCheck]:
        def register(fn: ResourceCheck) -> ResourceCheck:
            self.rules.append(
                ResourceRule(
                    name=name,
                    description=description,
                    sources=tuple(sources),
                    prod=prod,
                    dev=dev,
                    types=frozenset(types),
                    check=fn,
                )
            )
            return fn

        return register

    def stack(
        self, name: str, *, description: str, sources: Iterable[Source], prod: Level, dev: Level | None
    ) -> Callable[[StackCheck], StackCheck]:
        def register(fn: StackCheck) -> StackCheck:
            self.rules.append(
                StackRule(
                    name=name, description=description, sources=tuple(sources), prod=prod, dev=dev, check=fn
                )
            )
            return fn

        return register
