"""Config errors as a stack file's author reads them: key path, value, why, and a fix where one is known.

`format_errors` turns pydantic's errors into `ConfigIssue`s keyed by the stack file's own names,
suggests the closest known key for an unknown one, and says "a list" or "a YAML object" where
pydantic would say "tuple" or "dictionary".
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from stacks.fields import closest, did_you_mean

# Config namespaces a stack file may use besides the project's own: `pulumi:` (engine options such
# as disable-default-providers) and `aws:` (the provider's region).
OTHER_NAMESPACES = ("aws", "pulumi")

_TYPE_MESSAGES = {
    "tuple_type": "must be a list (YAML: `[a, b]`, or one `- item` per line)",
    "list_type": "must be a list (YAML: `[a, b]`, or one `- item` per line)",
    "dict_type": "must be a YAML object (indented `key: value` lines)",
    "model_type": "must be a YAML object (indented `key: value` lines)",
    "model_attributes_type": "must be a YAML object (indented `key: value` lines)",
}


@dataclass(frozen=True)
class ConfigIssue:
    key: str
    value: Any
    message: str

    @property
    def shown_value(self) -> str:
        """The value as JSON, shortened so that one issue stays one readable line."""
        text = json.dumps(self.value, default=str)
        return text if len(text) <= 60 else text[:59] + "…"

    def __str__(self) -> str:
        return f"{self.key} = {self.shown_value}: {self.message}"


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; the message lists every problem."""

    def __init__(self, source: str, issues: list[ConfigIssue]):
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"{source}: {len(issues)} invalid configuration value(s):\n{lines}")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside `Model`, `Model | None` or `tuple[Model, ...]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (tuple, list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys a stack file may write at `loc` (the location of an unknown key's parent)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue  # an element of a list of objects
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        current = None if field is None else _model_of(field.annotation)
    if current is None:
        return []
    return sorted(f.alias or n for n, f in current.model_fields.items())


def unknown_key_message(key: str, known: list[str]) -> str:
    hint = did_you_mean(key, tuple(known)) or (f" (known keys: {', '.join(known)})" if known else "")
    return f"unknown key{hint}; see docs/configuration.md"


def unknown_namespace(full_key: str, project: str) -> str:
    """The message for a key of a namespace no one reads (`eks_platform:network`)."""
    namespace, _, key = full_key.partition(":")
    close = closest(namespace, (project, *OTHER_NAMESPACES))
    fix = f" (did you mean '{close}:{key}'?)" if close else ""
    return (
        f"unknown namespace {namespace!r}{fix}: nothing reads it, so its values would be ignored; "
        f"use {', '.join(f'{n}:' for n in (project, *OTHER_NAMESPACES[:-1]))} or {OTHER_NAMESPACES[-1]}:"
    )


def format_errors(err: ValidationError, namespace: str, model: type[BaseModel]) -> list[ConfigIssue]:
    """Turn pydantic's errors into issues keyed by the stack file's own names."""
    issues = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        if e["type"] == "cross_field":
            for sub, value, message in e["ctx"]["issues"]:
                key = f"{path}.{sub}" if path else sub
                issues.append(ConfigIssue(_qualify(key, namespace), value, message))
            continue
        msg = _TYPE_MESSAGES.get(e["type"], e["msg"].removeprefix("Value error, "))
        if e["type"] == "extra_forbidden":
            known = known_keys(model, e["loc"][:-1])
            if not e["loc"][:-1]:  # top level: the keys the loader fills in are not the file's
                known = [k for k in known if k not in ("project", "stack", "region")]
            msg = unknown_key_message(str(e["loc"][-1]), known)
        if e["type"] == "missing" and path == "region":
            msg = "required: the stack file sets no `aws:region` under `config:`"
        value = e["input"] if e["type"] != "missing" else None
        issues.append(ConfigIssue(_qualify(path, namespace), value, msg))
    return issues


def _qualify(path: str, namespace: str) -> str:
    if path == "region":
        return "aws:region"
    return f"{namespace}:{path}"
