"""The checkout and its stacks, without the SDKs: where it is and which `Pulumi.<stack>.yaml` it has.

tools/mocks.py (the offline engine) serves both names to the tools and tests; the test session's
pytest-xdist controller reads them here, so it can start its workers without importing the Pulumi
SDKs, which only the workers use.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stack_names(root: Path = ROOT) -> list[str]:
    """Every stack of the checkout: one per `Pulumi.<stack>.yaml` beside Pulumi.yaml, sorted."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
