"""`make ami-versions` against real boto3 clients: moto's in-process AWS and botocore's Stubber.

moto 5.2.5 serves some public SSM parameters (ami-amazon-linux-latest, ecs/optimized-ami,
global-infrastructure), not `/aws/service/eks/optimized-ami/...`, and its PutParameter refuses
any `/aws/...` path ("No access to reserved parameter name", as AWS does), so the parameter cannot
be put there first: moto answers GetParameter with a real ParameterNotFound, the "AWS returns an
error" case. The answer AWS does give is served by botocore's Stubber, which checks the request
and the reply against the SSM API model boto3 itself uses. No test reads credentials or the
environment.
"""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from moto import mock_aws

from tools import ami_versions as tool
from tools.mocks import stack_config

PROD_PARAM = (
    "/aws/service/eks/optimized-ami/1.35/amazon-linux-2023/arm64/standard/recommended/release_version"
)


class StubbedSession:
    """Hands out one real, stubbed SSM client, as boto3.Session().client would."""

    def __init__(self, client: Any):
        self.ssm = client
        self.regions: list[str] = []

    def client(self, service: str, region_name: str) -> Any:
        assert service == "ssm"
        self.regions.append(region_name)
        return self.ssm


def _ssm() -> Any:
    return boto3.Session(aws_access_key_id="test", aws_secret_access_key="test").client(
        "ssm", region_name="eu-west-1"
    )


def _reply(value: str) -> dict[str, Any]:
    return {"Parameter": {"Name": PROD_PARAM, "Type": "String", "Value": value, "Version": 1}}


def test_the_parameter_path_is_the_documented_one() -> None:
    assert tool.parameter_name("1.35", "arm64") == PROD_PARAM
    x86 = PROD_PARAM.replace("/1.35/", "/1.34/").replace("/arm64/", "/x86_64/")
    assert tool.parameter_name("1.34", "x86_64") == x86


@pytest.mark.parametrize(
    ("pinned", "current", "expected"),
    [
        ("1.35.6-20260714", "1.35.6-20260714", ""),
        ("1.35.6-20260714", "1.35.6-20260801", "bump"),
        ("1.35.6-20260714", "1.35.7-20260714", "bump"),
        ("1.35.7-20260801", "1.35.6-20260714", ""),
        (None, "1.35.6-20260714", "latest"),
    ],
)
def test_status(pinned: str | None, current: str, expected: str) -> None:
    assert tool.status(pinned, current) == expected


@pytest.mark.parametrize(
    ("stack", "current", "code", "shown"),
    [
        ("prod", "1.35.6-20260714", 0, None),
        ("prod", "1.35.8-20261110", 1, "bump"),
        ("dev", "1.35.8-20261110", 0, "follows the latest"),
    ],
)
def test_pinned_vs_current(stack: str, current: str, code: int, shown: str | None, capsys) -> None:
    raw, _ = stack_config(stack)
    assert '"kubernetesVersion"' not in raw["eks-platform:cluster"], "both stacks run the default 1.35"
    ssm = _ssm()
    session = StubbedSession(ssm)
    with Stubber(ssm) as stub:
        stub.add_response("get_parameter", _reply(current), {"Name": PROD_PARAM})
        assert tool.main(["--stack", stack], session=session) == code
        stub.assert_no_pending_responses()
    assert session.regions == ["eu-west-1"]
    out = capsys.readouterr().out
    assert current in out
    assert ("1.35.6-20260714" in out) is (stack == "prod")  # the prod pin, shown beside the current
    assert (shown is None and "bump" not in out) or (shown is not None and shown in out)


def test_a_missing_parameter_is_awss_error_and_exit_2(capsys) -> None:
    """moto answers with a real ParameterNotFound (it does not serve the EKS parameters)."""
    with mock_aws():
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test")
        assert tool.main(["--stack", "prod"], session=session) == 2
    err = capsys.readouterr().err
    assert "AWS refused the AMI release lookup" in err and "ParameterNotFound" in err
    assert "Traceback" not in err


def test_access_denied_is_reported_cleanly(capsys) -> None:
    ssm = _ssm()
    with Stubber(ssm) as stub:
        stub.add_client_error("get_parameter", "AccessDeniedException", "not authorized: ssm:GetParameter")
        assert tool.main(["--stack", "prod"], session=StubbedSession(ssm)) == 2
    err = capsys.readouterr().err
    assert "AccessDeniedException" in err and "not authorized" in err and "Traceback" not in err


def test_no_credentials_is_the_sdk_message_not_a_traceback(capsys) -> None:
    core = botocore.session.Session()
    core.get_component("credential_provider").providers = []  # nowhere to find credentials
    assert tool.main(["--stack", "prod"], session=boto3.Session(botocore_session=core)) == 2
    err = capsys.readouterr().err
    assert "Unable to locate credentials" in err and "Traceback" not in err


def test_a_bad_stack_file_is_reported_without_calling_aws(capsys) -> None:
    assert tool.main(["--stack", "no-such-stack"], session=StubbedSession(None)) == 2
    assert "Pulumi.no-such-stack.yaml" in capsys.readouterr().err


def test_bottlerocket_is_refused_without_calling_aws(monkeypatch, capsys) -> None:
    from tools.stackcli import load_config

    def bottlerocket(stack: str, errors: Any) -> Any:
        cfg = load_config(stack, errors)
        assert cfg is not None
        nodes = cfg.system_node_group.model_copy(update={"ami_family": "Bottlerocket"})
        return cfg.model_copy(update={"system_node_group": nodes})

    monkeypatch.setattr(tool, "load_config", bottlerocket)
    assert tool.main(["--stack", "dev"], session=StubbedSession(None)) == 2
    assert "amiFamily is Bottlerocket" in capsys.readouterr().err
