"""Helm's engine for the plan and the tests: render a chart as `helm install` would, offline.

helm-python-sdk (`import helm_python`, Helm v4's Go SDK behind ctypes; no helm binary) loads the
chart and renders it; this module adds what an install adds and the SDK's `Chart.render` leaves out:
the cluster's Kubernetes version and API versions as capabilities, the CRDs of `crds/` folders,
Helm's own split of the rendered text into objects, and no NOTES.txt or test hooks.

    with helm_python.Chart.load("charts/microservice") as chart:
        objects = render_chart(chart, values, release="catalog", namespace="catalog", kube_version="1.35")

Every function is pure apart from the chart handle; errors are RenderError with Helm's message.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python
from helm_python import _native

CRD_KIND = "CustomResourceDefinition"

# Helm's own split of a rendered template into YAML documents (helm/helm v4
# pkg/release/v1/util/manifest.go, `SplitManifests`).
_DOC_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


class RenderError(Exception):
    """Helm refused to render a chart; the message is Helm's."""


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    fields = (obj.get("apiVersion"), obj.get("kind"), meta.get("namespace"), meta.get("name"))
    return tuple(str(f) for f in fields)  # type: ignore[return-value]


def _is_test_hook(obj: Mapping[str, Any]) -> bool:
    """`helm.sh/hook: test` objects run only on `helm test`, never on install."""
    hooks = ((obj.get("metadata") or {}).get("annotations") or {}).get("helm.sh/hook", "")
    return bool(hooks) and all(h.strip().startswith("test") for h in str(hooks).split(","))


def load_objects(manifests: Mapping[str, str]) -> list[dict[str, Any]]:
    """Parse Helm's rendered manifests (template path -> YAML text) into sorted Kubernetes objects.

    Split as Helm splits them and parsed by Helm's own YAML-to-JSON converter (sigs.k8s.io/yaml,
    through `helm_python.values_from_yaml`): the same reading as the install, and ten times faster
    than PyYAML on the CRDs (a bare `=`, which PyYAML's YAML 1.1 resolver cannot load, is a string).
    Drops NOTES.txt, empty documents and test hooks (`helm.sh/hook: test`), as an install does.
    Raises RenderError naming the template when a document is not a Kubernetes object.
    """
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in _DOC_SEPARATOR.split(text.strip()):
            try:
                obj = helm_python.values_from_yaml(doc) if doc.strip() else {}
            except helm_python.HelmError as err:
                raise RenderError(f"{path} renders invalid YAML: {err}") from err
            if not obj:
                continue  # a document of comments only, or a template rendered empty
            if not {"apiVersion", "kind", "metadata"} <= obj.keys():
                raise RenderError(f"{path} renders a document that is not a Kubernetes object: {doc:.120}")
            if not _is_test_hook(obj):
                objects.append(obj)
    return sorted(objects, key=_sort_key)


def render_chart(
    chart: helm_python.Chart,
    values: Mapping[str, Any],
    *,
    release: str,
    namespace: str,
    kube_version: str | None,
    api_versions: Iterable[str] = (),
    include_crds: bool = True,
) -> list[dict[str, Any]]:
    """Render a loaded chart as `helm install` would (first install), sorted objects out.

    `kube_version` ("1.35" or "v1.35.0") sets `.Capabilities.KubeVersion` (None: Helm's default, the
    newest its client libraries know); `api_versions` adds
    group/versions to `.Capabilities.APIVersions`. `include_crds` adds the `crds/` files of the chart
    and its subcharts. Raises RenderError with Helm's message when Helm refuses the values or a
    template fails.
    """
    opts: dict[str, Any] = {"name": release, "namespace": namespace, "is_install": True}
    if kube_version:
        version = kube_version if kube_version.startswith("v") else f"v{kube_version}"
        opts["kube_version"] = version + ".0" if version.count(".") == 1 else version
    if api_versions:
        opts["api_versions"] = sorted(set(api_versions))
    try:
        # Chart.render() in helm-python-sdk 0.2.2 does not expose kube_version/api_versions, which
        # its native render options accept (tests/unit/test_render.py proves both take effect).
        raw = _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts))
        manifests: dict[str, str] = json.loads(raw)
        crds = chart.crds if include_crds else []
    except helm_python.HelmError as err:
        raise RenderError(str(err)) from err
    manifests.update({f"crds:{c['name']}/{c['filename']}": c["data"] for c in crds})
    return load_objects(manifests)


def asks_api_versions(archive: Path) -> bool:
    """Whether any template of the package (subcharts included) reads `.Capabilities.APIVersions`."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and "/templates/" in member.name:
                data = tar.extractfile(member)
                if data is not None and b"APIVersions" in data.read():
                    return True
    return False


def served_api_versions(objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """`group/version` of every served version of the CustomResourceDefinitions among `objects`."""
    out: set[str] = set()
    for obj in objects:
        if obj.get("kind") == CRD_KIND:
            spec = obj.get("spec") or {}
            out |= {f"{spec['group']}/{v['name']}" for v in spec.get("versions", []) if v.get("served")}
    return out
