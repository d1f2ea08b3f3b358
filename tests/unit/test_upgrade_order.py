"""docs/first-deploy.md §13 lists what one `up` upgrades "in dependency order": the list must agree
with the plan's dependencies (no step waits for a later one)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from analysis.graph import build
from model.records import PlanResult, Registration
from tools.mocks import ROOT

PAGE = ROOT / "docs" / "first-deploy.md"
INTRO = "One `up` then upgrades in dependency order:"


def _addon(name: str) -> Callable[[Registration], bool]:
    return lambda r: r.type == "aws:eks/addon:Addon" and r.get("addonName") == name


# What each name in the list is in the plan. kube-proxy is created inside pulumi-eks's cluster
# component (kubeProxyAddonOptions), not a resource of its own in the plan, so it maps to nothing.
NAMES: dict[str, Callable[[Registration], bool]] = {
    "control plane": lambda r: r.type == "eks:index:Cluster",
    "vpc-cni": _addon("vpc-cni"),
    "Pod Identity agent": _addon("eks-pod-identity-agent"),
    "system node group": lambda r: r.type == "eks:index:ManagedNodeGroup",
    "CoreDNS": _addon("coredns"),
    "EBS CSI": _addon("aws-ebs-csi-driver"),
}


def documented_steps(text: str) -> list[list[str]]:
    """The names each bullet of the list under INTRO upgrades (its lead, up to the first sentence
    or clause end: the explanations after it name other steps), in the page's order."""
    after = text.split(INTRO, 1)[1]
    bullets = re.findall(r"^   - (.+(?:\n     .+)*)", after.split("\n3. ", 1)[0], flags=re.M)
    leads = [re.split(r"\. |;", " ".join(b.split()), maxsplit=1)[0] for b in bullets]
    return [[name for name in NAMES if name in lead] for lead in leads]


def out_of_order(steps: list[list[str]], plan: PlanResult) -> list[str]:
    graph = build(plan.records, plan.lookups)
    members = [[(name, r.urn) for name in step for r in plan.records if NAMES[name](r)] for step in steps]
    wrong = []
    for i, earlier in enumerate(members):
        for later in members[i + 1 :]:
            for name, urn in earlier:
                wrong += [f"{name} waits for {n}" for n, u in later if u in graph.ancestors(urn)]
    return wrong


def test_the_upgrade_list_names_every_step(dev: PlanResult) -> None:
    steps = documented_steps(PAGE.read_text())
    assert len(steps) == 4 and all(steps), steps
    # Every name is a resource of the plan (a name that matches nothing would order nothing).
    assert [name for name, match in NAMES.items() if not any(match(r) for r in dev.records)] == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_upgrade_order_matches_the_plans_dependencies(stack: str, plans: dict[str, PlanResult]) -> None:
    assert out_of_order(documented_steps(PAGE.read_text()), plans[stack]) == []


def test_a_node_prerequisite_listed_after_the_node_group_is_caught(dev: PlanResult) -> None:
    steps = [["control plane"], ["vpc-cni"], ["system node group"], ["CoreDNS", "Pod Identity agent"]]
    assert out_of_order(steps, dev) == ["system node group waits for Pod Identity agent"]
