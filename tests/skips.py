"""The end of `make test`: what a green run did not check, its skips grouped by reason.

Offline, tests that need the chart cache, the shared schemas or a tool skip; a count of skips hides
which. `pytest_terminal_summary` (imported by tests/conftest.py) lists every reason with its count
and one test it skipped. pytest-xdist (`make unit` runs `-n auto`) runs the tests in workers, and
their reports, reasons included, reach this hook in the controller. Imports nothing of the project,
so tests/unit/test_skip_summary.py runs it in a bare pytest.
"""

from __future__ import annotations

from typing import Any

import pytest


def skip_reasons(reports: list[pytest.TestReport]) -> list[tuple[str, list[str]]]:
    """Skipped tests grouped by reason, most first: (reason, node ids)."""
    groups: dict[str, list[str]] = {}
    for report in reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        groups.setdefault(reason.removeprefix("Skipped: "), []).append(report.nodeid)
    return sorted(groups.items(), key=lambda group: (-len(group[1]), group[0]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What a green run did not check: every skip reason with its count and a test it skipped (with
    `-n`, pytest-xdist runs the tests in workers; the reports, reasons included, reach this hook)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if r.when in ("setup", "call")]
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} skipped: not checked here, by reason", sep="-")
    for reason, nodeids in skip_reasons(skipped):
        more = f" (+{len(nodeids) - 1} more)" if len(nodeids) > 1 else ""
        terminalreporter.write_line(f"{len(nodeids):>3} x {reason}")
        terminalreporter.write_line(f"      e.g. {nodeids[0]}{more}")
