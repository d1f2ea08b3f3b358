"""Checks that keep docs/ and the README true: links, anchors, code paths, the add-on checklist.

Pure functions over text and recorded data, so each check is tested on a bad input too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from model.records import PlanResult
from tools.mocks import ROOT

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
TOP_LEVEL = (
    "components/",
    "stacks/",
    "platform/",
    "policy/",
    "analysis/",
    "tools/",
    "tests/",
    "services/",
    "charts/",
    ".github/",
    "docs/",
)
OUTSIDE = (
    (re.compile(r"\.\./shared"), "a path outside the repository (../shared)"),
    (re.compile(r"\b[Ii]ssues? (?:#|no\.? ?)?\d+"), "an issue number"),
    (re.compile(r"(?<![\w&/])#\d+\b(?!-)"), "an issue number"),
)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    return found | {slug(h) for h in re.findall(r"^#{1,6} (.+)$", markdown, re.MULTILINE)}


def broken_links(path: Path, markdown: str, root: Path = ROOT) -> list[str]:
    """Relative links of a markdown file whose target file or anchor does not exist."""
    problems = []
    for target in LINK.findall(markdown):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: outside links are not checked offline
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if root.resolve() not in dest.parents and dest != root.resolve():
            problems.append(f"{target}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            problems.append(f"{target}: no heading or <a id> `{anchor}` in {dest.relative_to(root)}")
    return problems


def missing_code_paths(markdown: str, root: Path = ROOT) -> list[str]:
    """Repository paths named in backticks (`components/x.py`, `platform/values/<addon>.yaml`) that
    do not exist; a `<placeholder>` matches any name."""
    missing = []
    for token in CODE.findall(markdown):
        path = token.split(":", 1)[0].split("#", 1)[0].rstrip(".,")
        if not path.startswith(TOP_LEVEL) or "*" in path:
            continue
        pattern = re.sub(r"<[^>]+>", "*", path)
        if not (list(root.glob(pattern)) if "*" in pattern else (root / path).exists()):
            missing.append(path)
    return sorted(set(missing))


def outside_pointers(text: str) -> list[str]:
    return [f"{why}: {m.group(0)!r}" for pattern, why in OUTSIDE for m in pattern.finditer(text)]


# ---- the add-on checklist (docs/adding-an-addon.md) -------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Release:
    chart: str
    version: str
    namespace: str


def composition(source: str) -> dict[str, str | None]:
    """Chart name -> values file stem, from `charts["x"]` and `values("y")` keyword pairs in one
    call of the composition's phases, stacks/phase_*.py (`chart`/`base_values`, `<x>_chart`/`<x>_values`)."""
    out: dict[str, str | None] = {}
    for call in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)):
        kwargs = {k.arg: k.value for k in call.keywords if k.arg}
        for name, value in kwargs.items():
            if not (isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant)):
                continue
            if not (isinstance(value.value, ast.Name) and value.value.id == "charts"):
                continue
            partner = kwargs.get("base_values" if name == "chart" else name.removesuffix("chart") + "values")
            stem = None
            if isinstance(partner, ast.Call) and partner.args and isinstance(partner.args[0], ast.Constant):
                stem = str(partner.args[0].value)
            out[str(value.slice.value)] = stem
    return out


def releases(plan: PlanResult) -> set[Release]:
    return {
        Release(chart=str(r.get("chart")), version=str(r.get("version")), namespace=str(r.get("namespace")))
        for r in plan.of_type("kubernetes:helm.sh/v3:Release")
    }


def namespaces(plan: PlanResult) -> set[str]:
    objs = [o for g in plan.of_type("kubernetes:yaml/v2:ConfigGroup") for o in g.get("objs") or []]
    return {"kube-system"} | {o["metadata"]["name"] for o in objs if o.get("kind") == "Namespace"}


def addon_problems(
    *,
    pins: Mapping[str, Mapping[str, str]],
    composed: Mapping[str, str | None],
    installed: Iterable[Release],
    created_namespaces: set[str],
    values_files: set[str],
    profiles: Mapping[str, tuple[object, ...]],
    upgrades_doc: str,
) -> list[str]:
    """Every checklist step a pinned chart is missing, naming the step and the file to edit."""
    problems = []
    installed = list(installed)
    for chart, pin in sorted(pins.items()):
        where = f"chart {chart!r} (platform/charts.yaml)"
        if chart not in composed:
            problems.append(
                f"{where}: step 6 composition: pass charts[{chart!r}] in stacks/phase_services.py "
                "or stacks/phase_delivery.py"
            )
        crd_only = profiles.get(chart) == ()
        stem = composed.get(chart)
        if not crd_only and stem is None and chart in composed:
            problems.append(f"{where}: step 2 values: pass values(...) next to it in stacks/phase_*.py")
        if stem is not None and stem not in values_files:
            problems.append(f"{where}: step 2 values: create platform/values/{stem}.yaml")
        found = [r for r in installed if r.chart == pin["chart"] and r.version == pin["version"]]
        if not found:
            problems.append(
                f"{where}: step 3 component: no Helm release of {pin['chart']} {pin['version']} in the plan; "
                "install it with components.helm.release in its component"
            )
        for r in found:
            if r.namespace not in created_namespaces:
                problems.append(
                    f"{where}: step 5 namespace: {r.namespace!r} is not created; add it to Namespaces in "
                    "stacks/phase_services.py"
                )
        if chart not in profiles:
            problems.append(f"{where}: step 7 policy profile: add it to PROFILES in policy/helm_profiles.py")
        if chart not in upgrades_doc:
            problems.append(f"{where}: step 10 docs: name it in docs/upgrades.md")
    orphans = values_files - {s for s in composed.values() if s}
    problems += [
        f"platform/values/{s}.yaml: no chart uses it (step 6, stacks/phase_*.py)" for s in sorted(orphans)
    ]
    return problems
