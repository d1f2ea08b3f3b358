"""Documentation placeholders left in a stack file: values that plan fine and are wrong everywhere.

The committed stack files are examples: they use AWS's documentation account, the documentation
IP ranges of RFC 5737, the reserved domains of RFC 2606, an `example-org` GitHub/Pulumi
organization and identifiers ending in `EXAMPLE` (AWS's documentation style, as in
`AKIAIOSFODNN7EXAMPLE`; e.g. an OIDC client ID), so that they plan offline. `find()` lists every
such value with its key; the loader refuses them in a production stack on a real engine, and the
offline plan lists them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any

# The account ID in AWS's own documentation examples, and the one its IAM guides use.
_ACCOUNTS = re.compile(r"(?<!\d)(123456789012|111122223333)(?!\d)", re.ASCII)
_ORG = re.compile(r"(?<![\w-])example-org(?![\w-])", re.ASCII)
# An identifier in AWS's documentation style: upper-case EXAMPLE at the end of a token.
_EXAMPLE_ID = re.compile(r"[A-Za-z0-9]*EXAMPLE(?![A-Za-z0-9])", re.ASCII)
# RFC 2606 reserved second-level domains.
_DOMAIN = re.compile(r"(?<![\w-])example\.(com|org|net)(?![\w-])", re.ASCII)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d{1,2})?(?![\d.])", re.ASCII)
# The image tag a service's values file holds until an image is built or promoted into its stack
# (tools/new_service.py ZERO_TAG: forty zeros, the shape of a commit SHA).
_ZERO_TAG = re.compile(r"0{40}", re.ASCII)
# RFC 5737 documentation ranges (TEST-NET-1, -2, -3).
_DOC_NETS = tuple(ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))


# Each pattern a placeholder matches, with what it is (the first match names it).
_PATTERNS = (
    (_ACCOUNTS.search, "the AWS documentation account ID"),
    (_ORG.search, "the example organization"),
    (_DOMAIN.search, "a reserved example domain (RFC 2606)"),
    (_EXAMPLE_ID.search, "an EXAMPLE identifier (AWS documentation style)"),
    (_ZERO_TAG.fullmatch, "no image yet: the build (dev) or a promotion (other stacks) sets the tag"),
)


def why(value: str) -> str | None:
    """What makes `value` a documentation placeholder, or None."""
    for matches, reason in _PATTERNS:
        if matches(value):
            return reason
    for match in _IPV4.finditer(value):
        try:
            address = ipaddress.IPv4Address(match[1])
        except ValueError:
            continue
        if any(address in net for net in _DOC_NETS):
            return "a documentation IP range (RFC 5737)"
    return None


def _leaves(key: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(f"{key}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(f"{key}.{i}", v)
    elif isinstance(value, str):
        yield key, value


def find(raw: dict[str, str], secret_keys: frozenset[str] = frozenset()) -> list[tuple[str, str, str]]:
    """Every (key path, value, why) of the engine config that holds a placeholder, sorted by key.

    Object and list values arrive as JSON strings and are searched leaf by leaf; secrets are skipped.
    """
    found = []
    for full_key in sorted(raw):
        if full_key in secret_keys or full_key.startswith("pulumi:"):
            continue
        text = raw[full_key]
        try:
            value = json.loads(text) if text[:1] in ("{", "[") else text
        except json.JSONDecodeError:
            value = text
        for key, leaf in _leaves(full_key, value):
            reason = why(leaf)
            if reason:
                found.append((key, leaf, reason))
    return sorted(found)
