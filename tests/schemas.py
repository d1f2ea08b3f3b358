"""Validation of rendered custom resources against the upstream CRD schemas.

The schemas are vendored in tests/fixtures/crd-schemas (a copy of the shared offline set, with its
provenance README and Apache-2.0 licence) so that a fresh clone tests without the shared set beside it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from tools.mocks import ROOT

SCHEMA_DIR = ROOT / "tests" / "fixtures" / "crd-schemas"
SHARED_DIR = ROOT.parent / "shared" / "schemas"


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    group, _, version = api_version.rpartition("/")
    path = SCHEMA_DIR / group / f"{kind.lower()}_{version}.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if `obj` (apiVersion, kind, metadata, spec) is invalid."""
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    jsonschema.validate(obj, schema, cls=jsonschema.Draft202012Validator)
