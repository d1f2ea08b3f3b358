"""`make destroy` refuses a stack whose account-wide OIDC provider another stack reuses
(tools/destroy_guard.py; review 19, round 5: destroying dev's identity in an account shared with
prod deleted the Pulumi provider prod's deploy role trusts)."""

from __future__ import annotations

import pytest
from rich.console import Console

from stacks.config import PlatformConfig
from tools import destroy_guard
from tools.stackcli import load_config

PULUMI_ARN = "arn:aws:iam::111111111111:oidc-provider/api.pulumi.com/oidc"
GITHUB_ARN = "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"


def configs(**reuse: str) -> dict[str, PlatformConfig]:
    """dev and prod as committed, prod reusing the providers named in `reuse`."""
    loaded = {s: load_config(s, Console(stderr=True)) for s in ("dev", "prod")}
    assert all(loaded.values())
    dev, prod = loaded["dev"], loaded["prod"]
    assert dev is not None and prod is not None
    if "pulumi" in reuse:
        prod = prod.model_copy(
            update={
                "deployments": prod.deployments.model_copy(
                    update={"pulumi_oidc_provider_arn": reuse["pulumi"]}
                )
            }
        )
    if "github" in reuse:
        prod = prod.model_copy(
            update={
                "delivery": prod.delivery.model_copy(update={"github_oidc_provider_arn": reuse["github"]})
            }
        )
    return {"dev": dev, "prod": prod}


def test_separate_accounts_as_committed_pass() -> None:
    both = configs()
    for stack in both:
        for project in ("platform", "identity"):
            assert destroy_guard.problems(stack, project, both) == []


def test_the_creator_of_a_reused_pulumi_provider_is_refused() -> None:
    shared = configs(pulumi=PULUMI_ARN)
    (message,) = destroy_guard.problems("dev", "identity", shared)
    assert message.startswith("dev created the api.pulumi.com/oidc OIDC provider and prod reuses one")
    assert "deployments.pulumiOidcProviderArn" in message and "FORCE=1" in message
    # The platform project creates GitHub's, not Pulumi's; the reuser itself may go.
    assert destroy_guard.problems("dev", "platform", shared) == []
    assert destroy_guard.problems("prod", "identity", shared) == []


def test_the_creator_of_a_reused_github_provider_is_refused() -> None:
    shared = configs(github=GITHUB_ARN)
    (message,) = destroy_guard.problems("dev", "platform", shared)
    assert "token.actions.githubusercontent.com" in message and "delivery.githubOidcProviderArn" in message
    assert destroy_guard.problems("dev", "identity", shared) == []


def test_the_command_exits_2_unless_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = configs(pulumi=PULUMI_ARN)
    monkeypatch.setattr(destroy_guard, "load_config", lambda stack, errors: shared[stack])
    monkeypatch.setattr(destroy_guard, "stack_names", lambda: ["dev", "prod"])
    monkeypatch.delenv("FORCE", raising=False)
    assert destroy_guard.main(["--stack", "dev", "--project", "identity"]) == 2
    assert "Refused:" in capsys.readouterr().err
    monkeypatch.setenv("FORCE", "1")
    assert destroy_guard.main(["--stack", "dev", "--project", "identity"]) == 0
