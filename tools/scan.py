"""checkov over the rendered Helm objects of both stacks: `make scan`.

    python -m tools.scan --checkov .venv-checkov/bin/checkov [--plan-json plan-prod.json]

checkov 3.3.30 pins packages the project's venv cannot hold (`packaging<24`, `boto3==1.35.49`...),
so it lives in its own virtualenv (the Makefile builds `.venv-checkov`) and this tool talks to it
through files only: rendered manifests in a temporary directory in, its JSON report out.

What is rendered: the platform's own chart (charts/microservice) with every service's values per
stack, always; and each upstream release of the offline plan whose chart package is at hand in the
chart cache (`.charts/` or `$EKS_PLATFORM_CHARTS`, as for the plan: tools/charts.py `cache_dir`;
`<chart>-<version>.tgz` or an unpacked `<chart>-<version>/`, never committed). A plan
JSON with a `rendered` section contributes its objects as they are.

Every failed check is either listed in policy/checkov-exceptions.yaml (check, chart, resource,
reason) or a new failure. An entry's resource may be `Kind.*.*`: every object of that kind the chart
renders, in any release. The shared service chart is keyed that way, so a new service (one more
release of the same chart) brings no new exception. New failures, and exceptions of a scanned
chart that no longer match anything, fail the scan, so the exceptions list only changes on
purpose. With `--plan-json`, the failed checks of that plan's stack join its `findings` (excepted
ones advisory, new ones mandatory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from model.charts import cache_dir
from tools.mocks import ROOT, run_stack, stack_names

EXCEPTIONS = ROOT / "policy" / "checkov-exceptions.yaml"
HELM = "kubernetes:helm.sh/v3:Release"


class Accepted(BaseModel):
    """One accepted failed check: which check, on which chart's object, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    check: str = Field(pattern=r"^CKV2?_K8S_\d+$")
    chart: str
    resource: str = Field(
        pattern=r"^[A-Za-z]+\.(\*\.\*|[^.*]+\.[^.*]+)$",
        description="Kind.namespace.name, or Kind.*.* for every object of that kind the chart renders",
    )
    reason: str = Field(min_length=20)

    def covers(self, check: str, chart: str, resource: str) -> bool:
        if (check, chart) != (self.check, self.chart):
            return False
        kind, _, rest = self.resource.partition(".")
        return resource == self.resource or (rest == "*.*" and resource.split(".", 1)[0] == kind)


class Exceptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    exceptions: tuple[Accepted, ...]


@dataclass(frozen=True)
class Release:
    """One rendered release: the objects of one chart in one stack."""

    stack: str
    chart: str
    name: str
    urn: str | None
    objects: tuple[Mapping[str, Any], ...]

    @property
    def file(self) -> str:
        return f"{self.stack}__{self.chart}__{self.name}.yaml"


@dataclass(frozen=True)
class Failure:
    check: str
    name: str
    chart: str
    stack: str
    urn: str | None
    resource: str


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's `value` resolver: the AlertmanagerConfig CRD's bare `=` enum
    value is a string, not the `!!value` tag PyYAML cannot construct."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_exceptions(path: Path = EXCEPTIONS) -> tuple[Accepted, ...]:
    return Exceptions.model_validate(yaml.safe_load(path.read_text())).exceptions


def _objects(texts: Mapping[str, str], namespace: str) -> tuple[Mapping[str, Any], ...]:
    """The rendered documents, each in the release namespace where the chart leaves it unset (Helm
    installs namespaced objects there)."""
    out = []
    for path, text in sorted(texts.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.load_all(text, Loader=_Loader):
            if isinstance(doc, dict) and doc.get("kind"):
                doc.setdefault("metadata", {}).setdefault("namespace", namespace)
                out.append(doc)
    return tuple(out)


def service_releases() -> Iterator[Release]:
    import helm_python

    chart = helm_python.Chart.load(ROOT / "charts" / "microservice")
    for values_file in sorted(ROOT.glob("services/*/deploy/*.yaml")):
        service, stack = values_file.parent.parent.name, values_file.stem
        values = yaml.safe_load(values_file.read_text()) or {}
        rendered = chart.render(values=values, name=service, namespace=service)
        yield Release(stack, "microservice", service, None, _objects(rendered, service))


def upstream_releases(charts_dir: Path | None = None) -> Iterator[Release]:
    """Each planned release whose chart package is at hand, rendered with the values it sends."""
    import helm_python

    charts_dir = charts_dir or cache_dir()
    for stack in stack_names():
        for r in run_stack(stack).of_type(HELM):
            name = str(r.get("chart")).rstrip("/").rsplit("/", 1)[-1]
            found = [
                p
                for p in (
                    charts_dir / f"{name}-{r.get('version')}.tgz",
                    charts_dir / f"{name}-{r.get('version')}",
                )
                if p.exists()
            ]
            if not found:
                continue
            chart = helm_python.Chart.load(found[0])
            rendered = chart.render(
                values=r.get("values") or {}, name=r.get("name"), namespace=r.get("namespace")
            )
            yield Release(stack, name, str(r.get("name")), r.urn, _objects(rendered, str(r.get("namespace"))))


def plan_releases(plan: Mapping[str, Any]) -> Iterator[Release]:
    for entry in plan.get("rendered") or []:
        urn = entry.get("urn")
        name = str(urn).rsplit("::", 1)[-1]
        yield Release(str(plan["stack"]), str(entry["chart"]), name, urn, tuple(entry.get("objects") or ()))


def run_checkov(checkov: Path, releases: list[Release]) -> list[dict[str, Any]]:
    """checkov's failed checks over the releases' manifests (one file per release)."""
    with tempfile.TemporaryDirectory(prefix="scan-") as tmp:
        for release in releases:
            (Path(tmp) / release.file).write_text(yaml.safe_dump_all(list(release.objects), sort_keys=True))
        cmd = [
            str(checkov),
            "-d",
            tmp,
            "--framework",
            "kubernetes",
            "-o",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ]
        # The executable is the Makefile's own venv; the arguments are fixed.
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode not in (0, 1) or not done.stdout.strip().startswith(("{", "[")):
        raise RuntimeError(f"checkov failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    return [c for r in reports for c in (r.get("results") or {}).get("failed_checks", [])]


def failures(checks: list[dict[str, Any]], releases: list[Release]) -> list[Failure]:
    by_file = {r.file: r for r in releases}
    out = []
    for c in checks:
        release = by_file[Path(c["file_path"]).name]
        resource = ".".join(str(c["resource"]).split(".")[:3])
        out.append(
            Failure(c["check_id"], c["check_name"], release.chart, release.stack, release.urn, resource)
        )
    return sorted(set(out), key=lambda f: (f.stack, f.chart, f.resource, f.check))


def judge(
    found: list[Failure], exceptions: tuple[Accepted, ...], charts: set[str]
) -> tuple[list[Failure], list[Accepted]]:
    """(new failures, stale exceptions of the charts scanned)."""
    new = [f for f in found if not any(e.covers(f.check, f.chart, f.resource) for e in exceptions)]
    stale = [
        e
        for e in exceptions
        if e.chart in charts and not any(e.covers(f.check, f.chart, f.resource) for f in found)
    ]
    return new, stale


def findings(found: list[Failure], new: list[Failure], stack: str) -> list[dict[str, Any]]:
    """The stack's failed checks in the plan document's `findings` format."""
    return [
        {
            "rule": f"checkov-{f.check}",
            "level": "mandatory" if f in new else "advisory",
            "urn": f.urn,
            "message": f"{f.resource} ({f.chart}): {f.name}"
            + ("" if f in new else " (accepted: checkov-exceptions.yaml)"),
        }
        for f in found
        if f.stack == stack
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make scan", description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", type=Path, required=True, help="the checkov executable (its own venv)")
    parser.add_argument("--charts", type=Path, help="chart packages at hand (default: the chart cache)")
    parser.add_argument("--plan-json", type=Path, help="a plan document: scan its `rendered`, add findings")
    args = parser.parse_args(argv)

    plan = json.loads(args.plan_json.read_text()) if args.plan_json else None
    releases = [*service_releases(), *upstream_releases(args.charts)]
    if plan:
        covered = {r.urn for r in releases}
        releases += [r for r in plan_releases(plan) if r.urn not in covered]
    found = failures(run_checkov(args.checkov, releases), releases)
    new, stale = judge(found, load_exceptions(), {r.chart for r in releases})
    charts = sorted({f"{r.stack}/{r.chart}" for r in releases})
    print(f"checkov scanned {len(releases)} rendered release(s): {', '.join(charts)}")
    accepted = len(found) - len(new)
    print(f"{len(found)} failed check(s): {accepted} accepted in {EXCEPTIONS.name}, {len(new)} new.")
    for f in new:
        print(f"  NEW {f.check} {f.stack}/{f.chart} {f.resource}: {f.name}")
    for e in stale:
        print(f"  STALE {e.check} {e.chart} {e.resource}: no longer fails; remove it from {EXCEPTIONS.name}")
    if plan is not None and args.plan_json:
        plan["findings"] = [*plan.get("findings", []), *findings(found, new, str(plan["stack"]))]
        args.plan_json.write_text(json.dumps(plan, indent=2, default=str) + "\n")
    return 1 if new or stale else 0


if __name__ == "__main__":
    sys.exit(main())
