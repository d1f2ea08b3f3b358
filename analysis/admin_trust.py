"""The cluster's admins and the deploy role's operators are one list, `cluster.adminRoleArns`, kept
in two projects: the platform makes each an admin access entry, the identity project (identity/)
names each in the deploy role's trust (components/deploy_roles.py operator_trust), which only an
admin changes. A change to the list is applied identity first (`make up PROJECT=identity`), then
by the platform run (docs/deploy-path.md "Changing the deploy identity").

    findings(graph, identity)      # a platform plan's graph and its identity plan

`identity-admins-differ` (advisory) when the two sets differ, the deploy role itself left out of
both: an admin with an entry but outside the trust cannot run `make up` or `make bootstrap` (the
kubeconfig assumes the deploy role); a role in the trust but no longer an admin keeps cluster admin
through the deploy role. Neither fails a run, so it is advisory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from analysis.appliers import SETTINGS, admin_principals
from analysis.graph import Graph
from model.findings import Finding
from model.records import Registration
from policy.model import Level

RULE = "identity-admins-differ"


def operators(identity: Sequence[Registration], deploy_role: str) -> set[str] | None:
    """The principals the deploy role's trust lets assume it with their own credentials (the
    `aws:PrincipalArn` of its sts:AssumeRole statements), or None without that role in the plan."""
    name = deploy_role.rsplit(":role/", 1)[-1].rsplit("/", 1)[-1]
    role = next((r for r in identity if r.type == "aws:iam/role:Role" and r.get("name") == name), None)
    if role is None:
        return None
    out: set[str] = set()
    for statement in json.loads(role.get("assumeRolePolicy"))["Statement"]:
        if statement.get("Action") == "sts:AssumeRole":
            arns = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:PrincipalArn", [])
            out |= {arns} if isinstance(arns, str) else set(arns)
    return out


def findings(graph: Graph, identity: Sequence[Registration]) -> list[Finding]:
    clusters = graph.of_type("eks:index:Cluster")
    settings = [r for r in identity if r.type == SETTINGS]
    if not clusters or not settings:
        return []
    deploy_role = str(settings[0].get("operationContext.oidc.aws.roleARN"))
    trusted = operators(identity, deploy_role)
    if trusted is None:
        return []
    cluster = clusters[0]
    admins = admin_principals(graph, cluster) - {deploy_role}
    trusted -= {deploy_role}
    if admins == trusted:
        return []
    only_entry, only_trust = sorted(admins - trusted), sorted(trusted - admins)
    return [
        Finding(
            RULE,
            Level.ADVISORY,
            cluster.urn,
            "the cluster's admin access entries and the deploy role's trust (identity project) name "
            f"different admins: entry only {', '.join(only_entry) or 'none'}; trust only "
            f"{', '.join(only_trust) or 'none'}. An admin outside the trust cannot run make up or "
            "make bootstrap (the kubeconfig assumes the deploy role); a role left in the trust keeps "
            "cluster admin through it. Apply make up PROJECT=identity first, then the platform run "
            "(docs/deploy-path.md, Changing the deploy identity).",
        )
    ]
