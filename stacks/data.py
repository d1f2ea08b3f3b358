"""The one reader of the data files under `platform/` (YAML parsed safely, JSON).

Every module that needs pinned data (the program, the offline engine, the model, the analyses, the
tools) asks here, by name relative to platform/; nothing else knows where platform/ is
(tests/unit/test_layers.py). Writers (`make charts`, `make addon-versions`) take their file's path
from here too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.deploy_policy import DeployRoleData
from components.helm import ChartSpec

PLATFORM_DIR = Path(__file__).resolve().parent.parent / "platform"
DEPLOY_ROLE_FILE = "deploy-role.yaml"
# The EKS add-ons' configuration schemas `make addon-versions` records (tools/addon_versions.py).
ADDON_SCHEMA_DIR = PLATFORM_DIR / "addon-schemas"
# platform/charts-lock.yaml: written by `make charts`, read by the plan's rendering (analysis/render.py).
LOCK_FILE = PLATFORM_DIR / "charts-lock.yaml"
LOCK_HEADER = (
    "# Written by `make charts` (tools/charts.py): the sha256 of each chart package of charts.yaml,\n"
    "# recorded on its first pull. Later pulls must match. Bumping a version records the new package.\n"
)
# libyaml's safe loader when PyYAML has it (it does in its wheels): ten times the pure-Python speed
# on the monitoring values and rules every plan reads.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)


def parse_yaml(text: str) -> Any:
    """One YAML document from text, with the fast safe loader."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)


def parse_yaml_all(text: str) -> list[Any]:
    """Every YAML document of a text, with the fast safe loader."""
    return list(yaml.load_all(text, Loader=_SAFE_LOADER))


def compose_yaml(text: str) -> yaml.Node:
    """The node tree of one YAML document (marks included), with the fast safe loader's parser."""
    node: yaml.Node = yaml.compose(text, Loader=_SAFE_LOADER)
    return node


def load_yaml(relative: str) -> Any:
    return read_yaml(PLATFORM_DIR / relative)


def addon_versions(kubernetes_version: str) -> dict[str, str]:
    """The pinned EKS add-on versions for one Kubernetes minor version."""
    pins: dict[str, dict[str, str]] = load_yaml("eks-addons.yaml")
    return dict(pins[kubernetes_version])


def chart_specs() -> dict[str, ChartSpec]:
    """Every pinned chart of platform/charts.yaml."""
    entries: dict[str, dict[str, str]] = load_yaml("charts.yaml")
    return {name: ChartSpec(**entry) for name, entry in entries.items()}


def values(addon: str) -> dict[str, Any]:
    """The base Helm values of one add-on (platform/values/<addon>.yaml)."""
    loaded: dict[str, Any] = load_yaml(f"values/{addon}.yaml") or {}
    return loaded


def manifests(folder: str) -> list[dict[str, Any]]:
    """Every YAML document under platform/<folder>/, in file-name order."""
    docs: list[dict[str, Any]] = []
    for path in sorted((PLATFORM_DIR / folder).glob("*.yaml")):
        with open(path, encoding="utf-8") as f:
            docs.extend(d for d in yaml.load_all(f, Loader=_SAFE_LOADER) if d)
    return docs


def dashboards() -> dict[str, str]:
    """Grafana dashboards of platform/dashboards/: file stem -> JSON text."""
    return {
        p.stem: p.read_text(encoding="utf-8") for p in sorted((PLATFORM_DIR / "dashboards").glob("*.json"))
    }


def deploy_role_data() -> DeployRoleData:
    """platform/deploy-role.yaml, validated: the deploy role's permissions (docs/deploy-role.md)."""
    return DeployRoleData.model_validate(load_yaml(DEPLOY_ROLE_FILE))


@dataclass(frozen=True, kw_only=True)
class LockEntry:
    """One package recorded in the lock: the chart reference and version it was pulled as."""

    chart: str
    version: str
    sha256: str


def read_lock(path: Path = LOCK_FILE) -> dict[str, LockEntry]:
    """The lock file's entries by release key of charts.yaml (empty when there is no lock yet)."""
    if not path.exists():
        return {}
    loaded = read_yaml(path) or {}
    try:
        return {key: LockEntry(**entry) for key, entry in loaded.items()}
    except TypeError as err:
        raise ValueError(f"{path.name}: malformed entry ({err}); delete it and run `make charts`") from err


def addon_schema_path(addon: str, version: str, folder: Path | None = None) -> Path:
    """Where `make addon-versions` records the configuration schema of one add-on version."""
    return (folder or ADDON_SCHEMA_DIR) / f"{addon}-{version}.json"


def addon_schema(addon: str, version: str, folder: Path | None = None) -> dict[str, Any] | None:
    """The recorded `configurationSchema` of one add-on version, or None when none is recorded."""
    path = addon_schema_path(addon, version, folder)
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["configurationSchema"]
    return schema
