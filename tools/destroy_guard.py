"""`make destroy` refuses a stack that created an account-wide OIDC provider another stack reuses.

An account holds one IAM OIDC provider per issuer. In a single account shared by several stacks
(docs/delivery-accounts.md), one stack creates Pulumi Deployments' provider (`api.pulumi.com/oidc`,
the identity project) and GitHub's (`token.actions.githubusercontent.com`, the platform project, when
it has services), and the others name it in their stack file (`deployments.pulumiOidcProviderArn`,
`delivery.githubOidcProviderArn`). Destroying the creator deletes the provider: every Deployments run
of the others then fails to assume its role, or every CI role of theirs loses GitHub (review 19,
round 5). The stack files say who reuses; they cannot say which accounts the stacks are in, so
stacks in separate accounts pass with `FORCE=1`.

    python -m tools.destroy_guard --stack dev --project identity   # exit 0, or 2 with the reason
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from rich.console import Console

from stacks.config import PlatformConfig
from tools.mocks import stack_names
from tools.stackcli import load_config


@dataclass(frozen=True)
class Provider:
    issuer: str
    key: str  # the stack file key that reuses one
    project: str  # the project that creates it

    def reused(self, cfg: PlatformConfig) -> bool:
        if self.project == "identity":
            return cfg.deployments.pulumi_oidc_provider_arn is not None
        return cfg.delivery.github_oidc_provider_arn is not None

    def created(self, cfg: PlatformConfig) -> bool:
        """Whether the stack's `project` creates the provider (components/deploy_roles.py,
        components/registry.py)."""
        if self.project == "identity":
            return cfg.deployments.enabled and not self.reused(cfg)
        return bool(cfg.delivery.services) and not self.reused(cfg)


PROVIDERS = (
    Provider("api.pulumi.com/oidc", "deployments.pulumiOidcProviderArn", "identity"),
    Provider("token.actions.githubusercontent.com", "delivery.githubOidcProviderArn", "platform"),
)


def problems(stack: str, project: str, configs: dict[str, PlatformConfig]) -> list[str]:
    """Why destroying `project` of `stack` would delete a provider another stack reuses."""
    cfg = configs[stack]
    out = []
    for provider in PROVIDERS:
        if provider.project != project or not provider.created(cfg):
            continue
        if others := sorted(s for s, c in configs.items() if s != stack and provider.reused(c)):
            out.append(
                f"{stack} created the {provider.issuer} OIDC provider and {', '.join(others)} "
                f"reuse{'s' if len(others) == 1 else ''} one ({provider.key}): in one shared account "
                f"this destroy deletes theirs too. Destroy {', '.join(others)} first, or give one of "
                "them the provider (docs/delivery-accounts.md); if the stacks are in separate "
                "accounts, run again with FORCE=1"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make destroy", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--project", choices=("platform", "identity"), default="platform")
    args = parser.parse_args(argv)
    errors = Console(stderr=True)
    configs = {}
    for stack in stack_names():
        cfg = load_config(stack, errors)
        if cfg is None:
            errors.print(f"Pulumi.{stack}.yaml does not load: fix it before a destroy (nothing done).")
            return 2
        configs[stack] = cfg
    if args.stack not in configs:
        errors.print(f"No stack file Pulumi.{args.stack}.yaml: nothing to check.")
        return 0
    found = problems(args.stack, args.project, configs)
    if found and os.environ.get("FORCE") != "1":
        for message in found:
            errors.print(f"[red]Refused:[/] {message}", highlight=False, soft_wrap=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
