"""Every config error the docs quote is what the code prints for the broken config named beside it."""

from __future__ import annotations

import re

import pytest

from stacks.config import OFFLINE_KEY, PROJECT, ConfigError, validate
from tools import doc_errors
from tools.mocks import ROOT, stack_config

QUOTES = [
    q for doc in doc_errors.DOCS for q in doc_errors.quotes(doc, (ROOT / doc).read_text(encoding="utf-8"))
]


@pytest.mark.parametrize("quote", QUOTES, ids=lambda q: f"{q.doc}:{q.spec['stack']}")
def test_a_quoted_config_error_is_what_make_plan_prints(quote: doc_errors.Quote) -> None:
    assert quote.quoted == doc_errors.printed(quote), (
        f"{quote.doc} quotes an error the code no longer prints: run `python -m tools.doc_errors --write`"
    )


def fenced_blocks(text: str) -> list[str]:
    """The content of every fenced block of a Markdown page."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


@pytest.mark.parametrize("doc", doc_errors.DOCS)
def test_every_quoted_config_error_names_its_broken_config(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    blocks = fenced_blocks(text)
    errors = [b for b in blocks if "Invalid configuration in" in b or "invalid configuration value" in b]
    covered = [q.quoted for q in doc_errors.quotes(doc, text)]
    assert errors, f"{doc} quotes no config error: drop it from tools/doc_errors.py DOCS"
    assert [b for b in errors if b not in covered] == [], (
        f"{doc}: an error block without a broken-config comment"
    )


def test_a_stale_quote_is_found_and_regenerated() -> None:
    doc = "docs/offline-plan.md"
    text = (ROOT / doc).read_text(encoding="utf-8")
    (quote,) = doc_errors.quotes(doc, text)
    stale = text.replace(quote.quoted, quote.quoted.replace("unknown key", "unknown key (a typo?)"))
    assert stale != text
    (old,) = doc_errors.quotes(doc, stale)
    assert old.quoted != doc_errors.printed(old)
    assert doc_errors.regenerate(stale, doc) == text


def test_the_quoted_placeholder_issue_is_what_a_real_engine_prints() -> None:
    """docs/configuration-errors.md quotes one issue of a real `preview` of the prod stack file."""
    text = (ROOT / "docs" / "configuration-errors.md").read_text(encoding="utf-8")
    section = text.split("## Documentation placeholders", 1)[1].split("\n## ", 1)[0]
    quoted = re.findall(r"`(eks-platform:[^`]+ = [^`]+)`", section)
    assert quoted, "docs/configuration-errors.md quotes no placeholder issue"
    raw, secret_keys = stack_config("prod")
    del raw[f"{PROJECT}:{OFFLINE_KEY}"]
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, "prod", "Pulumi.prod.yaml", frozenset(secret_keys))
    printed = {str(issue) for issue in info.value.issues}
    assert set(quoted) <= printed, set(quoted) - printed
