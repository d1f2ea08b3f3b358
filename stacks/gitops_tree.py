"""The stack's GitOps folder against its config: the Applications there must use the configured repo.

The root Application syncs one folder of the GitOps repository (`delivery.gitops.path`); every
Application in it whose source is a folder of that repository (`path`, no Helm `chart`) must name
the same `repoURL` as `delivery.gitops.repoUrl`, which the `microservices` AppProject allows as its
only source repository. A different URL would fail to sync ("application repo ... is not
permitted in project"), so the stack refuses it before anything is deployed. Sources with
`chart:` come from a Helm repository and are left alone.

Argo CD reads a directory source's `*.yaml`, `*.yml` and `*.json` files, not its subfolders
(no `directory.recurse` on the root Application); so does this check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from stacks.data import parse_yaml_all

_SUFFIXES = (".json", ".yaml", ".yml")


def _sources(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = doc.get("spec") or {}
    if isinstance(spec.get("source"), dict):
        yield "spec.source", spec["source"]
    for i, source in enumerate(spec.get("sources") or []):
        if isinstance(source, dict):
            yield f"spec.sources[{i}]", source


def repo_url_issues(root: Path, folder: str, repo_url: str) -> list[tuple[str, Any, str]]:
    """Every Application source in `root/folder` that should be `repo_url` and is not.

    Each issue is (config key, value found, message naming the file and both URLs).
    """
    directory = root / folder
    if not directory.is_dir():
        return []  # reported by the folder check
    issues: list[tuple[str, Any, str]] = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in _SUFFIXES):
        shown = f"{folder}/{path.name}"
        try:
            docs = parse_yaml_all(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            issues.append(("repoUrl", repo_url, f"{shown} is not valid YAML ({err}); ArgoCD cannot sync it"))
            continue
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "Application":
                continue
            name = (doc.get("metadata") or {}).get("name", "?")
            for where, source in _sources(doc):
                if "chart" in source or source.get("repoURL") == repo_url:
                    continue
                issues.append(
                    (
                        "repoUrl",
                        repo_url,
                        f"{shown}: Application {name!r} {where}.repoURL is {source.get('repoURL')!r}, "
                        f"but delivery.gitops.repoUrl is {repo_url!r}; the microservices project only "
                        "permits the configured repository, so set both to the same URL",
                    )
                )
    return issues
