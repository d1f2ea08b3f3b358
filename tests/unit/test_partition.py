"""ARNs the program builds carry the identity's partition (aws, aws-cn, aws-us-gov), never a literal
`arn:aws:` (an account in another partition would get principals and resources that do not exist)."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

from components.deploy_roles import operator_trust
from tools.mocks import ROOT

LITERAL = "arn:aws:"


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """Every string token of a Python file with its line (comments are not tokens of this kind)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return [
        (t.start[0], t.string)
        for t in tokens
        if t.type == tokenize.STRING or t.type == getattr(tokenize, "FSTRING_MIDDLE", -1)
    ]


def test_no_partition_literal_in_components_or_stacks() -> None:
    found = []
    for folder in ("components", "stacks"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix == ".py":
                strings = _code_strings(path)
                found += [f"{path.relative_to(ROOT)}:{line}" for line, s in strings if LITERAL in s]
            elif path.is_file() and path.suffix in (".sh", ".yaml", ".json", ".txt"):
                found += [
                    f"{path.relative_to(ROOT)}:{n}"
                    for n, text in enumerate(path.read_text().splitlines(), 1)
                    if LITERAL in text and not text.lstrip().startswith("#")
                ]
    assert not found, f"ARNs with a literal partition: {found}"


def test_the_scan_sees_a_literal_in_code_and_not_in_a_comment(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text('# arn:aws:iam::1:root\nA = f"arn:aws:iam::{b}:root"\n')
    assert [line for line, s in _code_strings(source) if LITERAL in s] == [2]


def test_the_deploy_roles_operator_trust_names_the_identitys_partition() -> None:
    statement = operator_trust("aws-cn", "123456789012", ("arn:aws-cn:iam::210987654321:role/admins",))
    assert statement["Principal"] == {
        "AWS": ["arn:aws-cn:iam::123456789012:root", "arn:aws-cn:iam::210987654321:root"]
    }
