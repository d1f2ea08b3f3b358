"""What `make new-service` and `make new-stack` share: name checks, YAML edits that keep comments
and order, the all-or-nothing write, the regenerated docs and the closing report.

A refusal is a `RefusedError` (exit 2, one message, nothing written): every check runs and every file is
rendered in memory before the first write.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from stacks.delivery import DNS_LABEL
from tools.process import gc_paused

EXIT_REFUSED = 2
LABEL_MAX = 63


class RefusedError(Exception):
    """A name or a state the command will not act on; the message says why and what to do."""


def check_label(kind: str, name: str, max_length: int = LABEL_MAX) -> None:
    """An RFC 1123 label starting with a letter (a namespace, an ECR path segment, a file name)."""
    if not name:
        raise RefusedError(f"no {kind} name given: NAME=<name> (lowercase letters, digits and '-')")
    if not DNS_LABEL.fullmatch(name) or len(name) > max_length:
        raise RefusedError(
            f"{kind} name {name!r} is not allowed: it must be a DNS label (RFC 1123) of at most "
            f"{max_length} characters: lowercase letters, digits and '-', starting with a letter and "
            "not ending with '-'"
        )


def round_trip() -> YAML:
    """ruamel.yaml set up to write the project's YAML back byte for byte where nothing changed."""
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def dump(yaml: YAML, data: Any) -> str:
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def fill(template: str, tokens: Mapping[str, str]) -> str:
    """A template of tools/templates/ with its `__TOKEN__`s replaced; an unknown token is a bug."""
    for token, value in tokens.items():
        template = template.replace(f"__{token}__", value)
    left = sorted(set(re.findall(r"__[A-Z][A-Z_]*[A-Z]__", template)))
    if left:
        raise ValueError(f"template tokens left unfilled: {', '.join(left)}")
    return template


@dataclass
class Changes:
    """The files a command creates and edits, rendered before anything is written."""

    root: Path
    created: dict[Path, str] = field(default_factory=dict)
    edited: dict[Path, str] = field(default_factory=dict)

    def create(self, relative: str, text: str) -> None:
        self.created[self.root / relative] = text

    def edit(self, relative: str, text: str) -> None:
        if (self.root / relative).read_text() != text:
            self.edited[self.root / relative] = text

    def refuse_overwrites(self, what: str) -> None:
        """Refuse when a file to create exists already: a command never overwrites one."""
        clash = sorted(self._shown(p) for p in self.created if p.exists())
        if clash:
            raise RefusedError(
                f"{what} would overwrite {', '.join(clash)}: a new name's files must not exist yet; "
                "choose another name"
            )

    def write(self) -> None:
        clash = [p for p in self.created if p.exists()]
        if clash:  # checked by the commands already; a race would otherwise overwrite a file
            raise RefusedError(f"{self._shown(clash[0])} exists; nothing was written")
        for path, text in {**self.created, **self.edited}.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def _shown(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def summary(self) -> list[str]:
        return [f"  created {self._shown(p)}" for p in sorted(self.created)] + [
            f"  edited  {self._shown(p)}" for p in sorted(self.edited)
        ]


def placeholder_lines(found: list[tuple[str, str, str]]) -> list[str]:
    return [f"  {key}\n    = {value}: {reason}" for key, value, reason in found]


def run(command: str, act: Callable[[], list[str]]) -> int:
    """Run a command's `act` (which returns the lines to print); a refusal exits 2, naming why. The
    checks and the regenerated docs run whole plans (`make new-service`: four), with the collector
    paused."""
    try:
        with gc_paused():
            lines = act()
    except RefusedError as refused:
        print(f"{command}: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    print("\n".join(lines))
    return 0


def regenerate_docs() -> list[str]:
    """The generated docs a new service or stack changes (docs/architecture.md draws prod's plan)."""
    from tools import diagram

    before = diagram.DOCS.read_text() if diagram.DOCS.exists() else ""
    diagram.main(["--write-docs"])
    changed = diagram.DOCS.read_text() != before
    shown = diagram.DOCS.relative_to(diagram.DOCS.parents[1])
    return [f"  {'regenerated' if changed else 'unchanged  '} {shown}"]
