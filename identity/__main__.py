"""eks-platform-identity: one platform stack's deploy identity, applied by admins (stacks/identity.py)."""

import sys
from pathlib import Path

import pulumi

# The repository root, for components/ and stacks/: Pulumi runs this program from identity/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stacks.identity import build_identity, load

for key, value in build_identity(load()).items():
    pulumi.export(key, value)
