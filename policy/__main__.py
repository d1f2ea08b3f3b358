"""The CrossGuard entry point: `pulumi preview --policy-pack policy` runs this file. It only builds
the PolicyPack (constructing one starts the analyzer's gRPC server and blocks), so nothing imports
it; the rules and their wiring live in importable modules. The CLI runs it with the pack folder as
the working directory, so the repository root goes on sys.path for the `policy` package.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.crossguard import policies, stack_is_production

PolicyPack(
    name="eks-platform",
    policies=policies(stack_is_production()),
    enforcement_level=EnforcementLevel.ADVISORY,
)
