"""`make test` ends with what it did not check: the skips grouped by reason (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.skips import skip_reasons
from tools.mocks import ROOT

SKIPPING = """
import pytest

@pytest.mark.parametrize("chart", ["argocd", "karpenter", "external-secrets"])
def test_renders(chart):
    pytest.skip("no pinned chart package in the cache: run `make charts`")

@pytest.mark.skipif(True, reason="make is not installed")
def test_make():
    pass

def test_runs():
    pass
"""


def _report(nodeid: str, reason: str) -> pytest.TestReport:
    return pytest.TestReport(nodeid, ("f.py", 1, nodeid), {}, "skipped", ("f.py", 3, reason), "call")


def test_skip_reasons_are_grouped_most_first() -> None:
    reports = [
        _report("a", "Skipped: no cache"),
        _report("b", "Skipped: no make"),
        _report("c", "Skipped: no cache"),
    ]
    assert skip_reasons(reports) == [("no cache", ["a", "c"]), ("no make", ["b"])]


def test_the_summary_names_each_skip_reason_under_xdist(tmp_path: Path) -> None:
    """pytest-xdist runs the tests in workers: the reasons still reach the controller's summary."""
    (tmp_path / "conftest.py").write_text("from tests.skips import pytest_terminal_summary  # noqa: F401\n")
    (tmp_path / "test_offline.py").write_text(SKIPPING)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "1", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "4 skipped: not checked here, by reason" in out, out
    assert "  3 x no pinned chart package in the cache: run `make charts`" in out
    assert "  1 x make is not installed" in out
    assert "e.g. test_offline.py::test_renders[" in out and "(+2 more)" in out
    assert out.index("by reason") < out.rindex("1 passed, 4 skipped"), "the reasons come before the count"
