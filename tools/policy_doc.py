"""The policy pack's rule table in docs/policy.md, generated from policy/rules.py (the single source).

    python -m tools.policy_doc          print the tables
    python -m tools.policy_doc --write  rewrite them in docs/policy.md between the markers

tests/unit/test_docs.py fails when docs/policy.md and the pack disagree.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from policy.model import Level, ResourceRule, StackRule
from policy.rules import RULES
from tools.mocks import ROOT

START, END = "<!-- policy-rules:start -->", "<!-- policy-rules:end -->"
DOC = ROOT / "docs" / "policy.md"
# Section titles for the rule modules; a module not named here is titled by its docstring's first line.
TITLES = {
    "policy.rules_eks": "EKS control plane and add-ons",
    "policy.rules_nodes": "Nodes and Karpenter",
    "policy.rules_data": "KMS, ECR, Secrets Manager, SQS, CloudWatch Logs",
    "policy.rules_iam": "IAM",
    "policy.rules_network": "Network",
    "policy.rules_helm": "Helm add-ons",
    "policy.rules_k8s": "Kubernetes objects and Argo CD",
}


def _level(level: Level | None) -> str:
    return "—" if level is None else ("**M**" if level is Level.MANDATORY else "A")


def _title(module: str) -> str:
    doc = import_module(module).__doc__ or module
    return TITLES.get(module, doc.strip().splitlines()[0].split(":")[0].rstrip("."))


def _row(rule: ResourceRule | StackRule) -> str:
    kind = " *(stack)*" if isinstance(rule, StackRule) else ""
    sources = "; ".join(str(s) for s in rule.sources)
    description = rule.description.replace("|", "\\|")
    return f"| `{rule.name}`{kind} | {_level(rule.prod)} | {_level(rule.dev)} | {description} | {sources} |"


def tables() -> str:
    modules: dict[str, list[ResourceRule | StackRule]] = {}
    for rule in RULES:
        modules.setdefault(rule.check.__module__, []).append(rule)
    parts = []
    for module, rules in modules.items():
        rows = "\n".join(_row(r) for r in rules)
        head = "| rule | prod | dev | requires | sources |\n|---|---|---|---|---|"
        parts.append(f"## {_title(module)}\n\n{head}\n{rows}")
    return "\n\n".join(parts)


def section() -> str:
    return f"{START}\n{tables()}\n{END}"


def document_section(text: str) -> str:
    start, end = text.index(START), text.index(END) + len(END)
    return text[start:end]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the tables in docs/policy.md")
    args = parser.parse_args(argv)
    if not args.write:
        print(tables())
        return 0
    text = DOC.read_text()
    DOC.write_text(text.replace(document_section(text), section()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
