"""`make addon-versions` against real boto3 clients: moto's in-process AWS and botocore's Stubber.

It also records each pinned version's configuration schema (EKS DescribeAddonConfiguration); the
schemas served here are small ones written for the tests, never a copy of AWS's.

moto 5.2.5 does not implement EKS DescribeAddonVersions: it answers with a real 404 error
response, which is the "AWS returns an error" case. The answers AWS does give are served by
botocore's Stubber, which checks every request and response against the EKS API model that boto3
itself uses (botocore/data/eks/.../service-2.json), so a misspelt parameter or a reply of the
wrong shape fails the test. No test reads credentials or the environment.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from moto import mock_aws

from stacks.data import addon_schema, addon_versions
from tools import addon_versions as tool
from tools.mocks import stack_config

K8S = "1.35"


def _reply(addon: str, *versions: str, next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "addons": [
            {
                "addonName": addon,
                "type": "networking",
                "addonVersions": [
                    {"addonVersion": v, "architecture": ["amd64", "arm64"], "compatibilities": []}
                    for v in versions
                ],
            }
        ]
    }
    if next_token:
        page["nextToken"] = next_token
    return page


class StubbedSession:
    """Hands out one real, stubbed EKS client, as boto3.Session().client would."""

    def __init__(self, client: Any):
        self.eks = client
        self.regions: list[str] = []

    def client(self, service: str, region_name: str) -> Any:
        assert service == "eks"
        self.regions.append(region_name)
        return self.eks


def _eks() -> Any:
    return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test").client(
        "eks", region_name="eu-west-1"
    )


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("v1.20.4-eksbuild.1", "v1.21.1-eksbuild.1"),
        ("v1.9.0-eksbuild.1", "v1.10.0-eksbuild.1"),  # not string order
        ("v1.35.0-eksbuild.1", "v1.35.0-eksbuild.2"),
    ],
)
def test_versions_order_by_their_numbers(older: str, newer: str) -> None:
    assert tool.version_key(older) < tool.version_key(newer)


def test_newest_reads_every_page_and_picks_the_highest_version() -> None:
    eks = _eks()
    with Stubber(eks) as stub:
        params = {"addonName": "vpc-cni", "kubernetesVersion": K8S}
        stub.add_response(
            "describe_addon_versions", _reply("vpc-cni", "v1.9.0-eksbuild.1", next_token="p2"), params
        )
        stub.add_response(
            "describe_addon_versions", _reply("vpc-cni", "v1.21.1-eksbuild.1"), {**params, "nextToken": "p2"}
        )
        assert tool.newest(eks, "vpc-cni", K8S) == "v1.21.1-eksbuild.1"
        stub.assert_no_pending_responses()


SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
}


def _configuration(addon: str, version: str, schema: Any = SCHEMA) -> dict[str, Any]:
    """A DescribeAddonConfiguration reply: AWS returns the schema as a JSON string."""
    return {"addonName": addon, "addonVersion": version, "configurationSchema": json.dumps(schema)}


def _stub_all(stub: Stubber, newest: Mapping[str, str | None], pins: Mapping[str, str] | None = None) -> None:
    for addon in sorted(newest):
        version = newest[addon]
        reply = _reply(addon, version) if version else {"addons": []}
        stub.add_response("describe_addon_versions", reply, {"addonName": addon, "kubernetesVersion": K8S})
    for addon in sorted(pins or {}):
        if newest.get(addon):  # a pin AWS no longer offers has no schema to read
            params = {"addonName": addon, "addonVersion": (pins or {})[addon]}
            stub.add_response(
                "describe_addon_configuration", _configuration(addon, params["addonVersion"]), params
            )


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({}, None, 0),
        ({"coredns": "v9.0.0-eksbuild.1"}, "bump", 1),
        ({"coredns": None}, "not offered", 1),
    ],
)
def test_the_table_flags_pins_that_are_behind_or_gone(
    change: dict[str, str | None],
    status: str | None,
    code: int,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    raw, _ = stack_config("dev")
    pins = addon_versions(K8S)
    assert '"kubernetesVersion"' not in raw["eks-platform:cluster"], "dev runs the default version"
    eks = _eks()
    session = StubbedSession(eks)
    with Stubber(eks) as stub:
        _stub_all(stub, {**pins, **change}, pins)
        assert tool.main(["--stack", "dev"], session=session, schema_dir=tmp_path) == code
        stub.assert_no_pending_responses()
    assert session.regions == ["eu-west-1"]
    out = capsys.readouterr().out
    for addon in pins:
        assert addon in out
    assert (status is not None and status in out) or ("bump" not in out and "not offered" not in out)
    offered = {a: v for a, v in pins.items() if {**pins, **change}[a]}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{a}-{v}.json" for a, v in offered.items())


def test_an_aws_error_is_its_own_text_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """moto answers DescribeAddonVersions with a real error response (404, not implemented)."""
    with mock_aws():
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test")
        assert tool.main(["--stack", "dev"], session=session) == 2
    err = capsys.readouterr().err
    assert "AWS refused the add-on lookup" in err and "DescribeAddonVersions operation" in err
    assert "Traceback" not in err


def test_access_denied_is_reported_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    eks = _eks()
    with Stubber(eks) as stub:
        stub.add_client_error(
            "describe_addon_versions",
            "AccessDeniedException",
            "User is not authorized to perform eks:Describe",
        )
        assert tool.main(["--stack", "dev"], session=StubbedSession(eks)) == 2
    err = capsys.readouterr().err
    assert "AccessDeniedException" in err and "not authorized" in err and "Traceback" not in err


def test_no_credentials_is_the_sdk_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    core = botocore.session.Session()
    core.get_component("credential_provider").providers = []  # nowhere to find credentials
    assert tool.main(["--stack", "dev"], session=boto3.Session(botocore_session=core)) == 2
    err = capsys.readouterr().err
    assert "Unable to locate credentials" in err and "Traceback" not in err


def test_a_bad_stack_file_is_reported_without_calling_aws(capsys: pytest.CaptureFixture[str]) -> None:
    assert tool.main(["--stack", "no-such-stack"], session=StubbedSession(None)) == 2
    assert "Pulumi.no-such-stack.yaml" in capsys.readouterr().err


def test_the_schema_of_every_pinned_version_is_recorded_with_its_date_and_call(tmp_path: Path) -> None:
    eks = _eks()
    pins = {"aws-ebs-csi-driver": "v1.53.0-eksbuild.1", "coredns": "v1.13.1-eksbuild.1"}
    with Stubber(eks) as stub:
        for addon, version in sorted(pins.items()):
            params = {"addonName": addon, "addonVersion": version}
            stub.add_response("describe_addon_configuration", _configuration(addon, version), params)
        written = tool.record_schemas(
            eks, pins, "eu-west-1", folder=tmp_path, today=datetime.date(2026, 12, 5)
        )
        stub.assert_no_pending_responses()
    assert [p.name for p in written] == [
        "aws-ebs-csi-driver-v1.53.0-eksbuild.1.json",
        "coredns-v1.13.1-eksbuild.1.json",
    ]
    record = json.loads(written[0].read_text())
    assert record["configurationSchema"] == SCHEMA  # parsed, not AWS's JSON string
    assert record["recorded"] == "2026-12-05"
    assert (
        "DescribeAddonConfiguration addonName=aws-ebs-csi-driver addonVersion=v1.53.0-eksbuild.1"
        in record["source"]
    )
    assert "eu-west-1" in record["source"]
    # The plan reads what the tool writes.
    assert addon_schema("aws-ebs-csi-driver", "v1.53.0-eksbuild.1", tmp_path) == SCHEMA


def test_a_recorded_schema_is_kept_unless_refreshed(tmp_path: Path) -> None:
    eks = _eks()
    pins = {"coredns": "v1"}
    (tmp_path / "coredns-v1.json").write_text("{}")
    with Stubber(eks) as stub:  # no reply stubbed: any call would fail the test
        assert tool.record_schemas(eks, pins, "eu-west-1", folder=tmp_path) == []
    with Stubber(eks) as stub:
        params = {"addonName": "coredns", "addonVersion": "v1"}
        stub.add_response("describe_addon_configuration", _configuration("coredns", "v1"), params)
        assert len(tool.record_schemas(eks, pins, "eu-west-1", folder=tmp_path, refresh=True)) == 1
    assert json.loads((tmp_path / "coredns-v1.json").read_text())["addonVersion"] == "v1"


def test_a_schema_aws_cannot_give_exits_2_after_the_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    raw_pins = addon_versions(K8S)
    eks = _eks()
    with Stubber(eks) as stub:
        _stub_all(stub, raw_pins)
        first = sorted(raw_pins)[0]
        stub.add_client_error(
            "describe_addon_configuration", "ResourceNotFoundException", f"No addon: {first}"
        )
        assert tool.main(["--stack", "dev"], session=StubbedSession(eks), schema_dir=tmp_path) == 2
    captured = capsys.readouterr()
    assert first in captured.out  # the version table still printed
    assert "Could not record an add-on configuration schema" in captured.err
    assert "ResourceNotFoundException" in captured.err and "Traceback" not in captured.err
    assert list(tmp_path.iterdir()) == []


def test_a_reply_that_is_not_a_json_schema_is_refused(tmp_path: Path) -> None:
    eks = _eks()
    with Stubber(eks) as stub:
        params = {"addonName": "coredns", "addonVersion": "v1"}
        stub.add_response(
            "describe_addon_configuration", _configuration("coredns", "v1", {"type": 7}), params
        )
        with pytest.raises(ValueError, match="configuration schema of coredns v1 is not a JSON schema"):
            tool.record_schemas(eks, {"coredns": "v1"}, "eu-west-1", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []
