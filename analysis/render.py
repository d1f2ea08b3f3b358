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

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python

from analysis import helm as analysis_helm
from analysis.helm import RenderError, asks_api_versions, render_chart, served_api_versions
from components.helm import ChartSpec
from model.charts import cache_dir, locked_sha, package_name, sha256
from stacks.data import LOCK_FILE, read_lock

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CLUSTER_TYPE = "eks:index:Cluster"
PLACEHOLDERS = ("[secret]",)


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


@dataclass(frozen=True, kw_only=True)
class Package:
    """A chart package of the cache, its sha256, and whether its templates read capabilities."""

    path: Path
    sha256: str
    asks_api_versions: bool


# The engine's code is part of every memo key: an edit to analysis/helm.py renders afresh.
_ENGINE_SOURCE = hashlib.sha256(Path(analysis_helm.__file__).read_bytes()).hexdigest()


class Memo:
    """Rendered objects on disk (`<chart cache>/.rendered/`), keyed by the sha256 of everything a
    render depends on: helm-python-sdk's version, analysis/helm.py, the package's sha256, the release
    name, namespace, values, CRD mode, Kubernetes version and API versions. Same inputs, same
    objects (or the same refusal): a plan that changed no release reads them back. Delete the folder
    to empty it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, kind: str, key: Any) -> Path:
        text = json.dumps([helm_python.__version__, _ENGINE_SOURCE, key], sort_keys=True, default=str)
        return self.folder / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()}.json"

    def get(self, kind: str, key: Any) -> Any:
        path = self._file(kind, key)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def put(self, kind: str, key: Any, value: Any) -> None:
        path = self._file(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        tmp.replace(path)  # atomic: a parallel plan never reads half a file

    def package(self, path: Path) -> Package:
        digest = sha256(path)
        asks = self.get("package", digest)
        if asks is None:
            asks = asks_api_versions(path)
            self.put("package", digest, asks)
        return Package(path=path, sha256=digest, asks_api_versions=bool(asks))


def _locate(q: ReleaseRequest, cache: Path, lock: Mapping[str, Any], memo: Memo) -> Package | str:
    """The package to render `q` from, or why there is none."""
    archive = cache / package_name(q.chart, q.version)
    if not archive.exists():
        return f"no package {archive.name} in the chart cache (run `make charts`)"
    package = memo.package(archive)
    expected = locked_sha(lock, ChartSpec(chart=q.chart, version=q.version, repo=q.repo))
    if expected and package.sha256 != expected:
        return f"{archive.name} does not match the sha256 in charts-lock.yaml (run `make charts`)"
    return package


def _render_one(
    q: ReleaseRequest, package: Package, version: str | None, api_versions: set[str], memo: Memo
) -> RenderedRelease | NotRendered:
    if q.values in PLACEHOLDERS:
        return NotRendered(request=q, reason="its values are a secret in the plan", error=False)
    key = [package.sha256, q.release, q.namespace, q.values, q.include_crds, version, sorted(api_versions)]
    cached = memo.get("objects", key)
    if isinstance(cached, dict):  # Helm refused these very inputs before
        return NotRendered(request=q, reason=cached["error"], error=True)
    if cached is not None:
        return RenderedRelease(request=q, objects=cached, placeholders=placeholder_paths(q.values))
    try:
        with helm_python.Chart.load(package.path) as chart:
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
        memo.put("objects", key, {"error": f"Helm: {err}"})
        return NotRendered(request=q, reason=f"Helm: {err}", error=True)
    memo.put("objects", key, objects)
    return RenderedRelease(request=q, objects=objects, placeholders=placeholder_paths(q.values))


def memo_dir(cache: Path | None = None) -> Path:
    """Where the analyses keep results of unchanged inputs: `.rendered/` in the chart cache."""
    return (cache or cache_dir()) / ".rendered"


def render_plan(
    resources: Iterable[Mapping[str, Any]], *, cache: Path | None = None, lock_file: Path = LOCK_FILE
) -> RenderReport:
    """Render every Helm release among the plan document's `resources` (see the module docstring)."""
    resources = list(resources)
    version = kube_version(resources)
    cache = cache or cache_dir()
    lock = read_lock(lock_file)
    memo = Memo(memo_dir(cache))
    results: dict[str, RenderedRelease | NotRendered] = {}
    first: list[tuple[ReleaseRequest, Package]] = []
    second: list[tuple[ReleaseRequest, Package]] = []
    for q in release_requests(resources):
        located = _locate(q, cache, lock, memo)
        if isinstance(located, str):
            results[q.urn] = NotRendered(request=q, reason=located, error=False)
        else:
            (second if located.asks_api_versions else first).append((q, located))
    # Helm's engine is Go behind ctypes, which releases the GIL: threads render in parallel.
    with ThreadPoolExecutor(max_workers=4) as pool:
        for out in pool.map(lambda job: _render_one(job[0], job[1], version, set(), memo), first):
            results[out.request.urn] = out
        crds = served_api_versions(
            o for r in results.values() if isinstance(r, RenderedRelease) for o in r.objects
        )
        for out in pool.map(lambda job: _render_one(job[0], job[1], version, crds, memo), second):
            results[out.request.urn] = out
    ordered = [results[urn] for urn in sorted(results)]
    return RenderReport(
        kube_version=version,
        rendered=[r for r in ordered if isinstance(r, RenderedRelease)],
        not_rendered=[r for r in ordered if isinstance(r, NotRendered)],
    )
