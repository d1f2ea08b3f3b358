"""`make addon-versions` against real boto3 clients: moto's in-process AWS and botocore's Stubber.

moto 5.2.5 does not implement EKS DescribeAddonVersions: it answers with a real 404 error
response, which is the "AWS returns an error" case. The answers AWS does give are served by
botocore's Stubber, which checks every request and response against the EKS API model that boto3
itself uses (botocore/data/eks/.../service-2.json), so a misspelt parameter or a reply of the
wrong shape fails the test. No test reads credentials or the environment.
"""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from moto import mock_aws

from stacks.data import addon_versions
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


def _stub_all(stub: Stubber, newest: dict[str, str | None]) -> None:
    for addon in sorted(newest):
        version = newest[addon]
        reply = _reply(addon, version) if version else {"addons": []}
        stub.add_response("describe_addon_versions", reply, {"addonName": addon, "kubernetesVersion": K8S})


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({}, None, 0),
        ({"coredns": "v9.0.0-eksbuild.1"}, "bump", 1),
        ({"coredns": None}, "not offered", 1),
    ],
)
def test_the_table_flags_pins_that_are_behind_or_gone(
    change: dict[str, str | None], status: str | None, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = stack_config("dev")
    pins = addon_versions(K8S)
    assert '"kubernetesVersion"' not in raw["eks-platform:cluster"], "dev runs the default version"
    eks = _eks()
    session = StubbedSession(eks)
    with Stubber(eks) as stub:
        _stub_all(stub, {**pins, **change})
        assert tool.main(["--stack", "dev"], session=session) == code
        stub.assert_no_pending_responses()
    assert session.regions == ["eu-west-1"]
    out = capsys.readouterr().out
    for addon in pins:
        assert addon in out
    assert (status is not None and status in out) or ("bump" not in out and "not offered" not in out)


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
