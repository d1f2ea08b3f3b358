"""Add-on configuration values against the add-on version's recorded schema (analysis/addon_config.py).

The schemas here are small ones written for the tests, in the shape AWS returns
(DescribeAddonConfiguration `configurationSchema`); `OLD_EBS_CSI` follows the older EBS CSI add-on
schema a user printed in a 2023 aws/amazon-vpc-cni-k8s GitHub thread (2019-09 draft, `controller` with only
`extraVolumeTags`), cut down. No schema of a pinned version is invented.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysis import addon_config
from stacks.data import addon_schema

OLD_EBS_CSI: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2019-09/schema",
    "additionalProperties": False,
    "properties": {
        "controller": {
            "additionalProperties": False,
            "properties": {"extraVolumeTags": {"type": "object", "additionalProperties": {"type": "string"}}},
            "type": "object",
        }
    },
    "type": "object",
}
# The same schema once `controller` also takes `k8sTagClusterId`.
NEW_EBS_CSI: dict[str, Any] = json.loads(json.dumps(OLD_EBS_CSI))
NEW_EBS_CSI["properties"]["controller"]["properties"]["k8sTagClusterId"] = {"type": "string"}
KUBE_PROXY: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {"mode": {"enum": ["iptables", "ipvs"]}},
}
EBS_VALUES = json.dumps(
    {"controller": {"k8sTagClusterId": "eks-platform-dev", "extraVolumeTags": {"a": "b"}}}
)


def record(folder: Path, addon: str, version: str, schema: dict[str, Any]) -> None:
    """A schema file in the format tools/addon_versions.py writes."""
    (folder / f"{addon}-{version}.json").write_text(
        json.dumps(
            {
                "addonName": addon,
                "addonVersion": version,
                "recorded": "2026-12-05",
                "source": "test",
                "configurationSchema": schema,
            }
        )
    )


def addon(name: str, version: str | None, values: Any) -> dict[str, Any]:
    inputs = {"addonName": name, "configurationValues": values}
    if version:
        inputs["addonVersion"] = version
    return {"urn": f"urn:{name}", "type": "aws:eks/addon:Addon", "inputs": inputs}


def cluster(**inputs: Any) -> dict[str, Any]:
    return {"urn": "urn:cluster", "type": "eks:index:Cluster", "inputs": inputs}


def rules(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(f["rule"], f["level"], f["urn"]) for f in found]


def test_a_key_the_schema_does_not_allow_is_a_mandatory_finding(tmp_path: Path) -> None:
    record(tmp_path, "aws-ebs-csi-driver", "v1", OLD_EBS_CSI)
    found = addon_config.findings([addon("aws-ebs-csi-driver", "v1", EBS_VALUES)], tmp_path)
    assert rules(found) == [("addon-config-schema", "mandatory", "urn:aws-ebs-csi-driver")]
    assert "controller: Additional properties are not allowed ('k8sTagClusterId'" in found[0]["message"]
    assert "aws-ebs-csi-driver v1" in found[0]["message"]


def test_values_the_schema_allows_raise_nothing(tmp_path: Path) -> None:
    record(tmp_path, "aws-ebs-csi-driver", "v1", NEW_EBS_CSI)
    assert addon_config.findings([addon("aws-ebs-csi-driver", "v1", EBS_VALUES)], tmp_path) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ("mode: ipvs\n", []),  # EKS takes YAML as well as JSON
        ('{"mode": "nftables"}', ["mode: 'nftables' is not one of ['iptables', 'ipvs']"]),
        ("{mode: [", ["(root): not JSON or YAML"]),
    ],
)
def test_every_problem_is_named_by_its_path(values: str, expected: list[str]) -> None:
    got = addon_config.problems(values, KUBE_PROXY)
    assert len(got) == len(expected)
    assert all(g.startswith(e) for g, e in zip(got, expected, strict=True))


def test_no_recorded_schema_says_unverified(tmp_path: Path) -> None:
    found = addon_config.findings([addon("coredns", "v1.13.1-eksbuild.1", '{"replicaCount": 2}')], tmp_path)
    assert rules(found) == [("addon-config-unverified", "advisory", "urn:coredns")]
    assert "unverified" in found[0]["message"] and "coredns-v1.13.1-eksbuild.1.json" in found[0]["message"]


@pytest.mark.parametrize(
    ("version", "values", "why"),
    [(None, "{}x", "no pinned add-on version"), ("v1", "[secret]", "the values are secret")],
)
def test_what_cannot_be_checked_is_unverified(
    tmp_path: Path, version: str | None, values: str, why: str
) -> None:
    record(tmp_path, "vpc-cni", "v1", KUBE_PROXY)
    found = addon_config.findings([addon("vpc-cni", version, values)], tmp_path)
    assert rules(found) == [("addon-config-unverified", "advisory", "urn:vpc-cni")]
    assert why in found[0]["message"]


def test_an_addon_without_values_is_not_checked(tmp_path: Path) -> None:
    assert addon_config.findings([addon("eks-pod-identity-agent", "v1", None)], tmp_path) == []


def test_a_broken_schema_file_is_named(tmp_path: Path) -> None:
    record(tmp_path, "kube-proxy", "v1", {"type": "no-such-type"})
    found = addon_config.findings([addon("kube-proxy", "v1", "{}")], tmp_path)
    assert rules(found) == [("addon-config-schema", "mandatory", "urn:kube-proxy")]
    assert "kube-proxy-v1.json is unreadable" in found[0]["message"]


def test_pulumi_eks_addon_options_are_checked_when_pulumi_eks_installs_them(tmp_path: Path) -> None:
    record(tmp_path, "kube-proxy", "v1", KUBE_PROXY)
    record(tmp_path, "coredns", "v2", KUBE_PROXY)
    record(tmp_path, "vpc-cni", "v3", KUBE_PROXY)
    found = addon_config.findings(
        [
            cluster(
                kubeProxyAddonOptions={
                    "enabled": True,
                    "version": "v1",
                    "configurationValues": {"mode": "x"},
                },
                # Disabled, or the default VPC CNI (pulumi-eks installs no add-on): nothing to check.
                corednsAddonOptions={"enabled": False, "version": "v2", "configurationValues": {"bad": 1}},
                vpcCniOptions={"addonVersion": "v3", "configurationValues": {"bad": 1}},
                useDefaultVpcCni=True,
            )
        ],
        tmp_path,
    )
    assert rules(found) == [("addon-config-schema", "mandatory", "urn:cluster")]
    assert found[0]["message"].startswith("kube-proxy v1 kubeProxyAddonOptions.configurationValues: mode:")


def test_the_plan_reports_the_real_addons_unverified_until_their_schemas_are_recorded(
    plan_documents: dict[str, dict[str, Any]],
) -> None:
    """Wired into `make plan` (tools/plan.py); today platform/addon-schemas/ holds no schema of a
    pinned version, so the EBS CSI add-on's `k8sTagClusterId` is reported unverified."""
    for document in plan_documents.values():
        found = [f for f in document["findings"] if f["rule"].startswith("addon-config")]
        ebs = [f for f in found if f["urn"].endswith("-addons-ebs-csi")]
        if addon_schema("aws-ebs-csi-driver", "v1.53.0-eksbuild.1") is None:
            assert [f["level"] for f in ebs] == ["advisory"] and "unverified" in ebs[0]["message"]
        else:
            assert all(f["level"] == "advisory" for f in found), found


def test_the_real_ebs_csi_values_fail_the_older_schema(
    plan_documents: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The plan's own EBS CSI values against the older schema: the create EKS would refuse."""
    version = next(
        r["inputs"]["addonVersion"]
        for r in plan_documents["prod"]["resources"]
        if r["type"] == "aws:eks/addon:Addon" and r["inputs"]["addonName"] == "aws-ebs-csi-driver"
    )
    record(tmp_path, "aws-ebs-csi-driver", version, OLD_EBS_CSI)
    found = [
        f
        for f in addon_config.findings(plan_documents["prod"]["resources"], tmp_path)
        if f["level"] == "mandatory"
    ]
    assert len(found) == 1 and "'k8sTagClusterId' was unexpected" in found[0]["message"]
