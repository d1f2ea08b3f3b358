"""Validation of custom resources against their CRD schemas, for the tests.

Each CRD's schema comes from the pulled package of the very chart version the platform pins
(platform/charts.yaml, in the chart cache of `make charts`: the chart's `crds/` files and its
templates rendered with the chart's defaults), converted as analysis/validate.py converts it. A kind
no cached package defines is read from the offline schema set beside the checkout
(`ROOT.parent / "shared" / "schemas"`); where neither has it, the test is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import helm_python
import jsonschema
import pytest

from analysis.helm import RenderError, load_objects, render_chart
from analysis.validate import SHARED_SCHEMAS, crd_schemas, file_schema
from model.charts import cache_dir, package_name
from stacks.data import chart_specs

SHARED_DIR = SHARED_SCHEMAS


@functools.cache
def package_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """CRD schemas by (apiVersion, kind) from every pinned chart package in the cache."""
    objects: list[dict[str, Any]] = []
    for spec in chart_specs().values():
        archive = cache_dir() / package_name(spec.chart, spec.version)
        if not archive.exists():
            continue
        with helm_python.Chart.load(archive) as chart:
            objects += load_objects({c["filename"]: c["data"] for c in chart.crds})
            # A chart that needs values to render its templates still counts its crds/ files.
            with contextlib.suppress(RenderError):
                objects += render_chart(chart, {}, release="crds", namespace="crds", kube_version=None)
    return crd_schemas(objects)


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    schema = package_schemas().get((api_version, kind)) or file_schema(SHARED_DIR, api_version, kind)
    if schema is None:
        pytest.skip(
            f"no CRD schema for {kind} ({api_version}): no pinned chart package in {cache_dir()} "
            f"defines it (run `make charts`) and {SHARED_DIR} has no copy"
        )
    return schema


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    """One checked validator per kind: `jsonschema.validate` checks the (large) schema itself on
    every call, which was a tenth of the suite's time."""
    schema = crd_schema(api_version, kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if `obj` (apiVersion, kind, metadata, spec) is invalid."""
    error = jsonschema.exceptions.best_match(crd_validator(obj["apiVersion"], obj["kind"]).iter_errors(obj))
    if error is not None:
        raise error
