"""Validate every rendered Helm object against the schema the API server would use.

Reads the plan document's `rendered` section (analysis/render.py) and the cluster's Kubernetes
version; adds the `validation` section:

- built-in kinds against Kubernetes' own OpenAPI schemas for that version, as shipped by
  kubernetes-validate (its `-strict` set: an unknown field is an error, as with kubectl's default
  strict field validation; file layout as in `kubernetes_validate.utils.validate`, 1.37.0);
- custom resources against the `openAPIV3Schema` of their CustomResourceDefinition, taken from the
  rendered objects of the plan itself (the very chart version that installs the CRD), else from a
  folder of offline JSON Schemas laid out `<group>/<kind>_<version>.json` (`schema_dir`);
- anything else is listed under `unknownKinds`, never silently passed.

CRD schemas are converted as the offline schema set converts them: int-or-string and nullable become
JSON Schema types, objects with `properties` are closed unless they preserve unknown fields,
`required` keys with a `default` are dropped (the API server defaults first), and a pattern Python
cannot compile (Go RE2 syntax) is not enforced. CEL rules, list-type uniqueness and formats are not
checked (the API server still will).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv  # type: ignore[import-untyped]
from packaging.version import Version
from referencing import Registry, Resource

from model.charts import ROOT

SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"
_OWN_SOURCE = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One object that does not validate: where it comes from, the failing path and the message."""

    urn: str
    release: str
    object: str
    path: str
    message: str
    source: str

    def document(self) -> dict[str, str]:
        return {
            "urn": self.urn,
            "release": self.release,
            "object": self.object,
            "path": self.path,
            "message": self.message,
            "schema": self.source,
        }


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    kube_version: str
    checked: int
    problems: list[Problem]
    unknown_kinds: dict[str, list[str]]  # "apiVersion kind" -> releases rendering it

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ValidationReport:
        return cls(
            kube_version=doc["kubernetesVersion"],
            checked=doc["checked"],
            problems=[
                Problem(
                    **{k: p[k] for k in ("urn", "release", "object", "path", "message")}, source=p["schema"]
                )
                for p in doc["problems"]
            ],
            unknown_kinds={u["kind"]: u["releases"] for u in doc["unknownKinds"]},
        )

    def document(self) -> dict[str, Any]:
        return {
            "kubernetesVersion": self.kube_version,
            "checked": self.checked,
            "problems": [p.document() for p in self.problems],
            "unknownKinds": [{"kind": k, "releases": v} for k, v in sorted(self.unknown_kinds.items())],
        }


def schema_version(kube_version: str | None) -> str:
    """The newest schema set kubernetes-validate ships not newer than `kube_version` (None: newest)."""
    if kube_version is None:
        return str(kv.latest_version())
    wanted = Version(kv.major_minor(kube_version.removeprefix("v")))
    usable = [v for v in kv.all_versions() if Version(kv.major_minor(v)) <= wanted]
    if not usable:
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {kube_version}")
    return str(usable[-1])


@functools.cache
def _definitions(version: str) -> Registry:
    defs = kv.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version)
    return Resource.from_contents(defs) @ Registry()


@functools.cache
def builtin_validator(version: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """Kubernetes' own schema for a built-in kind, None when `api_version`/`kind` is not built in."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    name = f"kubernetes-json-schema/v{version}-local-strict/{kind.lower()}-{group_version}.json"
    try:
        schema = kv.schema_contents(name, version)
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ _definitions(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _convert(node: Any) -> Any:
    """One CRD openAPIV3Schema node as JSON Schema (see the module docstring)."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("properties", "pattern")}
    if "properties" in node:
        out["properties"] = {k: _convert(v) for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string") and "type" not in node:
        out["type"] = ["integer", "string"]
        out.pop("anyOf", None)
    if node.get("nullable") and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    if "required" in node and "properties" in node:
        out["required"] = [r for r in node["required"] if "default" not in node["properties"].get(r, {})]
    if "pattern" in node:
        try:
            re.compile(node["pattern"])
            out["pattern"] = node["pattern"]
        except re.error:
            pass  # Go RE2 syntax Python cannot compile: not enforced here
    return out


def crd_schemas(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """JSON Schemas by (apiVersion, kind) for every served version of the CRDs among `objects`."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        for version in spec.get("versions", []):
            raw = (version.get("schema") or {}).get("openAPIV3Schema")
            if version.get("served") and raw:
                schema = _convert(raw)
                # The CRD's `metadata: {type: object}` stays open: ObjectMeta is the API server's.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = {
                    "$schema": _DIALECT,
                    **schema,
                }
    return out


def file_schema(schema_dir: Path, api_version: str, kind: str) -> dict[str, Any] | None:
    """An offline schema `<group>/<kind>_<version>.json` from `schema_dir`, None when absent."""
    group, _, version = api_version.rpartition("/")
    path = schema_dir / group / f"{kind.lower()}_{version}.json"
    if not group or not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def validate_rendered(
    rendered: Iterable[Mapping[str, Any]],
    kube_version: str | None,
    *,
    schema_dir: Path | None = SHARED_SCHEMAS,
    memo: Path | None = None,
) -> ValidationReport:
    """Validate the objects of every `rendered` entry ({urn, release, objects}) of a plan document.

    With `memo` (a folder), the report of the very same inputs (objects, Kubernetes schema version,
    offline schema files, this module's code, kubernetes-validate's version) is read back from it.
    """
    entries = list(rendered)
    version = schema_version(kube_version)
    if memo is None:
        return _validate(entries, version, schema_dir)
    schemas = sorted(
        (str(p), p.stat().st_size, p.stat().st_mtime_ns)
        for p in (schema_dir or Path("/nonexistent")).rglob("*.json")
    )
    key = json.dumps([_OWN_SOURCE, kv.__version__, version, schemas, entries], sort_keys=True, default=str)
    path = memo / f"validation-{hashlib.sha256(key.encode()).hexdigest()}.json"
    if path.exists():
        return ValidationReport.from_document(json.loads(path.read_text(encoding="utf-8")))
    report = _validate(entries, version, schema_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report.document()), encoding="utf-8")
    tmp.replace(path)
    return report


def _validate(entries: list[Mapping[str, Any]], version: str, schema_dir: Path | None) -> ValidationReport:
    crds = crd_schemas(o for e in entries for o in e["objects"])
    custom: dict[tuple[str, str], tuple[jsonschema.Draft202012Validator, str] | None] = {}
    problems: list[Problem] = []
    unknown: dict[str, set[str]] = {}
    checked = 0
    for entry in entries:
        for obj in entry["objects"]:
            api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
            builtin = builtin_validator(version, api_version, kind)
            if builtin is not None:
                found: tuple[jsonschema.Draft202012Validator, str] | None = (builtin, f"Kubernetes {version}")
            else:
                key = (api_version, kind)
                if key not in custom:
                    custom[key] = _custom_validator(key, crds, schema_dir)
                found = custom[key]
            if found is None:
                unknown.setdefault(f"{api_version} {kind}", set()).add(entry.get("release") or entry["urn"])
                continue
            checked += 1
            validator, source = found
            for err in sorted(validator.iter_errors(obj), key=lambda e: e.json_path):
                problems.append(
                    Problem(
                        urn=entry["urn"],
                        release=entry.get("release", ""),
                        object=_describe(obj),
                        path=err.json_path,
                        message=err.message[:300],
                        source=source,
                    )
                )
    return ValidationReport(
        kube_version=version,
        checked=checked,
        problems=problems,
        unknown_kinds={k: sorted(v) for k, v in sorted(unknown.items())},
    )


def _custom_validator(
    key: tuple[str, str], crds: Mapping[tuple[str, str], dict[str, Any]], schema_dir: Path | None
) -> tuple[jsonschema.Draft202012Validator, str] | None:
    if key in crds:
        return jsonschema.Draft202012Validator(crds[key]), "CRD rendered in the plan"
    schema = file_schema(schema_dir, *key) if schema_dir else None
    if schema is None:
        return None
    return jsonschema.Draft202012Validator(schema), f"offline schema {key[0].rpartition('/')[0]}"
