"""Render every Helm release of a plan with Helm's own engine (helm-python-sdk: Helm v4's Go SDK).

Reads the recorded `kubernetes:helm.sh/v3:Release` registrations (plan document resources: `urn`,
`type`, `inputs`), never the components: each release is rendered from the chart package of the
local cache (tools/charts.py, `make charts`) with exactly what it sends: its `values`, release `name`,
`namespace`, install mode (a first install: `.Release.IsInstall`), the cluster's Kubernetes version
from the plan's `eks:index:Cluster` (`.Capabilities.KubeVersion`), and, unless `skipCrds`, the CRDs of
the chart's `crds/` folders (Helm installs those before the templates).

`.Capabilities.APIVersions` holds the built-in APIs plus the CRDs of every release whose templates do
not ask for capabilities (CRD charts): releases are rendered in two rounds, each release once, so a
template gated on `.Capabilities.APIVersions.Has "monitoring.coreos.com/v1"` renders as on a cluster
where the platform's CRD releases are installed (the steady state, every upgrade after the first).

A release renders only when its package is in the cache and, when platform/charts-lock.yaml records
it, matches the locked sha256; otherwise it is listed as not rendered with the reason, and the plan
goes on. A package Helm refuses to render (a `fail` in a template, a values schema violation) is an
error naming the release, the chart and Helm's message.

Values the plan cannot show: a value recorded as a secret ("[secret]") is rendered as that placeholder
text and its path listed in `placeholders`; a release whose whole `values` map is secret is not
rendered. (Components keep secrets out of values: DESIGN.md.)
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
from helm_python import _native

from components.helm import ChartSpec
from tools.charts import LOCK_FILE, cache_dir, locked_sha, package_name, read_lock, sha256

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CLUSTER_TYPE = "eks:index:Cluster"
PLACEHOLDERS = ("[secret]",)
CRD_KIND = "CustomResourceDefinition"


# Helm's own split of a rendered template into YAML documents (helm/helm v4
# pkg/release/v1/util/manifest.go, `SplitManifests`).
_DOC_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


@dataclass(frozen=True, kw_only=True)
class ReleaseRequest:
    """What one recorded Helm release asks Helm to install."""

    urn: str
    release: str
    namespace: str
    chart: str
    version: str
    repo: str | None
    values: Any
    include_crds: bool

    @classmethod
    def from_resource(cls, resource: Mapping[str, Any]) -> ReleaseRequest:
        inputs = resource["inputs"]
        return cls(
            urn=resource["urn"],
            release=inputs["name"],
            namespace=inputs.get("namespace") or "default",
            chart=inputs["chart"],
            version=str(inputs["version"]),
            repo=(inputs.get("repositoryOpts") or {}).get("repo"),
            values=inputs.get("values") or {},
            include_crds=not inputs.get("skipCrds", False),
        )

    def head(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "release": self.release,
            "namespace": self.namespace,
            "chart": self.chart,
            "version": self.version,
        }


@dataclass(frozen=True, kw_only=True)
class RenderedRelease:
    """A release's objects as Helm renders them, sorted by apiVersion, kind, namespace, name."""

    request: ReleaseRequest
    objects: list[dict[str, Any]]
    placeholders: list[str] = field(default_factory=list)

    def kinds(self) -> dict[str, int]:
        """Object count by kind, sorted by kind."""
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
        return dict(sorted(counts.items()))

    def document(self) -> dict[str, Any]:
        doc = {**self.request.head(), "objects": self.objects}
        if self.placeholders:
            doc["placeholders"] = self.placeholders
        return doc


@dataclass(frozen=True, kw_only=True)
class NotRendered:
    """A release the plan could not render: `error` when Helm refused it, else no usable package."""

    request: ReleaseRequest
    reason: str
    error: bool

    def document(self) -> dict[str, Any]:
        return {**self.request.head(), "reason": self.reason, "error": self.error}


@dataclass(frozen=True, kw_only=True)
class RenderReport:
    kube_version: str | None
    rendered: list[RenderedRelease]
    not_rendered: list[NotRendered]

    @property
    def errors(self) -> list[NotRendered]:
        return [n for n in self.not_rendered if n.error]

    def document(self) -> dict[str, Any]:
        """The plan document's `rendered` and `notRendered` sections, sorted by URN."""
        return {
            "rendered": [r.document() for r in self.rendered],
            "notRendered": [n.document() for n in self.not_rendered],
        }


class RenderError(Exception):
    """Helm refused to render a chart; the message is Helm's."""


def kube_version(resources: Iterable[Mapping[str, Any]]) -> str | None:
    """The cluster's Kubernetes version recorded in the plan ("1.35"), None when it has no cluster."""
    for r in resources:
        if r["type"] == CLUSTER_TYPE and r["inputs"].get("version"):
            return str(r["inputs"]["version"])
    return None


def release_requests(resources: Iterable[Mapping[str, Any]]) -> list[ReleaseRequest]:
    """Every Helm release of the plan, sorted by URN."""
    found = [ReleaseRequest.from_resource(r) for r in resources if r["type"] == RELEASE_TYPE]
    return sorted(found, key=lambda q: q.urn)


def placeholder_paths(values: Any, path: str = "") -> list[str]:
    """Dotted paths of the values the plan shows only as a placeholder ("[secret]")."""
    if isinstance(values, Mapping):
        return [p for k, v in values.items() for p in placeholder_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(values, list):
        return [p for i, v in enumerate(values) for p in placeholder_paths(v, f"{path}.{i}")]
    return [path or "values"] if values in PLACEHOLDERS else []


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


def _locate(q: ReleaseRequest, cache: Path, lock: Mapping[str, Any]) -> Path | str:
    """The package to render `q` from, or why there is none."""
    archive = cache / package_name(q.chart, q.version)
    if not archive.exists():
        return f"no package {archive.name} in the chart cache (run `make charts`)"
    expected = locked_sha(lock, ChartSpec(chart=q.chart, version=q.version, repo=q.repo))
    if expected and sha256(archive) != expected:
        return f"{archive.name} does not match the sha256 in charts-lock.yaml (run `make charts`)"
    return archive


def _render_one(
    q: ReleaseRequest, archive: Path, version: str | None, api_versions: Iterable[str]
) -> RenderedRelease | NotRendered:
    if q.values in PLACEHOLDERS:
        return NotRendered(request=q, reason="its values are a secret in the plan", error=False)
    try:
        with helm_python.Chart.load(archive) as chart:
            objects = render_chart(
                chart,
                q.values,
                release=q.release,
                namespace=q.namespace,
                kube_version=version,
                api_versions=api_versions,
                include_crds=q.include_crds,
            )
    except (RenderError, helm_python.HelmError) as err:
        return NotRendered(request=q, reason=f"Helm: {err}", error=True)
    return RenderedRelease(request=q, objects=objects, placeholders=placeholder_paths(q.values))


def render_plan(
    resources: Iterable[Mapping[str, Any]], *, cache: Path | None = None, lock_file: Path = LOCK_FILE
) -> RenderReport:
    """Render every Helm release among the plan document's `resources` (see the module docstring)."""
    resources = list(resources)
    version = kube_version(resources)
    cache = cache or cache_dir()
    lock = read_lock(lock_file)
    results: dict[str, RenderedRelease | NotRendered] = {}
    first: list[tuple[ReleaseRequest, Path]] = []
    second: list[tuple[ReleaseRequest, Path]] = []
    for q in release_requests(resources):
        located = _locate(q, cache, lock)
        if isinstance(located, str):
            results[q.urn] = NotRendered(request=q, reason=located, error=False)
        else:
            (second if asks_api_versions(located) else first).append((q, located))
    # Helm's engine is Go behind ctypes, which releases the GIL: threads render in parallel.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for out in pool.map(lambda job: _render_one(job[0], job[1], version, ()), first):
            results[out.request.urn] = out
        crds = served_api_versions(
            o for r in results.values() if isinstance(r, RenderedRelease) for o in r.objects
        )
        for out in pool.map(lambda job: _render_one(job[0], job[1], version, crds), second):
            results[out.request.urn] = out
    ordered = [results[urn] for urn in sorted(results)]
    return RenderReport(
        kube_version=version,
        rendered=[r for r in ordered if isinstance(r, RenderedRelease)],
        not_rendered=[r for r in ordered if isinstance(r, NotRendered)],
    )
