"""The configuration reference, generated from the config model (the single source of truth).

    python -m tools.config_reference          print the tables
    python -m tools.config_reference --write  rewrite them in docs/configuration.md between the markers

Two tables: every key of the model, and what `production: true` changes (stacks/profile.py).

tests/unit/test_docs.py fails when docs/configuration.md and the model disagree.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stacks import profile
from stacks.config import PROJECT, PlatformConfig
from tools.mocks import ROOT

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
PROFILE_START, PROFILE_END = "<!-- production-profile:start -->", "<!-- production-profile:end -->"
REFERENCE = ROOT / "docs" / "configuration.md"
# Keys the loader fills in itself rather than reading from the stack file.
_NOT_CONFIG = {"project", "stack"}


def _type_name(annotation: Any) -> str:  # noqa: PLR0911 (one return per kind of annotation)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + ", optional"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "map of string"
    if annotation is ipaddress.IPv4Network:
        return "CIDR"
    return {int: "integer", bool: "boolean", str: "string"}.get(
        annotation, getattr(annotation, "__name__", "?")
    )


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default is None:
        return "none"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, ipaddress.IPv4Network):
        value = str(value)
    if isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
        return ", ".join(f"`{getattr(v, 'name', '?')}`" for v in value)
    if isinstance(value, tuple):
        value = [str(v) for v in value]
    return f"`{json.dumps(value)}`"


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field holds, directly, as an optional, or as a list (suffix `[]`)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is tuple and args and _is_model(args[0]):
        return args[0], "[]"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _nested_model(args[0])
    return (annotation, "") if _is_model(annotation) else (None, "")


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def rows(model: type[BaseModel] = PlatformConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    out = []
    for name, field in model.model_fields.items():
        if name in _NOT_CONFIG:
            continue
        alias = field.alias or name
        nested, suffix = _nested_model(field.annotation)
        if nested is not None:
            if suffix:
                key = f"{PROJECT}:{prefix}{alias}"
                out.append((key, f"list of {nested.__name__}", _default(field), field.description or ""))
            out += rows(nested, f"{prefix}{alias}{suffix}.")
            continue
        key = "aws:region" if alias == "region" and not prefix else f"{PROJECT}:{prefix}{alias}"
        out.append((key, _type_name(field.annotation), _default(field), field.description or ""))
    return out


def table() -> str:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {d} | {desc} |" for k, t, d, desc in rows()]
    return "\n".join(lines)


def section() -> str:
    return f"{START}\n{table()}\n{END}"


def profile_table() -> str:
    lines = ["| what | `production: true` | otherwise |", "|---|---|---|"]
    lines += [f"| {what} | {prod} | {other} |" for what, prod, other in profile.rows()]
    return "\n".join(lines)


def profile_section() -> str:
    return f"{PROFILE_START}\n{profile_table()}\n{PROFILE_END}"


def document_section(text: str, start_marker: str = START, end_marker: str = END) -> str:
    start, end = text.index(start_marker), text.index(end_marker) + len(end_marker)
    return text[start:end]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in docs/configuration.md")
    args = parser.parse_args(argv)
    if not args.write:
        print(f"{table()}\n\n{profile_table()}")
        return 0
    text = REFERENCE.read_text()
    text = text.replace(document_section(text), section())
    text = text.replace(document_section(text, PROFILE_START, PROFILE_END), profile_section())
    REFERENCE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
