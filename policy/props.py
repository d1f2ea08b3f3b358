"""Reading engine properties the same way offline and under CrossGuard.

Under the real engine `args.props` is a read-only proxy (a `Mapping`/`Sequence`, not a dict or
list) that raises `UnknownValueError` when a rule reads a value unknown during preview; CrossGuard
then skips the policy for that resource with a note. So these helpers test for `Mapping` and
`Sequence`, never `dict` and `list`, and never swallow that error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# How the offline engine shows a secret (tools/mocks.py); the real engine hands policies plaintext.
MASKED = "[secret]"


def is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def get(node: Any, path: str | Sequence[str], default: Any = None) -> Any:
    """Read `a.b.0.c` (or a tuple of keys, for keys that contain dots) from nested props."""
    parts = path.split(".") if isinstance(path, str) else path
    for part in parts:
        if is_map(node) and part in node:
            node = node[part]
        elif is_list(node) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return default
    return node


def items(value: Any) -> list[Any]:
    """A list for a list, [] for nothing, [value] for a single value."""
    if value is None:
        return []
    return list(value) if is_list(value) else [value]


def truthy(value: Any) -> bool:
    """True for `True` and for the string "true" (pulumi_aws types some flags as strings)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def falsy(value: Any) -> bool:
    """Explicitly off: `False` or "false" (not missing)."""
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def document(value: Any) -> Mapping[str, Any] | None:
    """A JSON document input (an IAM policy, add-on configuration): parsed, or None if unreadable."""
    if is_map(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str) and value != MASKED:
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, value) pair under `node`, leaves and containers alike."""
    yield path, node
    if is_map(node):
        for key in node:
            yield from walk(node[key], (*path, str(key)))
    elif is_list(node):
        for i, value in enumerate(node):
            yield from walk(value, (*path, str(i)))


def dotted(path: Sequence[str]) -> str:
    return ".".join(path) or "(root)"
