"""One way for every test module to check that a bad config section is rejected with its key named."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stacks.config import PROJECT, ConfigError, validate
from tools.mocks import stack_config


def assert_section_rejected(stack: str, section: str, value: Any, key: str, message: str) -> None:
    """Replace `eks-platform:<section>` of a committed stack file; an issue must name `key`, say `message`."""
    raw, _ = stack_config(stack)
    raw[f"{PROJECT}:{section}"] = json.dumps(value)
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, stack, f"Pulumi.{stack}.yaml")
    assert any(key in i.key and re.search(message, i.message) for i in info.value.issues), str(info.value)
    assert f"Pulumi.{stack}.yaml" in str(info.value)
