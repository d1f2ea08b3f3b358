"""The one way the platform installs a Helm chart: pinned, named, and with reviewable values."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True, kw_only=True)
class ChartSpec:
    """One entry of platform/charts.yaml."""

    chart: str
    version: str
    repo: str | None = None


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base` (maps merge, everything else replaces).

    `base` is plain data (a values file) and is copied; `override` may hold Outputs, which are
    used as they are (an Output cannot be copied).
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def release(
    name: str,
    *,
    release_name: str,
    namespace: str,
    spec: ChartSpec,
    values: pulumi.Input[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    skip_crds: bool = False,
    timeout_seconds: int = 600,
) -> k8s.helm.v3.Release:
    """A Helm release (`helm.v3.Release`: a real release, so chart hooks run and `helm ls` shows it).

    The release name is explicit: charts derive service-account names from it, and IAM trust
    (Pod Identity, IRSA) names those service accounts. `atomic` rolls a failed upgrade back;
    values must never hold a secret (one secret would mark the whole map secret and hide every
    setting from review): reference Kubernetes Secrets by name instead.
    """
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        namespace=namespace,
        chart=spec.chart,
        version=spec.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=spec.repo) if spec.repo else None,
        values=values,
        skip_crds=skip_crds,
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        timeout=timeout_seconds,
        opts=opts,
    )
