"""What the command-line tools that read one stack share: its validated config, or a clear error."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from stacks.config import ConfigError, PlatformConfig, validate
from tools.mocks import StackFileError, project_name, stack_config


def validated(stack: str, project: str | None = None) -> PlatformConfig:
    """The stack file's config, validated as the program validates it: with its secret keys (a
    `secure:` value is what `pulumi config set --secret` writes, and keys such as alertReceiverUrl
    must be one). Raises ConfigError or StackFileError."""
    project = project or project_name()
    raw, secret_keys = stack_config(stack, project)
    return validate(raw, project, stack, f"Pulumi.{stack}.yaml", frozenset(secret_keys))


def load_config(stack: str, errors: Console) -> PlatformConfig | None:
    """The stack's config, validated as the program validates it; None after printing why not."""
    try:
        return validated(stack)
    except (ConfigError, StackFileError) as err:
        errors.print(escape(str(err)), highlight=False, soft_wrap=True)
        return None
