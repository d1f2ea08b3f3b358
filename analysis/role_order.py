"""A resource that hands a role to an AWS service (an input `roleArn`, `iamRoleArn`, `serviceRole`,
`nodeRole`, `serviceAccountRoleArn`, ...) should come after that role's policies: the service acts
with the role as it is when the resource is created, and an input on the role orders the resource
after the role only, not after its `RolePolicy`/`RolePolicyAttachment`s. A VPC flow log created
first reports "Access error" (EC2 API reference, FlowLog.deliverLogsErrorMessage); a node group or
control plane created first fails its own checks.

    findings(graph)

`rehearsal-role-before-policies` (advisory: whether the service recovers once the policy lands is
the service's, and not documented for every one). The role's own parts (its policies, attachments and
instance profile) take it as `role` and are not judged; a principal named by an access entry
(`principalArn`) is not handed to a service.
"""

from __future__ import annotations

import re

from analysis.graph import Graph
from model.findings import Finding
from model.records import Registration
from policy.model import Level

RULE = "rehearsal-role-before-policies"
ROLE = "aws:iam/role:Role"
POLICIES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
# `roleArn`, or any `<x>Role` / `<x>RoleArn`: an input that hands a role over (not `role` itself).
PASSES_ROLE = re.compile(r"roleArn|\w+Role(Arn)?")


def _passes_role(r: Registration) -> bool:
    return any(PASSES_ROLE.fullmatch(key) for key in r.raw_inputs)


def findings(graph: Graph) -> list[Finding]:
    roles = {r.urn: r for r in graph.of_type(ROLE)}
    policies: dict[str, set[str]] = {}
    for p in graph.of_type(*POLICIES):
        for role in set(p.dependencies) & roles.keys():
            policies.setdefault(role, set()).add(p.urn)
    out = []
    for r in graph.nodes.values():
        if r.type in POLICIES or not _passes_role(r):
            continue
        before = graph.ancestors(r.urn)
        for role in sorted(set(r.dependencies) & roles.keys()):
            missing = sorted(policies.get(role, set()) - before)
            if missing:
                names = ", ".join(graph.nodes[u].name for u in missing)
                out.append(
                    Finding(
                        RULE,
                        Level.ADVISORY,
                        r.urn,
                        f"hands the role {roles[role].name} to its service before the role's policies "
                        f"({names}) exist: add them to depends_on.",
                    )
                )
    return out
