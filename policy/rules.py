"""Every rule of the pack, in one tuple: the single list both runners evaluate."""

from __future__ import annotations

from policy import (
    rules_data,
    rules_deploy,
    rules_eks,
    rules_helm,
    rules_iam,
    rules_k8s,
    rules_network,
    rules_nodes,
    rules_rendered,
)
from policy.model import ResourceRule, StackRule
from policy.rules_rendered import RenderedRule

RULES: tuple[ResourceRule | StackRule, ...] = tuple(
    rule
    for module in (
        rules_eks,
        rules_nodes,
        rules_data,
        rules_iam,
        rules_deploy,
        rules_network,
        rules_helm,
        rules_k8s,
    )
    for rule in module.rules.rules
)
RESOURCE_RULES = tuple(r for r in RULES if isinstance(r, ResourceRule))
STACK_RULES = tuple(r for r in RULES if isinstance(r, StackRule))
# Rules over the rendered Helm objects of the plan (its `rendered` section); CrossGuard never sees
# rendered objects, so only the offline plan evaluates them.
RENDERED_RULES: tuple[RenderedRule, ...] = tuple(rules_rendered.RULES)

_names = [r.name for r in (*RULES, *RENDERED_RULES)]
if len(set(_names)) != len(_names):
    raise RuntimeError(f"duplicate rule names: {sorted({n for n in _names if _names.count(n) > 1})}")
