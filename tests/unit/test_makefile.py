"""`make help` lists every target of the Makefile and the stacks of the checkout."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tools.mocks import ROOT, stack_names

MAKEFILE = ROOT / "Makefile"


def phony_targets(text: str) -> set[str]:
    return {t for line in re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE) for t in line.split()}


def listed_targets(help_text: str) -> set[str]:
    """The targets `make help` names: `make plan ...`, `make preview|up|destroy ...`."""
    return {t for group in re.findall(r"\bmake ([a-z|-]+)", help_text) for t in group.split("|")}


@pytest.fixture(scope="module")
def help_text() -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_is_the_default_goal() -> None:
    assert re.search(r"^\.DEFAULT_GOAL := help$", MAKEFILE.read_text(), re.MULTILINE)


def test_help_lists_every_target(help_text: str) -> None:
    phony = phony_targets(MAKEFILE.read_text())
    assert {"plan", "test", "lint", "typecheck", "unit", "addon-versions"} <= phony
    assert phony - {"help"} <= listed_targets(help_text), phony - listed_targets(help_text)
    # and it names no target the Makefile lacks
    assert listed_targets(help_text) <= phony, listed_targets(help_text) - phony


def test_help_names_the_stacks_of_the_checkout(help_text: str) -> None:
    assert f"Stacks: {' '.join(stack_names())} " in help_text


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("  make plan [STACK=<stack>]  x", {"plan"}),
        ("  make preview|up|destroy STACK=<stack>  x", {"preview", "up", "destroy"}),
        ("  nothing here", set()),
    ],
)
def test_listed_targets_reads_help_lines(text: str, found: set[str]) -> None:
    assert listed_targets(text) == found


@pytest.mark.parametrize(
    ("knob", "flag"),
    [
        ("JSON=plan.json", "--json plan.json"),
        ("TREE=1", "--tree"),
        ("OBJECTS=1", "--objects"),
        ("SUMMARY=1", "--summary"),
    ],
)
def test_make_plan_passes_each_knob_help_names(help_text: str, knob: str, flag: str) -> None:
    assert f"[{knob.partition('=')[0]}=" in help_text, f"make help does not name {knob}"
    # -n prints the commands without running them; -o skips a virtualenv rebuild in a fresh checkout.
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "plan", "STACK=dev", knob],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    commands = [line for line in dry.stdout.splitlines() if "tools.plan" in line]
    assert len(commands) == 1 and flag in commands[0], dry.stdout
    assert (
        "--objects"
        not in subprocess.run(
            ["make", "-n", "-o", ".venv/.installed", "plan", "STACK=dev"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        ).stdout
    )


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["new-service", "NAME=orders"], 'tools.new_service "orders"'),
        (["new-stack", "NAME=staging", "FROM=dev"], 'tools.new_stack "staging" --from "dev"'),
        (["new-stack", "NAME=staging"], 'tools.new_stack "staging" --from ""'),
    ],
)
def test_the_day_two_targets_pass_name_and_from(help_text: str, args: list[str], command: str) -> None:
    assert f"make {args[0]} NAME=<name>" in help_text
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    (line,) = [line for line in dry.stdout.splitlines() if "tools.new_" in line]  # under `make test`: make[1]
    assert line.endswith(command), dry.stdout


def dry_run(*args: str) -> list[str]:
    """The commands `make -n` would run (none runs)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("target", "requirements"),
    [("plan", "requirements.txt"), ("unit", "requirements-dev.txt"), ("scan", "checkov")],
)
def test_a_first_install_says_what_it_installs_and_why_before_pip_runs(
    target: str, requirements: str
) -> None:
    """pip runs with --quiet: without a word first, a fresh `make plan` sits silent for a minute."""
    # -W: as if the requirements file had just changed; -B for checkov, whose stamp has no prerequisite.
    force = ["-B", "-o", ".venv/.installed", "-o", ".venv/.installed-dev"] if target == "scan" else []
    lines = dry_run(*force, "-W", "requirements.txt", "-W", "requirements-dev.txt", target)
    installs = [i for i, line in enumerate(lines) if "pip install" in line and requirements in line]
    assert installs, lines
    for i in installs:
        said, j = "", i - 1
        while j >= 0 and (lines[j].startswith("echo ") or " -m venv " in lines[j]):  # the words just before
            said = lines[j] + " " + said if lines[j].startswith("echo ") else said
            j -= 1
        assert requirements in said and "quiet" in said, f"no echo naming {requirements} before: {lines[i]}"
        assert "Installing" in said and ("make plan" in said or "make test" in said or "make scan" in said), (
            f"no echo naming {requirements} and what it is for before: {lines[i]}"
        )


def test_make_diff_passes_markdown_through() -> None:
    (command,) = [line for line in dry_run("-o", ".venv/.installed", "diff", "A=a.json", "B=b.json",
                                           "MARKDOWN=summary.md") if "tools.diff" in line]  # fmt: skip
    assert "--a a.json --b b.json" in command and "--markdown summary.md" in command
    (plain,) = [
        line
        for line in dry_run("-o", ".venv/.installed", "diff", "A=a.json", "B=b.json")
        if "tools.diff" in line
    ]
    assert "--markdown" not in plain


def test_the_install_message_docs_quote_is_what_make_prints() -> None:
    """docs/offline-plan.md quotes the first `make plan`'s words: they are the Makefile's echo lines."""
    lines = dry_run("-W", "requirements.txt", "plan")
    before_venv = lines[: next(i for i, line in enumerate(lines) if " -m venv " in line)]
    printed = [
        subprocess.run(["sh", "-c", line], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for line in before_venv
        if line.startswith("echo ")
    ]
    assert printed, lines
    quoted = (ROOT / "docs" / "offline-plan.md").read_text()
    assert "```\n" + "".join(printed) + "```" in quoted, "".join(printed)
