"""`make test-day-two` (tools/day_two.py): the copy it tests, the commands it runs in order, and an
exit status that says what failed. The copy's own `make test` is CI's to run (.ci/run), not the
suite's: the suite cannot run itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import day_two
from tools.mocks import ROOT, stack_names


def test_the_copy_is_a_clone_of_head_that_borrows_the_virtualenvs(tmp_path: Path) -> None:
    repo = day_two.copy(tmp_path)
    assert (repo / ".git").is_dir() and (repo / "Makefile").is_file()
    for name in day_two.BORROWED:
        if (ROOT / name).exists():
            assert (repo / name).resolve() == (ROOT / name).resolve()
    # Older than any stamp: the copy's make installs nothing.
    assert all(os.stat(p).st_mtime == 0 for p in repo.glob("requirements*.txt"))
    if (ROOT.parent / "shared").exists():
        assert (tmp_path / "shared").resolve() == (ROOT.parent / "shared").resolve()


def test_it_adds_a_service_and_a_stack_then_runs_make_test(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[tuple[str, ...]] = []

    def run(repo: Path, *command: str) -> int:
        ran.append(command)
        return 1 if "test" in command else 0

    monkeypatch.setattr(day_two, "copy", lambda work: work)
    monkeypatch.setattr(day_two, "run", run)
    assert day_two.main([]) == 1
    service = day_two.unused("orders", {p.name for p in (ROOT / "services").iterdir()})
    stack = day_two.unused("staging", set(stack_names()))
    assert [c[2:] for c in ran] == [
        ("new-service", f"NAME={service}"),
        ("new-stack", f"NAME={stack}", "FROM=prod"),
        ("test",),
    ]
    assert (
        f"make test with the new service {service} and stack {stack} fails (exit 1)"
        in capsys.readouterr().out
    )


def test_a_refused_command_stops_before_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str, ...]] = []

    def refuse(repo: Path, *command: str) -> int:
        ran.append(command)
        return 2

    monkeypatch.setattr(day_two, "copy", lambda work: work)
    monkeypatch.setattr(day_two, "run", refuse)
    assert day_two.main([]) == 2
    assert len(ran) == 1


def test_unused_names() -> None:
    assert day_two.unused("orders", set()) == "orders"
    assert day_two.unused("orders", {"orders", "orders2"}) == "orders3"
