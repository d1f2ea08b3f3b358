"""Reading IAM policy documents: statements, actions, principals and conditions.

Key policies, queue policies, trust policies and identity policies share this grammar; the rules
decide which of them they read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from policy.props import document, get, is_map, items

# Read verbs: safe on "*" unless they read data (see DATA_SERVICES).
READ_VERBS = ("Describe", "List", "Get", "BatchGet")
# Services whose Get* returns data or secrets (data exfiltration when granted on "*").
DATA_SERVICES = frozenset({"secretsmanager", "ssm", "s3", "kms", "dynamodb", "sqs"})
# Actions AWS only authorizes on "*" (no resource-level permissions).
STAR_ONLY = frozenset({"ecr:getauthorizationtoken", "sts:getcalleridentity", "pricing:getproducts"})
# Condition keys that scope a "*" resource to tagged resources (attribute-based access control), or
# EC2 tagging to the call that creates the resource (`ec2:CreateAction` exists only there).
SCOPING_KEY = re.compile(
    r"(^|:)(ResourceTag|RequestTag)/|^kms:ViaService$|^aws:SourceArn$|^ec2:CreateAction$", re.IGNORECASE
)


def statements(value: Any) -> list[Mapping[str, Any]]:
    """The statements of a policy document given as a JSON string or a map."""
    doc = document(value)
    if doc is None:
        return []
    return [s for s in items(get(doc, "Statement")) if is_map(s)]


def allows(statement: Mapping[str, Any]) -> bool:
    return bool(get(statement, "Effect") == "Allow")


def actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in items(get(statement, "Action"))]


def resources(statement: Mapping[str, Any]) -> list[str]:
    return [str(r) for r in items(get(statement, "Resource"))]


def principals(statement: Mapping[str, Any], kind: str) -> list[str]:
    """Principals of one kind (`AWS`, `Service`, `Federated`); `Principal: "*"` counts as `AWS: *`."""
    principal = get(statement, "Principal")
    if principal == "*":
        return ["*"] if kind == "AWS" else []
    return [str(p) for p in items(get(principal, kind))] if is_map(principal) else []


def public_principal(statement: Mapping[str, Any]) -> bool:
    return "*" in principals(statement, "AWS")


def conditions(statement: Mapping[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    """(operator, key, values) for every condition of a statement."""
    block = get(statement, "Condition")
    if not is_map(block):
        return
    for operator in block:
        entries = block[operator]
        if is_map(entries):
            for key in entries:
                yield str(operator), str(key), [str(v) for v in items(entries[key])]


def condition_values(
    statement: Mapping[str, Any], key: str, operator: str = "StringEquals"
) -> list[str] | None:
    """Values of `key` under exactly `operator` (case-insensitive key), or None when absent."""
    for op, k, values in conditions(statement):
        if op == operator and k.lower() == key.lower():
            return values
    return None


def has_scoping_condition(statement: Mapping[str, Any]) -> bool:
    return any(SCOPING_KEY.search(key) for _, key, _ in conditions(statement))


def split(action: str) -> tuple[str, str]:
    service, _, verb = action.partition(":")
    return service.lower(), verb


def is_read(action: str) -> bool:
    """A read that is harmless on "*": Describe*/List*/Get* outside the data services."""
    service, verb = split(action)
    if action.lower() in STAR_ONLY:
        return True
    if not verb.startswith(READ_VERBS):
        return False
    return service not in DATA_SERVICES
