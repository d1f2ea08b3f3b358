"""The plan is the same bytes on every run: CI artifacts and `make diff` compare plans of one commit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from model.records import Registration
from tools import plan as plan_cli
from tools.mocks import _sorted_keys, canonical_order


def _reg(urn: str, parent: str | None, deps: tuple[str, ...] = ()) -> Registration:
    return Registration(
        urn=urn,
        type="t",
        name=urn,
        parent=parent,
        custom=True,
        provider=None,
        providers={},
        protect=False,
        retain_on_delete=False,
        dependencies=list(deps),
        raw_inputs={},
    )


def test_canonical_order_puts_parents_first_and_siblings_by_urn() -> None:
    records = [_reg("b/2", "b"), _reg("a", None), _reg("b", None), _reg("b/1", "b"), _reg("a/1", "a")]
    expected = ["a", "a/1", "b", "b/1", "b/2"]
    for seed in range(5):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert [r.urn for r in canonical_order(shuffled)] == expected


def test_a_parent_outside_the_records_counts_as_the_root() -> None:
    # Children of the Stack (never recorded) are top-level; nothing is dropped.
    records = [_reg("z", "stack-urn"), _reg("y", "stack-urn")]
    assert [r.urn for r in canonical_order(records)] == ["y", "z"]


def test_map_keys_are_sorted_at_every_depth_and_list_order_is_kept() -> None:
    value = {"b": [{"y": 1, "x": 2}, 3], "a": {"d": 1, "c": 2}}
    out = _sorted_keys(value)
    assert list(out) == ["a", "b"] and list(out["a"]) == ["c", "d"]
    assert list(out["b"][0]) == ["x", "y"] and out["b"][1] == 3
    assert out == value


def _plan(stack: str, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[bytes, str]:
    assert plan_cli.main(["--stack", stack, "--json", str(path)]) == 0
    return path.read_bytes(), capsys.readouterr().out


@pytest.mark.parametrize("stack", ["prod"])
def test_two_runs_print_and_write_the_same_bytes(
    stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first_json, first_text = _plan(stack, tmp_path / "plan.json", capsys)
    second_json, second_text = _plan(stack, tmp_path / "plan.json", capsys)
    assert first_json == second_json
    assert first_text == second_text
    # Dependencies arrive in the order their inputs resolved; the plan lists them sorted.
    resources = json.loads(first_json)["resources"]
    assert any(len(r["dependencies"]) > 1 for r in resources)
    assert all(r["dependencies"] == sorted(r["dependencies"]) for r in resources)
