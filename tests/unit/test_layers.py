"""The house reads one way (README, Layout): each layer imports only the layers below it.

    stacks/data.py (the one reader of platform/) <- model/ <- analyses (analysis/, policy/) <- tools/
    components/ <- stacks/ (the program: a component takes what it needs through its Args)

Read from the source (every import statement, also those inside functions), not from what happens
to be imported at run time, so a lazy import cannot hide a wrong edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.mocks import ROOT

# Folder -> top-level packages its modules must never import. Of stacks/, the model and the analyses
# read the pinned data (stacks/data.py) and nothing else: never the stack config or the composition.
FORBIDDEN = {
    "model": ("analysis", "tools", "stacks"),
    "analysis": ("tools", "stacks"),
    "policy": ("analysis", "tools", "stacks"),
    # A component takes what it needs through its Args; the composition (stacks/) maps config to them.
    "components": ("stacks", "model", "analysis", "tools"),
}
BELOW_EVERY_LAYER = {"stacks.data"}


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import statement of a module, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, module in imports(path)
        if module.split(".")[0] in forbidden and module not in BELOW_EVERY_LAYER
    ]


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(folder: str) -> None:
    assert violations(folder, FORBIDDEN[folder]) == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    module.write_text("def f() -> None:\n    from tools.mocks import run_stack\n", encoding="utf-8")
    assert list(imports(module)) == [(2, "tools.mocks")]
