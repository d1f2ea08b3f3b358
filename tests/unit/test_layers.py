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


# platform/ is read through stacks/data.py only. The GitOps tree (platform/gitops/<stack>/, the folder
# `delivery.gitops.path` names) is the exception: it is the repository ArgoCD syncs, checked against
# the config by stacks/gitops_tree.py and written by `make new-service`/`make new-stack`, always
# through stacks/delivery.py's GITOPS_TREE.
PLATFORM_READER = Path("stacks/data.py")
PATH_CALLS = {"Path", "open", "glob", "rglob", "read_yaml", "joinpath"}


def _platform_literal(node: ast.AST) -> bool:
    """A string (or the start of an f-string) that names platform/ or something in it."""
    if isinstance(node, ast.JoinedStr) and node.values:
        node = node.values[0]
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value == "platform" or node.value.startswith("platform/"))
    )


def platform_paths(path: Path) -> Iterator[tuple[int, str]]:
    """Where a module finds platform/ itself: PLATFORM_DIR, `x / "platform"`, `Path("platform/...")`,
    `root.glob("platform/...")`, `open("platform/...")`."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name) and node.id == "PLATFORM_DIR":
            yield node.lineno, "PLATFORM_DIR"
        elif isinstance(node, ast.alias) and node.name == "PLATFORM_DIR":
            yield node.lineno, "imports PLATFORM_DIR"
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if _platform_literal(node.left) or _platform_literal(node.right):
                yield node.lineno, "joins a platform/ path"
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in PATH_CALLS and any(_platform_literal(a) for a in node.args):
                yield node.lineno, f"{name}() of a platform/ path"


def _modules() -> list[Path]:
    """Every Python module of the repository but the tests (which read the data they check)."""
    folders = [
        d
        for d in ROOT.iterdir()
        if d.is_dir()
        and not d.is_symlink()
        and d.name not in {"tests", "platform"}
        and (not d.name.startswith(".") or d.name == ".github")
    ]
    found = [ROOT / "__main__.py", *(p for d in folders for p in d.rglob("*.py"))]
    return sorted(p for p in found if p.relative_to(ROOT) != PLATFORM_READER)


def test_only_stacks_data_reads_platform() -> None:
    found = [f"{p.relative_to(ROOT)}:{line}: {what}" for p in _modules() for line, what in platform_paths(p)]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "from stacks.data import PLATFORM_DIR\n",
        "import pathlib\nx = pathlib.Path(__file__).parent / 'platform' / 'capacity.yaml'\n",
        "def f(root):\n    return root.glob(f'platform/gitops/*/{root}.yaml')\n",
        "open('platform/prices.yaml')\n",
    ],
)
def test_the_check_sees_a_module_finding_platform_itself(tmp_path: Path, source: str) -> None:
    module = tmp_path / "reader.py"
    module.write_text(source, encoding="utf-8")
    assert list(platform_paths(module))
