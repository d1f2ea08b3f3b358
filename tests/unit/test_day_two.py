"""`make test-day-two` (tools/day_two.py): the copy it tests, the commits it runs `make test` on,
and an exit status that says what failed. The copy's own `make test` is CI's to run (.ci/run),
not the suite's: the suite cannot run itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import day_two
from tools.mocks import ROOT, stack_names
from tools.new_service import PLATFORM_SIDE


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


def test_it_tests_the_first_commit_then_the_service_and_a_stack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[tuple[str, ...]] = []
    results = iter((0, 1))  # the first commit passes, the whole fails

    def run(repo: Path, *command: str) -> int:
        ran.append(command)
        return next(results) if "test" in command else 0

    monkeypatch.setattr(day_two, "copy", lambda work: work)
    monkeypatch.setattr(day_two, "run", run)
    monkeypatch.setattr(day_two, "second_commit", lambda repo, service: ([], []))
    assert day_two.main([]) == 1
    service = day_two.unused("orders", {p.name for p in (ROOT / "services").iterdir()})
    stack = day_two.unused("staging", set(stack_names()))
    assert [c[2:] for c in ran] == [
        ("new-service", f"NAME={service}"),
        ("test",),
        ("new-stack", f"NAME={stack}", "FROM=prod"),
        ("test",),
    ]
    out = capsys.readouterr().out
    assert f"make test with the new service {service} and stack {stack} fails (exit 1)" in out


def test_a_failing_first_commit_stops_there(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[tuple[str, ...]] = []

    def run(repo: Path, *command: str) -> int:
        ran.append(command)
        return 1 if "test" in command else 0

    monkeypatch.setattr(day_two, "copy", lambda work: work)
    monkeypatch.setattr(day_two, "run", run)
    monkeypatch.setattr(day_two, "second_commit", lambda repo, service: ([], []))
    assert day_two.main([]) == 1
    assert [c[2] for c in ran] == ["new-service", "test"]
    assert "make test on the first commit of the new service" in capsys.readouterr().out


def test_a_refused_command_stops_before_the_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[tuple[str, ...]] = []

    def refuse(repo: Path, *command: str) -> int:
        ran.append(command)
        return 2

    monkeypatch.setattr(day_two, "copy", lambda work: work)
    monkeypatch.setattr(day_two, "run", refuse)
    assert day_two.main([]) == 2
    assert len(ran) == 1


def test_the_first_commit_alone_is_tested_without_the_second(tmp_path: Path) -> None:
    """The guide's first commit (PLATFORM_SIDE) stays; the rest of what new-service wrote waits."""
    repo = day_two.copy(tmp_path)
    # A name no service of the checkout has (a team may well have added `orders`).
    name = day_two.unused("orders", {p.name for p in (repo / "services").iterdir()})
    (repo / "services" / name / "deploy").mkdir(parents=True)
    (repo / "services" / name / "deploy" / "dev.yaml").write_text("{}\n")
    (repo / "services" / name / "Dockerfile").write_text("FROM scratch\n")
    (repo / "platform" / "gitops" / "dev" / f"{name}.yaml").write_text("{}\n")
    with (repo / "Pulumi.dev.yaml").open("a") as f:
        f.write("# edited\n")
    later, changed = day_two.second_commit(repo, name)
    assert sorted(later) == [f"platform/gitops/dev/{name}.yaml", f"services/{name}/Dockerfile"]
    assert changed == []
    day_two.move(later, repo, tmp_path / "shelf")
    assert not (repo / "services" / name / "Dockerfile").exists()
    assert (repo / "services" / name / "deploy" / "dev.yaml").exists()
    day_two.move(later, tmp_path / "shelf", repo)
    assert (repo / "platform" / "gitops" / "dev" / f"{name}.yaml").read_text() == "{}\n"
    # A change to a file the checkout has cannot wait: the guide would be wrong.
    with (repo / "Makefile").open("a") as f:
        f.write("# edited\n")
    assert day_two.second_commit(repo, name)[1] == ["Makefile"]


def test_the_guide_names_the_first_commit_the_command_tests() -> None:
    guide = (ROOT / "platform" / "gitops" / "README.md").read_text()
    assert f"git add {' '.join(p.format(name='orders') for p in PLATFORM_SIDE)}" in guide


def test_unused_names() -> None:
    assert day_two.unused("orders", set()) == "orders"
    assert day_two.unused("orders", {"orders", "orders2"}) == "orders3"
