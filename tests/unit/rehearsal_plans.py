"""Small synthetic plans for the rehearsal tests: registrations built by hand, and plan mutations."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from model.records import PlanResult, Registration

AWS = "urn:pulumi:s::p::pulumi:providers:aws::aws"
K8S = "urn:pulumi:s::p::pulumi:providers:kubernetes::k8s"


def reg(
    name: str,
    typ: str,
    *deps: str,
    inputs: dict[str, Any] | None = None,
    provider: str | None = None,
    custom: bool = True,
    parent: str | None = None,
    protect: bool = False,
) -> Registration:
    """A registration with URN `urn:pulumi:s::p::<typ>::<name>`; `deps` are names of other `reg`s."""
    return Registration(
        urn=urn(typ, name),
        type=typ,
        name=name,
        parent=parent,
        custom=custom,
        provider=f"{provider}::id" if provider else None,
        providers={},
        protect=protect,
        retain_on_delete=False,
        dependencies=list(deps),
        raw_inputs=inputs or {},
    )


def urn(typ: str, name: str) -> str:
    return f"urn:pulumi:s::p::{typ}::{name}"


def mutate(
    plan: PlanResult,
    change: Callable[[Registration], Registration | None],
    match: Callable[[Registration], bool],
) -> PlanResult:
    """A copy of `plan` in which every matching registration is replaced by `change(copy)`
    (dropped when it returns None)."""
    records = []
    for r in plan.records:
        if match(r):
            changed = change(dataclasses.replace(r, raw_inputs=copy.deepcopy(r.raw_inputs)))
            if changed is not None:
                records.append(changed)
        else:
            records.append(r)
    return dataclasses.replace(plan, records=records)
