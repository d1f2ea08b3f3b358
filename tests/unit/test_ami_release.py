"""The system nodes' AMI release: config validation (format, Kubernetes minor, required in prod) and
its wiring onto the managed node group.

Release formats: awslabs/amazon-eks-ami CHANGELOG.md lists AL2023 releases as
`<Kubernetes x.y.z>-<YYYYMMDD>` ("Release version" column); pulumi_aws `eks.NodeGroup` takes the
string as `release_version`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from model.records import PlanResult
from stacks.config import PROJECT, ConfigError, PlatformConfig, validate
from stacks.sections import al2023_release_minor
from tools.mocks import stack_config

KEY = f"{PROJECT}:systemNodeGroup.amiReleaseVersion"


def _with_nodes(stack: str, drop: tuple[str, ...] = (), **changes: Any) -> dict[str, str]:
    raw, _ = stack_config(stack)
    section = json.loads(raw[f"{PROJECT}:systemNodeGroup"])
    for key in drop:
        section.pop(key, None)
    raw[f"{PROJECT}:systemNodeGroup"] = json.dumps({**section, **changes})
    return raw


def _validate(stack: str, raw: dict[str, str]) -> PlatformConfig:
    return validate(raw, PROJECT, stack, f"Pulumi.{stack}.yaml")


@pytest.mark.parametrize(
    ("stack", "changes", "drop", "message"),
    [
        ("prod", {}, ("amiReleaseVersion",), "required in a production stack"),
        ("prod", {"amiReleaseVersion": None}, (), "required in a production stack"),
        (
            "prod",
            {"amiReleaseVersion": "1.34.2-20260714"},
            (),
            r"a Kubernetes 1\.34 release, but cluster\.kubernetesVersion is 1\.35",
        ),
        ("dev", {"amiReleaseVersion": "v20260714"}, (), "not a valid AL2023 release version"),
        ("dev", {"amiReleaseVersion": "1.35-20260714"}, (), r"e\.g\. 1\.35\.6-20260714"),
        ("dev", {"amiReleaseVersion": "al2023@v20260714"}, (), "<Kubernetes version>-<YYYYMMDD>"),
        ("dev", {"amiReleaseVersion": "1.35.6-20261399"}, (), "20261399 is not a date"),
        (
            "dev",
            {"amiFamily": "Bottlerocket", "amiReleaseVersion": "1.47.0"},
            (),
            "not a valid Bottlerocket release version",
        ),
    ],
    ids=["prod-unset", "prod-null", "prod-minor", "alias-only", "no-patch", "karpenter", "bad-date", "br"],
)
def test_a_bad_or_missing_release_is_rejected_naming_the_key(
    stack: str, changes: dict[str, Any], drop: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _validate(stack, _with_nodes(stack, drop, **changes))
    assert [i.key for i in info.value.issues] == [KEY], str(info.value)
    assert re.search(message, info.value.issues[0].message), str(info.value)
    assert f"Pulumi.{stack}.yaml" in str(info.value)


@pytest.mark.parametrize(
    ("stack", "changes", "expected"),
    [
        ("dev", {}, None),  # dev follows the latest release
        ("dev", {"amiReleaseVersion": "1.35.6-20260714"}, "1.35.6-20260714"),
        ("dev", {"amiFamily": "Bottlerocket", "amiReleaseVersion": "1.47.0-6154605b"}, "1.47.0-6154605b"),
        ("prod", {}, "1.35.6-20260714"),
    ],
)
def test_a_valid_release_or_none_outside_production_passes(
    stack: str, changes: dict[str, Any], expected: str | None
) -> None:
    assert _validate(stack, _with_nodes(stack, **changes)).system_node_group.ami_release_version == expected


def test_the_minor_check_follows_the_cluster_version() -> None:
    raw = _with_nodes("dev", amiReleaseVersion="1.34.2-20260714")
    with pytest.raises(ConfigError, match=r"cluster\.kubernetesVersion is 1\.35"):
        _validate("dev", raw)
    cluster = json.loads(raw[f"{PROJECT}:cluster"])
    raw[f"{PROJECT}:cluster"] = json.dumps({**cluster, "kubernetesVersion": "1.34"})
    assert _validate("dev", raw).system_node_group.ami_release_version == "1.34.2-20260714"


@pytest.mark.parametrize(
    ("release", "minor"),
    [("1.35.6-20260714", "1.35"), ("1.9.10-20250101", "1.9"), ("1.47.0-6154605b", None), ("1.35", None)],
)
def test_al2023_release_minor(release: str, minor: str | None) -> None:
    assert al2023_release_minor(release) == minor


def test_prod_nodes_run_the_pinned_release_and_dev_follows_the_latest(
    plans: dict[str, PlanResult], configs: dict[str, PlatformConfig]
) -> None:
    prod = plans["prod"].one("eks:index:ManagedNodeGroup")
    assert prod.get("releaseVersion") == configs["prod"].system_node_group.ami_release_version
    assert "releaseVersion" not in plans["dev"].one("eks:index:ManagedNodeGroup").raw_inputs


def test_the_node_group_keeps_following_the_cluster_version(plan: PlanResult) -> None:
    """`version` stays the cluster's (an Output: the nodes upgrade after the control plane), and a
    pinned release is one of that version's."""
    mng = plan.one("eks:index:ManagedNodeGroup")
    cluster = plan.one("eks:index:Cluster")
    assert cluster.urn in mng.dependencies
    assert mng.get("version") == cluster.get("version")
    release = mng.raw_inputs.get("releaseVersion")
    assert release is None or al2023_release_minor(release) == cluster.get("version")
    assert "ignoreScalingChanges" not in mng.raw_inputs
