"""The scaling sections of a stack's config (Karpenter node pools, pod autoscaling) and the
IP-capacity model that checks them against the private subnets."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, StrictInt, model_validator

from stacks.fields import Model, check_all, cross_field

# VPC CNI prefix delegation: pod IPs come in /28 prefixes of 16 addresses. The CNI keeps
# WARM_IP_TARGET free IPs per node (and at least MINIMUM_IP_TARGET), instead of a whole spare
# prefix, so an idle node holds one prefix, not two. components/cluster.py configures the CNI
# with these numbers; the capacity model below counts with them.
PREFIX_SIZE = 16
WARM_IP_TARGET = 5
MINIMUM_IP_TARGET = 16
# AWS reserves five addresses in every subnet.
AWS_RESERVED_PER_SUBNET = 5

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
_DURATION = re.compile(r"(\d+h)?(\d+m)?(\d+s)?", re.ASCII)
_CRON = re.compile(r"(\S+\s+){4}\S+|@(yearly|annually|monthly|weekly|daily|midnight|hourly)", re.ASCII)
_AMI_ALIAS = re.compile(r"(al2023|bottlerocket)@(latest|v\d{8}|v\d+\.\d+\.\d+)", re.ASCII)

# Instance categories with Graviton (arm64) families: c7g, m7g, r8g, t4g, x2gd, im4gn/is4gen, g5g.
ARM64_CATEGORIES = frozenset("cmrtxig")
INSTANCE_CATEGORIES = ("c", "m", "r", "t", "x", "i", "g", "p", "z", "d", "h", "inf", "trn")


def _duration(value: str) -> bool:
    return bool(value) and _DURATION.fullmatch(value) is not None


class TaintConfig(Model):
    key: str = Field(min_length=1, max_length=253, description="Taint key.")
    value: str = Field(default="true", max_length=63, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        default="NoSchedule", description="Taint effect."
    )


class BusinessHoursConfig(Model):
    schedule: str = Field(description="Cron (UTC) at which the no-disruption window opens.")
    duration: str = Field(description="How long the window lasts, e.g. 10h.")


class NodePoolConfig(Model):
    """One Karpenter NodePool. Every limit here feeds the IP-capacity check."""

    name: str = Field(description="NodePool name (a DNS label).")
    capacity_types: tuple[Literal["spot", "on-demand"], ...] = Field(
        default=("spot", "on-demand"), description="Purchase options; Karpenter prefers spot when listed."
    )
    architectures: tuple[Literal["arm64", "amd64"], ...] = Field(
        default=("arm64", "amd64"), description="CPU architectures allowed."
    )
    instance_categories: tuple[str, ...] = Field(
        default=("c", "m", "r"), description="EC2 instance categories allowed (c, m, r, ...)."
    )
    min_generation: StrictInt = Field(default=6, ge=1, le=20, description="Oldest instance generation.")
    min_cpu: StrictInt = Field(
        default=2, ge=1, le=448, description="Smallest instance size in vCPUs (bounds the node count)."
    )
    cpu_limit: StrictInt = Field(description="Total vCPUs the pool may run (its `limits.cpu`).")
    memory_limit_gib: StrictInt = Field(
        alias="memoryLimitGiB", description="Total memory the pool may run, GiB (its `limits.memory`)."
    )
    expire_after: str = Field(default="720h", description="Replace nodes older than this (or `Never`).")
    termination_grace_period: str = Field(
        default="48h",
        description=(
            "Longest a node may drain before Karpenter deletes its pods anyway, PDBs notwithstanding "
            "(a node that expires must still go)."
        ),
    )
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        default="WhenEmptyOrUnderutilized", description="Which nodes Karpenter may consolidate."
    )
    consolidate_after: str = Field(default="1m", description="Wait this long before consolidating.")
    disruption_budget_percent: StrictInt = Field(
        default=10, description="At most this share of the pool's nodes is disrupted at once."
    )
    business_hours: BusinessHoursConfig | None = Field(
        default=None, description="A window in which Karpenter disrupts no node of this pool."
    )
    taints: tuple[TaintConfig, ...] = Field(default=(), description="Taints pods must tolerate.")
    weight: StrictInt | None = Field(
        default=None, ge=1, le=100, description="Higher weights are tried first."
    )

    @model_validator(mode="after")
    def _consistent(self) -> NodePoolConfig:
        check_all(self._requirement_issues, self._limit_and_disruption_issues)
        return self

    def _requirement_issues(self) -> list[tuple[str, Any, str]]:
        issues: list[tuple[str, Any, str]] = []
        if not _DNS_LABEL.fullmatch(self.name):
            issues.append(("name", self.name, "must be a DNS label (lowercase letters, digits, '-')"))
        if not self.capacity_types:
            issues.append(("capacityTypes", [], "list spot, on-demand or both"))
        if len(set(self.capacity_types)) != len(self.capacity_types):
            issues.append(("capacityTypes", list(self.capacity_types), "lists a type twice"))
        if not self.architectures:
            issues.append(("architectures", [], "list arm64, amd64 or both"))
        unknown = [c for c in self.instance_categories if c not in INSTANCE_CATEGORIES]
        if unknown or not self.instance_categories:
            issues.append(
                (
                    "instanceCategories",
                    list(self.instance_categories),
                    f"use categories from {', '.join(INSTANCE_CATEGORIES)}",
                )
            )
        elif self.architectures == ("arm64",) and not ARM64_CATEGORIES & set(self.instance_categories):
            issues.append(
                (
                    "architectures",
                    ["arm64"],
                    f"no instance family of categories {', '.join(self.instance_categories)} is arm64 "
                    f"(Graviton exists in {', '.join(sorted(ARM64_CATEGORIES))})",
                )
            )
        return issues

    def _limit_and_disruption_issues(self) -> list[tuple[str, Any, str]]:
        issues: list[tuple[str, Any, str]] = []
        for key, value in (("cpuLimit", self.cpu_limit), ("memoryLimitGiB", self.memory_limit_gib)):
            if value <= 0:
                issues.append((key, value, "must be a positive number"))
        if self.cpu_limit > 0 and self.cpu_limit < self.min_cpu:
            issues.append(("cpuLimit", self.cpu_limit, f"is below one node of minCpu {self.min_cpu}"))
        if not 0 <= self.disruption_budget_percent <= 100:
            issues.append(("disruptionBudgetPercent", self.disruption_budget_percent, "must be 0 to 100"))
        if self.expire_after != "Never" and not _duration(self.expire_after):
            issues.append(("expireAfter", self.expire_after, "a duration like 720h, or Never"))
        if not _duration(self.termination_grace_period):
            issues.append(
                ("terminationGracePeriod", self.termination_grace_period, "a duration like 48h or 90m")
            )
        if not _duration(self.consolidate_after):
            issues.append(("consolidateAfter", self.consolidate_after, "a duration like 30s or 5m"))
        if self.business_hours is not None:
            if not _CRON.fullmatch(self.business_hours.schedule.strip()):
                issues.append(
                    ("businessHours.schedule", self.business_hours.schedule, "not a cron expression")
                )
            if not _duration(self.business_hours.duration):
                issues.append(("businessHours.duration", self.business_hours.duration, "a duration like 10h"))
        return issues

    @property
    def max_nodes(self) -> int:
        """The most nodes the pool can launch: its CPU limit in its smallest instances."""
        return self.cpu_limit // self.min_cpu


def _default_pools() -> tuple[NodePoolConfig, ...]:
    return (NodePoolConfig(name="default", cpu_limit=200, memory_limit_gib=800),)


class KarpenterConfig(Model):
    ami_alias: str = Field(
        default="al2023@v20261110",
        description="EC2NodeClass AMI alias, pinned (`al2023@vYYYYMMDD` or `bottlerocket@vX.Y.Z`).",
    )
    max_pods_per_node: StrictInt = Field(
        default=110, ge=8, le=737, description="kubelet maxPods on Karpenter nodes."
    )
    node_disk_gib: StrictInt = Field(
        default=100, ge=20, le=16384, alias="nodeDiskGiB", description="Encrypted gp3 volume per node."
    )
    node_pools: tuple[NodePoolConfig, ...] = Field(
        default_factory=_default_pools, description="The NodePools (see the NodePool keys below)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> KarpenterConfig:
        issues: list[tuple[str, Any, str]] = []
        if not _AMI_ALIAS.fullmatch(self.ami_alias):
            issues.append(
                (
                    "amiAlias",
                    self.ami_alias,
                    "pin an alias: al2023@vYYYYMMDD or bottlerocket@vX.Y.Z (or @latest, unpinned)",
                )
            )
        names = [p.name for p in self.node_pools]
        if len(set(names)) != len(names):
            issues.append(("nodePools", names, "two pools share a name"))
        if not self.node_pools:
            issues.append(("nodePools", [], "define at least one NodePool"))
        cross_field(issues)
        return self


class CapacityConfig(Model):
    planned_pods: StrictInt = Field(
        default=1000, ge=1, description="Peak pods the cluster must hold without exhausting pod IPs."
    )
    headroom_percent: StrictInt = Field(
        default=10, ge=0, le=50, description="Pod-IP share kept free (prefix fragmentation, surges)."
    )


@dataclass(frozen=True)
class Capacity:
    """What the subnets can hold against what the node limits allow (reported by the plan)."""

    max_nodes: int
    max_pods: int
    planned_pods: int
    free_ips_per_az: dict[str, int]
    usable_ips: int
    required_ips: int

    @property
    def fits(self) -> bool:
        return self.required_ips <= self.usable_ips and self.planned_pods <= self.max_pods

    def document(self) -> dict[str, Any]:
        return {
            "maxNodes": self.max_nodes,
            "maxPods": self.max_pods,
            "plannedPods": self.planned_pods,
            "freeIpsPerAz": self.free_ips_per_az,
            "usableIps": self.usable_ips,
            "requiredIps": self.required_ips,
        }


def capacity(
    private_subnets: dict[str, int],
    system_max_nodes: int,
    karpenter: KarpenterConfig,
    plan: CapacityConfig,
) -> Capacity:
    """Pod-IP capacity of the private subnets (name -> prefix length) against the node limits.

    Each node holds its primary IP plus, with prefix delegation, its pods' IPs in /28 prefixes:
    at worst a node's last prefix is all but one address empty, and the CNI keeps
    WARM_IP_TARGET addresses free on it. So the requirement is
    `max_nodes * (1 + WARM_IP_TARGET + PREFIX_SIZE - 1) + planned_pods`, which must fit in the
    private subnets' addresses less the configured headroom.
    """
    free = {name: 2 ** (32 - prefix) - AWS_RESERVED_PER_SUBNET for name, prefix in private_subnets.items()}
    max_nodes = system_max_nodes + sum(p.max_nodes for p in karpenter.node_pools)
    per_node = 1 + WARM_IP_TARGET + PREFIX_SIZE - 1
    usable = math.floor(sum(free.values()) * (100 - plan.headroom_percent) / 100)
    return Capacity(
        max_nodes=max_nodes,
        max_pods=max_nodes * karpenter.max_pods_per_node,
        planned_pods=plan.planned_pods,
        free_ips_per_az=free,
        usable_ips=usable,
        required_ips=max_nodes * per_node + plan.planned_pods,
    )
