"""eks-platform: load this stack's config once, build the platform, export its outputs."""

import pulumi

from stacks.config import load
from stacks.platform import build

for key, value in build(load()).items():
    pulumi.export(key, value)
