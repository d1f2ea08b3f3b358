"""Config errors as a stack file's author reads them: key path, value, why, and a fix where one is known.

`format_errors` turns pydantic's errors into `ConfigIssue`s keyed by the stack file's own names,
suggests the closest known key for an unknown one, and `translate` says what was expected in the
platform's words ("must be a whole number, got 'abc'", "required: <the field's description>",
"a list", "a YAML object") where pydantic would say "Input should be a valid integer", "Field
required", "tuple" or "dictionary".
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

import pulumi
import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from stacks.fields import closest, did_you_mean

# Config namespaces a stack file may use besides the project's own: `pulumi:` (engine options such
# as disable-default-providers) and `aws:` (the provider's region).
OTHER_NAMESPACES = ("aws", "pulumi")

_LIST = "must be a list (YAML: `[a, b]`, or one `- item` per line)"
_OBJECT = "must be a YAML object (indented `key: value` lines)"


def _got(value: Any) -> str:
    """The value given, as the stack file's author wrote it: text quoted, numbers and lists as YAML."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, default=str)


def _text_of(value: Any, wanted: str) -> str:
    """ ", got '2'", plus a hint when the value is quoted text of the wanted kind."""
    hint = ""
    if isinstance(value, str):
        if wanted == "number" and value.strip().lstrip("-").isdigit():
            hint = ": remove the quotes, YAML reads a quoted number as text"
        elif wanted == "bool" and value.lower() in ("true", "false"):
            hint = ": remove the quotes, YAML reads a quoted true/false as text"
    return f", got {_got(value)}{hint}"


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "less_than_equal": ("at most", "le"),
    "greater_than": ("more than", "gt"),
    "less_than": ("less than", "lt"),
}
_LENGTHS = {
    "string_too_short": ("at least", "min_length", "character"),
    "too_short": ("at least", "min_length", "entry"),
    "string_too_long": ("at most", "max_length", "character"),
    "too_long": ("at most", "max_length", "entry"),
}
# (expected, the kind of value for the "remove the quotes" hint)
_KINDS = {
    "int_type": ("must be a whole number", "number"),
    "int_parsing": ("must be a whole number", "number"),
    "int_from_float": ("must be a whole number", "number"),
    "float_type": ("must be a number", "number"),
    "float_parsing": ("must be a number", "number"),
    "bool_type": ("must be true or false", "bool"),
    "bool_parsing": ("must be true or false", "bool"),
    "string_type": ("must be text (quote it)", "text"),
}
_SHAPES = {
    "tuple_type": _LIST,
    "list_type": _LIST,
    "dict_type": _OBJECT,
    "model_type": _OBJECT,
    "model_attributes_type": _OBJECT,
}


def translate(kind: str, ctx: dict[str, Any], value: Any, message: str, description: str | None) -> str:
    """Pydantic's error (its `type` and `ctx`) in the platform's words; the one place that does it.

    `description` is the field's own (the config reference's) for a missing key.
    """
    if kind == "missing":
        what = (description or "").rstrip(".")
        return f"required: {what}" if what else "required"
    if kind in _KINDS:
        expected, wanted = _KINDS[kind]
        return expected + _text_of(value, wanted)
    if kind in _BOUNDS:
        words, name = _BOUNDS[kind]
        return f"must be {words} {ctx[name]}, got {_got(value)}"
    if kind in ("literal_error", "enum"):
        return f"must be {ctx['expected']}, got {_got(value)}"
    if kind in _LENGTHS:
        words, name, unit = _LENGTHS[kind]
        count = ctx[name]
        plural = unit if count == 1 else ("entries" if unit == "entry" else unit + "s")
        return f"must have {words} {count} {plural}"
    return _SHAPES.get(kind, message.removeprefix("Value error, "))


class _Absent:
    """The value of a key the stack file does not set."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class ConfigIssue:
    key: str
    value: Any
    message: str

    @property
    def shown_value(self) -> str:
        """The value as JSON, shortened so that one issue stays one readable line."""
        if self.value is ABSENT:
            return "(not set)"
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


def field_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    """The field a stack file's key path (`systemNodeGroup`, `instanceTypes`) names, if any."""
    current: type[BaseModel] | None = model
    field: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            continue  # an element of a list of objects
        if current is None:
            return None
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        current = _model_of(field.annotation)
    return field


def _entry_without_name(field: FieldInfo | None, value: Any) -> str | None:
    """A list of named entries given as an object: the first entry's `- name:` line was deleted.

    YAML then reads the entry's other keys as the list itself, and pydantic says "must be a list".
    """
    entry = None if field is None else _model_of(field.annotation)
    if entry is None or "name" not in entry.model_fields or not isinstance(value, dict) or not value:
        return None
    keys = {f.alias or n for n, f in entry.model_fields.items()}
    if "name" in value or not set(value) <= keys:
        return None
    return (
        f"missing `name`: each entry starts with `- name: <name>`; without that line, YAML reads "
        f"the entry's keys ({', '.join(value)}) as the list itself"
    )


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
        kind, ctx, value = e["type"], e.get("ctx") or {}, e["input"]
        if kind == "cross_field":
            for sub, shown, message in ctx["issues"]:
                key = f"{path}.{sub}" if path else sub
                issues.append(ConfigIssue(_qualify(key, namespace), shown, message))
            continue
        field = field_at(model, e["loc"])
        if kind in ("tuple_type", "list_type") and (missing := _entry_without_name(field, value)):
            issues.append(ConfigIssue(_qualify(f"{path}.0", namespace), value, missing))
            continue
        msg = translate(kind, ctx, value, e["msg"], None if field is None else field.description)
        if kind == "extra_forbidden":
            known = known_keys(model, e["loc"][:-1])
            if not e["loc"][:-1]:  # top level: the keys the loader fills in are not the file's
                known = [k for k in known if k not in ("project", "stack", "region")]
            msg = unknown_key_message(str(e["loc"][-1]), known)
        if kind == "missing" and path == "region":
            msg = "required: the stack file sets no `aws:region` under `config:`"
        issues.append(ConfigIssue(_qualify(path, namespace), ABSENT if kind == "missing" else value, msg))
    return issues


def _qualify(path: str, namespace: str) -> str:
    if path == "region":
        return "aws:region"
    return f"{namespace}:{path}"


def repeated_key(node: yaml.Node, path: str = "") -> tuple[yaml.Mark, str] | None:
    """The first key a YAML mapping sets twice, with where and what it likely means.

    PyYAML keeps the last value silently (the Pulumi CLI refuses the file). In a list of named
    entries a repeated key almost always means a deleted `- name:` line: the next entry's keys
    then continue the one before it.
    """
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                first = seen[key].start_mark.line + 1
                list_path, _, index = path.rpartition(".")
                if index.isdigit():
                    why = (
                        f"`{key}` is set twice in {path} (first on line {first}): if the `- name:` line "
                        f"of the entry after it was deleted, {list_path}.{int(index) + 1} is missing `name`"
                    )
                else:
                    why = f"`{key}` is set twice in {path or 'the file'} (first on line {first})"
                return key_node.start_mark, why
            seen[key] = key_node
            inner = key if path in ("", "config") else f"{path}.{key}"
            found = repeated_key(value_node, "" if path == "" and key == "config" else inner)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = repeated_key(item, f"{path}.{i}")
            if found:
                return found
    return None
