"""Set `image.tag` in a service's values file, changing that one line and nothing else.

    python3 .github/scripts/set_image_tag.py services/<service>/deploy/<stack>.yaml <tag>

The tag-bump pull request (.github/workflows/propose-tag.yml) must change exactly the tag line, so
that its review shows what deploys. A YAML round trip cannot promise that: mikefarah yq re-emits
the whole document through go-yaml, whose nodes hold head, line and foot comments but no blank
lines (yaml/go-yaml v3 yaml.go, type Node; yq's README, "Known Issues": it "does not handle all
scenarios" of whitespace), so `yq -i` drops the blank lines between the values files' sections.
This script edits the line in place instead: the direct child `tag:` of the top-level `image:`
mapping, its indentation and trailing comment kept, the new value double-quoted (a 40-hex SHA
must stay a string). Standard library only: the runner runs it without the project's virtualenv.

Exit status: 0 when the file holds the tag (changed or already set, printed either way), 2 when
the file or the line is missing or the tag is not a commit SHA (the error names which).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SHA = re.compile(r"[0-9a-f]{40}")
TOP_IMAGE = re.compile(r"image:\s*(#.*)?")
# `tag:` with a scalar value (plain, single- or double-quoted) and an optional comment.
TAG_LINE = re.compile(r"(?P<key>tag:[ \t]*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s#]*)(?P<rest>[ \t]*(#.*)?)")


class TagError(ValueError):
    """The values file has no line to change, or the tag is not what CI pushes."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def set_tag(text: str, tag: str) -> str:
    """`text` with the value of image.tag replaced by `tag` (double-quoted); every other line kept."""
    if not SHA.fullmatch(tag):
        raise TagError(f"tag must be a commit SHA (40 lowercase hex digits), got {tag!r}")
    lines = text.splitlines(keepends=True)
    in_image, child_indent = False, None
    for number, line in enumerate(lines):
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = _indent(body)
        if not in_image:
            in_image = indent == 0 and bool(TOP_IMAGE.fullmatch(stripped))
            continue
        if indent == 0:
            break  # the next top-level key: image has no tag
        child_indent = indent if child_indent is None else child_indent
        if indent != child_indent:
            continue  # deeper than image's own keys
        match = TAG_LINE.fullmatch(stripped)
        if match:
            ending = line[len(body) :]
            lines[number] = f'{" " * indent}{match["key"]}"{tag}"{match["rest"]}{ending}'
            return "".join(lines)
    if not in_image:
        raise TagError("no top-level `image:` mapping")
    raise TagError("no `tag:` line directly under `image:`")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: set_image_tag.py <values file> <tag>", file=sys.stderr)
        return 2
    path, tag = Path(argv[0]), argv[1]
    if not path.is_file():
        print(f"{path}: not found", file=sys.stderr)
        return 2
    try:
        path.write_text(set_tag(path.read_text(), tag))
    except TagError as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 2
    print(f"{path}: image.tag = {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
