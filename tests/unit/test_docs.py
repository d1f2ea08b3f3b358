"""The docs stay true: generated config reference, resolving links and runbook anchors, existing code
paths, every make target documented, nothing pointing outside the repository, the add-on checklist."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from model.records import PlanResult
from policy.helm_profiles import PROFILES
from policy.rules import RULES
from stacks.data import load_yaml
from tests import docscheck
from tools import config_reference, policy_doc
from tools.mocks import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS, ROOT / "platform" / "gitops" / "README.md"]
README_MAX_LINES = 200


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_configuration_reference_matches_the_model() -> None:
    current = config_reference.document_section(read(config_reference.REFERENCE))
    assert current == config_reference.section(), (
        "docs/configuration.md is stale: run `python -m tools.config_reference --write`"
    )


def test_the_production_profile_table_matches_stacks_profile() -> None:
    current = config_reference.document_section(
        read(config_reference.REFERENCE), config_reference.PROFILE_START, config_reference.PROFILE_END
    )
    assert current == config_reference.profile_section(), (
        "docs/configuration.md is stale: run `python -m tools.config_reference --write`"
    )


def test_every_model_key_is_documented_once() -> None:
    keys = [k for k, *_ in config_reference.rows()]
    assert len(keys) == len(set(keys))
    assert "eks-platform:network.natStrategy" in keys and "aws:region" in keys
    assert all(desc for *_, desc in config_reference.rows())


def test_readme_is_a_front_page_with_the_two_commands() -> None:
    readme = read(ROOT / "README.md")
    assert len(readme.splitlines()) <= README_MAX_LINES, "README.md grew: move details to docs/"
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make [a-z]+$|^(make [a-z]+) ", quick, re.MULTILINE)
    assert {"make plan", "make test"} <= {c for c in commands if c}


def makefile_targets() -> set[str]:
    phony = re.search(r"^\.PHONY: (.+)$", read(ROOT / "Makefile"), re.MULTILINE)
    assert phony, "the Makefile declares its targets in .PHONY"
    return set(phony.group(1).split())


def documented_targets(text: str) -> set[str]:
    """`make plan`, `make preview|up|destroy` and `make lint` style mentions."""
    found = re.findall(r"(?:`|^)make ((?:[a-z][a-z-]*)(?:\\?\|[a-z][a-z-]*)*)", text, re.MULTILINE)
    return {t for group in found for t in re.split(r"\\?\|", group)}


def test_every_make_target_is_documented_and_exists() -> None:
    text = "\n".join(read(p) for p in PAGES)
    targets, documented = makefile_targets(), documented_targets(text)
    assert not targets - documented, f"Makefile targets not in README.md or docs/: {targets - documented}"
    assert documented <= targets, f"docs mention make targets the Makefile lacks: {documented - targets}"


def test_make_target_check_fires_on_an_undocumented_target() -> None:
    assert documented_targets("run `make preview|up|destroy STACK=dev` and `make plan`") == {
        "preview",
        "up",
        "destroy",
        "plan",
    }
    assert documented_targets("`make plan`; make sure to run `make test`") == {"plan", "test"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_between_docs_resolve(page: Path) -> None:
    assert docscheck.broken_links(page, read(page)) == []


def test_link_check_fires_on_a_missing_file_or_anchor() -> None:
    page = ROOT / "docs" / "first-deploy.md"
    good = "[a](runbooks.md#runbook-platform-node-not-ready) [b](#14-destroy) [c](https://example.com)"
    assert docscheck.broken_links(page, good) == []
    bad = "[a](nope.md) [b](runbooks.md#no-such-anchor) [c](../../shared/DESIGN.md)"
    assert len(docscheck.broken_links(page, bad)) == 3


# platform/gitops/README.md is left out: its example names the files a new service adds.
@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_code_paths_named_in_docs_exist(page: Path) -> None:
    assert docscheck.missing_code_paths(read(page)) == [], f"{page.relative_to(ROOT)} names missing paths"


def test_code_path_check_fires_on_a_wrong_path() -> None:
    text = "`components/karpenter_policy.py`, `platform/values/<addon>.yaml`, `components/nope.py`, `a/b`"
    assert docscheck.missing_code_paths(text) == ["components/nope.py"]


def repository_text_files() -> list[Path]:
    """The repository's own text files: what git tracks, plus new files it does not ignore.

    Ignored folders (.venv, .venv-checkov, .charts, caches) hold other projects' files. Outside a
    git checkout, the same folders are skipped by name.
    """
    suffixes = {".md", ".py", ".yaml", ".yml", ".toml", ".txt", ".json", ""}
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        candidates = [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    else:
        skip = {".git", ".venv", ".venv-checkov", ".charts", "__pycache__", ".mypy_cache", ".ruff_cache"}
        candidates = [p for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    return sorted(
        p
        for p in candidates
        if p.is_file()
        and "fixtures" not in p.relative_to(ROOT).parts
        and p.suffix in suffixes
        and p != Path(__file__).resolve()
        and p.name not in {"docscheck.py"}
    )


def test_nothing_points_outside_the_repository() -> None:
    problems = [
        f"{p.relative_to(ROOT)}: {why}"
        for p in repository_text_files()
        for why in docscheck.outside_pointers(read(p))
    ]
    assert problems == []


def test_outside_pointer_check_fires_and_spares_tags_and_anchors() -> None:
    assert len(docscheck.outside_pointers("see ../shared/DESIGN.md, issue 5 and #12")) == 3
    assert docscheck.outside_pointers('tags {"team#1": "me"}, first-deploy.md#12-adding-a-service') == []


def test_skips_do_not_name_paths_outside_the_checkout() -> None:
    for path in sorted((ROOT / "tests").rglob("*.py")):
        text = read(path)
        outside = re.findall(r"^(\w+) = ROOT\.parent\b", text, re.MULTILINE)
        for name in outside:
            named = re.search(rf"skip\(f[\"'][^\"']*\{{{name}\b", text)
            assert not named, f"{path.relative_to(ROOT)}: a skip reason names {name}, outside the checkout"


def runbook_targets() -> list[tuple[str, str, str]]:
    """(alert, repository path, anchor) of every runbook_url (`https://github.com/<org>/<repo>/blob/<ref>/<path>#a`)."""
    rules = yaml.safe_load(read(ROOT / "platform" / "monitoring" / "rules" / "platform.yaml"))
    out = []
    for rule in (r for group in rules["spec"]["groups"] for r in group["rules"] if "alert" in r):
        url = urlparse(rule["annotations"]["runbook_url"])
        repo_path = url.path.split("/blob/", 1)[1].split("/", 1)[1]
        out.append((rule["alert"], repo_path, url.fragment))
    return out


def test_every_runbook_url_resolves_in_the_file_it_names() -> None:
    targets = runbook_targets()
    assert targets
    for alert, repo_path, anchor in targets:
        path = ROOT / repo_path
        assert path.exists(), f"{alert}: runbook_url names {repo_path}, which does not exist"
        assert anchor in docscheck.anchors(read(path)), f"{alert}: no section #{anchor} in {repo_path}"


def test_anchor_check_knows_explicit_ids_and_heading_slugs() -> None:
    found = docscheck.anchors('<a id="runbook-x"></a>\n## 9. Expected duration\n## Runbook: ArgoCDAppDown')
    assert found == {"runbook-x", "9-expected-duration", "runbook-argocdappdown"}


def test_policy_doc_lists_every_rule() -> None:
    doc = read(policy_doc.DOC)
    assert policy_doc.document_section(doc) == policy_doc.section(), (
        "docs/policy.md is stale: run `python -m tools.policy_doc --write`"
    )
    listed = set(re.findall(r"^\| `([a-z0-9-]+)`", doc, re.MULTILINE))
    assert listed == {rule.name for rule in RULES}


def test_platform_dir_stays_data_only() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert not list((ROOT / "platform").rglob("*.py"))


def test_project_file_follows_pulumis_config_declaration_rules() -> None:
    """Rules the Pulumi CLI enforces when it loads Pulumi.yaml (pkg workspace Project.Validate)."""
    project = yaml.safe_load(read(ROOT / "Pulumi.yaml"))
    assert project["name"] == "eks-platform"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    for key, decl in project["config"].items():
        assert not ("default" in decl and "value" in decl), key
        if key.startswith("eks-platform:") or ":" not in key:
            assert decl["type"] in {"string", "integer", "boolean", "array"}, key
            assert decl["type"] != "array" or "items" in decl, key
            assert decl.get("description"), key
        else:
            # Keys of other namespaces may only set a value: no type, no default.
            assert set(decl) <= {"value", "description"} and "value" in decl, key


def checklist_inputs(plan: PlanResult) -> dict:
    return {
        "pins": load_yaml("charts.yaml"),
        "composed": docscheck.composition(
            "\n".join(read(p) for p in sorted((ROOT / "stacks").glob("phase_*.py")))
        ),
        "installed": docscheck.releases(plan),
        "created_namespaces": docscheck.namespaces(plan),
        "values_files": {p.stem for p in (ROOT / "platform" / "values").glob("*.yaml")},
        "profiles": PROFILES,
        "upgrades_doc": read(ROOT / "docs" / "upgrades.md"),
    }


def test_every_pinned_chart_completes_the_addon_checklist(plan: PlanResult) -> None:
    """docs/adding-an-addon.md: a forgotten step fails here, naming the step and the file."""
    assert docscheck.addon_problems(**checklist_inputs(plan)) == []


def test_addon_checklist_names_each_forgotten_step(dev: PlanResult) -> None:
    good = checklist_inputs(dev)
    new_pin = {"chart": "cert-manager", "version": "1.0.0", "repo": "https://charts.jetstack.io"}
    # A new pin and nothing else: every step that needs code fires.
    problems = docscheck.addon_problems(**(good | {"pins": {**good["pins"], "cert-manager": new_pin}}))
    for step in ("step 6 composition", "step 3 component", "step 7 policy profile", "step 10 docs"):
        assert any(step in p and "cert-manager" in p for p in problems), (step, problems)
    # One step forgotten for an existing chart: exactly that step fires.
    steps = {
        "step 2 values: create platform/values/argocd": {"values_files": good["values_files"] - {"argocd"}},
        "step 3 component": {"installed": {r for r in good["installed"] if r.chart != "argo-cd"}},
        "step 5 namespace": {"created_namespaces": good["created_namespaces"] - {"argocd"}},
        "step 7 policy profile": {"profiles": {k: v for k, v in PROFILES.items() if k != "argo-cd"}},
        "step 10 docs": {"upgrades_doc": good["upgrades_doc"].replace("argo-cd", "argo")},
        "no chart uses it": {"values_files": good["values_files"] | {"orphan"}},
    }
    for step, change in steps.items():
        problems = docscheck.addon_problems(**(good | change))
        assert problems and all(step in p for p in problems), (step, problems)


def test_git_tracks_no_symbolic_link() -> None:
    """A worktree's `.venv` link was once committed: a fresh clone then got a link to another
    checkout's folder (make failed with "File exists"). The repository holds files only."""
    listed = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: nothing tracked to check")
    links = [line.split("\t", 1)[1] for line in listed.stdout.splitlines() if line.startswith("120000 ")]
    assert links == [], f"tracked symbolic links (git rm --cached them): {links}"
