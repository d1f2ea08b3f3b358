"""What `production: true` changes, in one place: the profile a stack runs with.

A stack runs with `PRODUCTION` when its config says `production: true`, else with `STANDARD`
(DESIGN.md, Environments). The composition (stacks/phase_*.py) builds with the profile's values;
the config's validators (stacks/config.py, sections.py, delivery.py) refuse what its requirements
refuse. docs/configuration.md shows the table, generated from here (tools/config_reference.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# The widest CIDR a production stack may open its API endpoint to.
MIN_PRODUCTION_PUBLIC_PREFIX = 16


def _doc(what: str) -> dict[str, str]:
    return {"doc": what}


@dataclass(frozen=True, kw_only=True)
class StackProfile:
    """What the platform builds differently, and what the stack's config must then say."""

    # -- what the platform builds -------------------------------------------------------------
    high_availability: bool = field(
        metadata=_doc(
            "Add-ons with HA replicas, PodDisruptionBudgets and topology spread "
            "(CoreDNS, Karpenter, metrics-server, VPA, External Secrets, monitoring, Argo CD)"
        )
    )
    coredns_replicas: int = field(metadata=_doc("CoreDNS's fewest replicas (its autoscaler's minimum)"))
    kms_deletion_window_days: int = field(metadata=_doc("KMS keys' deletion window, days"))
    secret_recovery_window_days: int = field(
        metadata=_doc("Secrets Manager recovery window of the platform's secrets, days (0: deleted at once)")
    )
    keep_volumes: bool = field(
        metadata=_doc(
            "Monitoring data on EBS volumes kept after a destroy (the StorageClass retains the "
            "volume, the StatefulSets keep their claims); otherwise on the nodes' disks, no claims"
        )
    )
    # -- what the config must say --------------------------------------------------------------
    requires_protect: bool = field(metadata=_doc("`protect: true` required"))
    requires_nat_per_az: bool = field(metadata=_doc("`network.natStrategy: onePerAz` required"))
    requires_system_node_per_az: bool = field(
        metadata=_doc("`systemNodeGroup.minSize` at least `network.azCount` (a system node in every AZ)")
    )
    requires_pinned_ami: bool = field(metadata=_doc("`systemNodeGroup.amiReleaseVersion` required"))
    min_public_access_prefix: int | None = field(
        metadata=_doc("Widest `cluster.publicAccessCidrs` entry allowed (a prefix length)")
    )
    requires_argocd_sso: bool = field(metadata=_doc("`delivery.gitops.sso` required (no local admin)"))
    requires_deploy_agents: bool = field(
        metadata=_doc("`deployments.agent.enabled: true` required when `deployments.enabled`")
    )
    requires_deployers_team: bool = field(
        metadata=_doc("`deployments.deployersTeam` required when `deployments.enabled`")
    )
    refuses_admin_policies: bool = field(
        metadata=_doc("`deployments.rolePolicyArns` may not hold AdministratorAccess or IAMFullAccess")
    )
    refuses_placeholders: bool = field(
        metadata=_doc("Documentation placeholders refused on a real engine (`make plan` lists them)")
    )


STANDARD = StackProfile(
    high_availability=False,
    coredns_replicas=2,
    kms_deletion_window_days=7,  # AWS's minimum
    secret_recovery_window_days=0,
    keep_volumes=False,
    requires_protect=False,
    requires_nat_per_az=False,
    requires_system_node_per_az=False,
    requires_pinned_ami=False,
    min_public_access_prefix=None,
    requires_argocd_sso=False,
    requires_deploy_agents=False,
    requires_deployers_team=False,
    refuses_admin_policies=False,
    refuses_placeholders=False,
)
PRODUCTION = StackProfile(
    high_availability=True,
    coredns_replicas=3,
    kms_deletion_window_days=30,
    secret_recovery_window_days=30,
    keep_volumes=True,
    requires_protect=True,
    requires_nat_per_az=True,
    requires_system_node_per_az=True,
    requires_pinned_ami=True,
    min_public_access_prefix=MIN_PRODUCTION_PUBLIC_PREFIX,
    requires_argocd_sso=True,
    requires_deploy_agents=True,
    requires_deployers_team=True,
    refuses_admin_policies=True,
    refuses_placeholders=True,
)


def profile(production: bool) -> StackProfile:
    """The profile of a stack whose config says `production: <production>`."""
    return PRODUCTION if production else STANDARD


def rows() -> list[tuple[str, str, str]]:
    """(what, production, otherwise) for every entry of the profile: the documentation's table."""

    def shown(value: object) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        return "none" if value is None else str(value)

    return [
        (f.metadata["doc"], shown(getattr(PRODUCTION, f.name)), shown(getattr(STANDARD, f.name)))
        for f in fields(StackProfile)
    ]
