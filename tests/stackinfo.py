"""What a test may know of a stack without assuming its name: whether its stack file says
`production: true`. A stack copied from prod (`make new-stack NAME=staging FROM=prod`) is a
production stack under another name; a test that asked `stack == "prod"` failed it."""

from __future__ import annotations

from functools import cache

from tools.mocks import project_name, stack_config


@cache
def is_production(stack: str) -> bool:
    raw, _ = stack_config(stack)
    return raw.get(f"{project_name()}:production") == "true"
