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
