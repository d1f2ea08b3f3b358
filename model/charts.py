"""The chart cache: where the pinned Helm chart packages are, their file names and digests.

`make charts` (tools/charts.py) fills it and records each package's sha256 in platform/charts-lock.yaml
(read through stacks/data.py); the plan's rendering (analysis/render.py), the scan and the tests read
it. A package renders only when its digest matches the lock (`locked_sha`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from components.helm import ChartSpec
from stacks.data import LockEntry

ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "EKS_PLATFORM_CHARTS"


def cache_dir() -> Path:
    """The chart cache: `$EKS_PLATFORM_CHARTS` when set, else `.charts/` in the repository."""
    return Path(os.environ.get(CACHE_ENV) or ROOT / ".charts")


def package_name(chart: str, version: str) -> str:
    """The file Helm's pull writes: `<chart name>-<version>.tgz` (the last part of an OCI reference)."""
    return f"{chart.rstrip('/').rsplit('/', 1)[-1]}-{version}.tgz"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locked_sha(lock: Mapping[str, LockEntry], spec: ChartSpec) -> str | None:
    """The sha256 the lock holds for this exact chart and version, or None when it holds none."""
    for entry in lock.values():
        if entry.chart == spec.chart and entry.version == spec.version:
            return entry.sha256
    return None
