"""The config errors the docs quote are what the code prints for the broken config beside them.

Each quoted error block in DOCS follows a comment that names the broken config producing it:

    <!-- broken-config
    stack: prod                  # the name shown: Pulumi.<stack>.yaml
    from: prod                   # optional: the committed stack file it starts from
    merge:                       # optional: deep-merged into that file's `config:`
      eks-platform:network: {cidr: 10.20.0.0/22}
    file: above                  # or: the ```yaml block just above is the whole stack file
    -->

The block after it is `$ make plan STACK=<stack>` and what `make plan` prints (tools/plan.py
`print_config_error`). `python -m tools.doc_errors --write` regenerates the blocks;
tests/unit/test_doc_errors.py fails when one differs from what the code prints.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from dataclasses import dataclass
from typing import Any

import yaml
from rich.console import Console

from components.helm import merge
from stacks.config import ConfigError, validate
from tools.mocks import ROOT, project_name, read_stack_file, stack_config
from tools.plan import print_config_error

# platform/gitops/README.md quotes errors too: tests/unit/test_gitops_config.py checks them on an
# example checkout of its own (whatever services this one has).
DOCS = ("docs/configuration-errors.md", "docs/offline-plan.md")
_BLOCK = re.compile(r"<!-- broken-config\n(?P<spec>.*?)-->\n```\n(?P<output>.*?)```\n", re.DOTALL)
_YAML_ABOVE = re.compile(r"```yaml\n(?P<file>.*?)```\n", re.DOTALL)


@dataclass(frozen=True)
class Quote:
    doc: str
    spec: dict[str, Any]
    quoted: str
    start: int  # where the quoted output starts and ends in the doc
    end: int
    above: str | None  # the yaml block above, for `file: above`


def quotes(doc: str, text: str) -> list[Quote]:
    """Every quoted error block of one doc, with the broken config named before it."""
    found = []
    for match in _BLOCK.finditer(text):
        above = list(_YAML_ABOVE.finditer(text, 0, match.start()))
        found.append(
            Quote(
                doc=doc,
                spec=yaml.safe_load(match["spec"]),
                quoted=match["output"],
                start=match.start("output"),
                end=match.end("output"),
                above=above[-1]["file"] if above else None,
            )
        )
    return found


def stack_document(quote: Quote) -> dict[str, Any]:
    """The broken stack file a quote names."""
    spec = quote.spec
    if spec.get("file") == "above":
        if quote.above is None:
            raise ValueError(f"{quote.doc}: `file: above`, but no ```yaml block precedes the comment")
        document: dict[str, Any] = yaml.safe_load(quote.above)
    elif "from" in spec:
        document = read_stack_file(ROOT / f"Pulumi.{spec['from']}.yaml")
    else:
        document = {"config": {}}
    return merge(document, {"config": spec.get("merge") or {}})


def printed(quote: Quote) -> str:
    """What `make plan STACK=<stack>` prints for the quote's broken config."""
    stack = str(quote.spec["stack"])
    project = project_name()
    raw, secret_keys = stack_config(stack, project, document=stack_document(quote))
    try:
        validate(raw, project, stack, f"Pulumi.{stack}.yaml", frozenset(secret_keys))
    except ConfigError as err:
        out = io.StringIO()
        print_config_error(err, Console(file=out, color_system=None, width=100))
        return f"$ make plan STACK={stack}\n{out.getvalue()}"
    raise ValueError(f"{quote.doc}: the broken config of stack {stack!r} is valid; it prints no error")


def regenerate(text: str, doc: str) -> str:
    """The doc with every quoted block replaced by what the code prints."""
    for quote in reversed(quotes(doc, text)):
        text = text[: quote.start] + printed(quote) + text[quote.end :]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.doc_errors", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the quoted blocks in place")
    args = parser.parse_args(argv)
    stale = []
    for doc in DOCS:
        path = ROOT / doc
        text = path.read_text(encoding="utf-8")
        fresh = regenerate(text, doc)
        if fresh != text:
            stale.append(doc)
            if args.write:
                path.write_text(fresh, encoding="utf-8")
    for doc in stale:
        print(f"{doc}: {'rewritten' if args.write else 'stale'}")
    return 1 if stale and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
