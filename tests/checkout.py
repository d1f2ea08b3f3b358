"""A temporary copy of the checkout, for tests that run a command the way a person would."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.mocks import ROOT


def copy_checkout(target: Path) -> Path:
    # Only the repository's own files: no virtualenvs (.venv, .venv-checkov), chart cache or caches.
    ignore = shutil.ignore_patterns(".git", ".venv*", ".charts", "*cache*", "__pycache__", "plan-*.json")
    shutil.copytree(ROOT, target, ignore=ignore)
    return target
