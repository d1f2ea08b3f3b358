"""`make test-day-two`: the guides' promise, run. A copy of the checkout gets a second service
(`make new-service`), and `make test` runs on the guide's first commit alone (the platform side,
PLATFORM_SIDE: CI runs on that commit's pull request too), then on the whole service and a third
stack (`make new-stack ... FROM=prod`), unedited: the commands and the suite must agree on any set of
services and stacks, at every commit the guides name.

The unit suite itself cannot hold this (it would run itself twice): a test that assumed the one
sample service passed on the committed checkout and failed the first user who added a second
(review 20). CI runs this after `make test` (.ci/run).

The copy is a clone of HEAD (CI's clean clone is exactly that; locally, commit first: uncommitted
edits are not in it, and the command says so): the suite's git-based tests need a repository. It
borrows this checkout's `.venv` and `.venv-checkov` (the same pins) and sees the same reference
data beside it. Exit status: the copy's `make test`'s, or 2 when a command refused.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.mocks import ROOT, stack_names
from tools.new_service import PLATFORM_SIDE

BORROWED = (".venv", ".venv-checkov")


def unused(base: str, taken: set[str]) -> str:
    """`base`, or `base2`, `base3`...: a name the checkout does not use yet."""
    return next(name for name in (base, *(f"{base}{i}" for i in range(2, 99))) if name not in taken)


def copy(work: Path) -> Path:
    """A clone of HEAD under `work/repo`; `work/shared` points at the reference data beside this
    checkout."""
    repo = work / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)  # noqa: S603, S607 (fixed argv)
    for name in BORROWED:
        if (ROOT / name).exists():
            (repo / name).symlink_to((ROOT / name).resolve(), target_is_directory=True)
    # A clone's files are new: make would take requirements*.txt for newer than the borrowed
    # virtualenvs' stamps and reinstall. They are the same pins (a clone of HEAD).
    for requirements in repo.glob("requirements*.txt"):
        os.utime(requirements, (0, 0))
    shared = ROOT.parent / "shared"
    if shared.exists():
        (work / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    return repo


def git_status(cwd: Path, *options: str) -> list[str]:
    """`git status --porcelain` lines of the checkout at `cwd`."""
    done = subprocess.run(  # noqa: S603 (git with fixed options)
        ["git", "status", "--porcelain", *options],  # noqa: S607 (git on PATH, as make's)
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def second_commit(repo: Path, service: str) -> tuple[list[str], list[str]]:
    """What `make new-service` wrote outside the guide's first commit (PLATFORM_SIDE): (new files,
    changed files of the checkout). Only new files can wait for a second commit."""
    spec = [p.format(name=service) for p in PLATFORM_SIDE]
    later = [(line[:2], line[3:]) for line in git_status(repo, "--untracked-files=all")]
    later = [
        (state, p)
        for state, p in later
        if not any(fnmatch.fnmatch(p, s) or p.startswith(f"{s}/") for s in spec)
    ]
    return [p for state, p in later if state == "??"], [p for state, p in later if state != "??"]


def move(paths: list[str], source: Path, target: Path) -> None:
    """Move `paths` (relative) from `source` to `target`, keeping them relative: the second commit's
    files out of the copy to a shelf, and back."""
    for path in paths:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source / path), target / path)


def run(repo: Path, *command: str) -> int:
    print(f"$ {' '.join(command)}", flush=True)
    return subprocess.run(  # noqa: S603 (make, fixed targets)
        command, cwd=repo, check=False, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    ).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make test-day-two", description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="prod", help="the stack the third stack copies (FROM=)")
    parser.add_argument("--keep", action="store_true", help="keep the copy (its path is printed)")
    args = parser.parse_args(argv)
    service = unused("orders", {p.name for p in (ROOT / "services").iterdir()})
    stack = unused("staging", set(stack_names()))
    if changed := git_status(ROOT):
        print(f"Note: {len(changed)} uncommitted change(s) are not in the copy (a clone of HEAD).")
    work = Path(tempfile.mkdtemp(prefix="day-two-"))
    try:
        repo = copy(work)
        print(f"A copy at {repo}: service {service}, stack {stack} (FROM={args.source}), then make test.")
        if code := run(repo, "make", "--no-print-directory", "new-service", f"NAME={service}"):
            print(f"make new-service exited {code}: the day-two path is broken before the suite.")
            return 2
        later, changed = second_commit(repo, service)
        if changed:
            print(
                f"make new-service changed {', '.join(changed)}, outside the guide's first commit: "
                "fix the guide (PLATFORM_SIDE)"
            )
            return 2
        move(later, repo, work / "second-commit")
        print(f"The guide's first commit alone ({', '.join(p.format(name=service) for p in PLATFORM_SIDE)}):")
        if code := run(repo, "make", "--no-print-directory", "test"):
            print(f"make test on the first commit of the new service {service} fails (exit {code}).")
            return code
        move(later, work / "second-commit", repo)
        command = ("make", "--no-print-directory", "new-stack", f"NAME={stack}", f"FROM={args.source}")
        if code := run(repo, *command):
            print(f"make new-stack exited {code}: the day-two path is broken before the suite.")
            return 2
        code = run(repo, "make", "--no-print-directory", "test")
        verdict = "passes" if code == 0 else f"fails (exit {code})"
        print(f"make test with the new service {service} and stack {stack} {verdict}, no edit in between.")
        return code
    finally:
        if args.keep:
            print(f"Kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
