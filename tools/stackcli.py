"""What the command-line tools that read one stack share: its validated config, or a clear error."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from stacks.config import ConfigError, PlatformConfig, validate
from tools.mocks import StackFileError, project_name, stack_config


def load_config(stack: str, errors: Console) -> PlatformConfig | None:
    """The stack's config, validated as the program validates it; None after printing why not."""
    project = project_name()
    try:
        raw, _ = stack_config(stack, project)
        return validate(raw, project, stack, f"Pulumi.{stack}.yaml")
    except (ConfigError, StackFileError) as err:
        errors.print(escape(str(err)), highlight=False, soft_wrap=True)
        return None
