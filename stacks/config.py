"""The stack's typed configuration: read once from `Pulumi.<stack>.yaml`, validated once, frozen.

`load()` is the only code in the project that reads `pulumi.Config`. Every error in a stack file
is reported at once, each naming the key, the bad value, why, and the file it came from; an
invalid stack raises `ConfigError` (a `pulumi.RunError`, so the CLI prints the message without a
traceback) before any resource is registered. The sections live in stacks/sections.py, the
field types in stacks/fields.py.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pulumi
from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    ValidationError,
    model_validator,
)

from stacks import placeholders
from stacks.delivery import DeliveryConfig, DeploymentsConfig
from stacks.errors import OTHER_NAMESPACES, ConfigError, ConfigIssue, format_errors, unknown_namespace
from stacks.fields import RESERVED_TAG_KEYS, TAG_KEY, Issue, Model, check_all, check_region
from stacks.profile import StackProfile, profile
from stacks.scaling import Capacity, CapacityConfig, KarpenterConfig, capacity
from stacks.sections import (
    ClusterConfig,
    MonitoringConfig,
    NetworkConfig,
    SystemNodeGroupConfig,
    al2023_release_minor,
)

PROJECT = "eks-platform"
# Keys that may only be set as secrets (`pulumi config set --secret`), with the prefix each value
# must have. Kept out of the model: cfg.secret(key) hands them out as secret Outputs.
SECRET_KEYS = {"alertReceiverUrl": "https://"}
# What the offline plan puts in place of a secure value it cannot decrypt; format checks skip it.
SECRET_PLACEHOLDER = "[secure value, masked offline]"  # noqa: S105 (a marker, not a password)
# `<project>:offlinePlan` is set by the offline engine (tools/mocks.py) in the config it hands the
# program, never by a stack file (the offline reader refuses it there): planning offline, the
# example stack files may keep their documentation placeholders; on a real engine a production
# stack may not.
OFFLINE_KEY = "offlinePlan"

__all__ = ["ConfigError", "ConfigIssue", "PlatformConfig", "load", "validate"]


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    problems = []
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            problems.append(f"tag key {key!r}: the 'aws:' prefix is reserved by AWS")
        elif key in RESERVED_TAG_KEYS:
            problems.append(f"tag key {key!r} is set by the platform itself")
        elif not TAG_KEY.fullmatch(key):
            problems.append(
                f"tag key {key!r} must be 1-128 characters of letters, digits, spaces and _ . : / = + - @"
            )
        if len(value) > 256:
            problems.append(f"tag {key!r}: the value is longer than 256 characters")
    if problems:
        raise ValueError("; ".join(problems))
    return tags


class PlatformConfig(Model):
    """Everything a stack can set. Defaults are the secure, production-shaped choice."""

    project: str
    stack: str
    region: Annotated[str, AfterValidator(check_region)] = Field(description="AWS region (`aws:region`).")
    production: StrictBool = Field(
        default=False, description="Marks a production stack: turns on the production rules."
    )
    protect: StrictBool = Field(
        default=False, description="Protect stateful resources from deletion (required in production)."
    )
    network: NetworkConfig = Field(default=NetworkConfig(), description="The VPC.")
    cluster: ClusterConfig = Field(default=ClusterConfig(), description="The EKS control plane.")
    system_node_group: SystemNodeGroupConfig = Field(
        default=SystemNodeGroupConfig(), description="The managed node group for platform controllers."
    )
    karpenter: KarpenterConfig = Field(
        default_factory=KarpenterConfig, description="Karpenter: workload nodes and their NodePools."
    )
    capacity: CapacityConfig = Field(
        default_factory=CapacityConfig, description="The pod-IP capacity plan checked against the subnets."
    )
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig, description="Prometheus retention and storage, the alert receiver."
    )
    delivery: DeliveryConfig = Field(
        default_factory=DeliveryConfig, description="Microservices, their registries and CI, GitOps."
    )
    deployments: DeploymentsConfig = Field(
        default_factory=DeploymentsConfig, description="Pulumi Deployments on git push (optional)."
    )
    tags: Annotated[dict[str, str], AfterValidator(_check_tags)] = Field(
        default={}, description="Extra tags on every AWS resource (no `aws:` prefix)."
    )
    monthly_budget: StrictFloat | None = Field(
        default=None,
        gt=0,
        description="Monthly budget in USD for the plan's fixed cost; above it the plan reports a finding.",
    )

    _secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    def secret(self, key: str) -> pulumi.Output[str] | None:
        """A secret-only config value as a secret Output, or None when the stack does not set it."""
        value = self._secrets.get(key)
        return None if value is None else pulumi.Output.secret(value)

    @model_validator(mode="after")
    def _across_sections(self) -> PlatformConfig:
        check_all(
            self._protect_issues,
            self._service_cidr_issues,
            self._per_az_issues,
            self._prometheus_disk_issues,
            self._ami_release_issues,
            self._capacity_issues,
        )
        return self

    def _protect_issues(self) -> list[Issue]:
        if not self.profile.requires_protect or self.protect:
            return []
        return [
            (
                "protect",
                False,
                "a production stack must protect its state (cluster, keys); "
                "unprotect deliberately with `pulumi state unprotect`",
            )
        ]

    def _service_cidr_issues(self) -> list[Issue]:
        if not self.cluster.service_cidr.overlaps(self.network.cidr):
            return []
        return [
            (
                "cluster.serviceCidr",
                str(self.cluster.service_cidr),
                f"overlaps the VPC CIDR {self.network.cidr}; Service IPs must not be VPC addresses",
            )
        ]

    def _per_az_issues(self) -> list[Issue]:
        if (
            not self.profile.requires_system_node_per_az
            or self.system_node_group.min_size >= self.network.az_count
        ):
            return []
        return [
            (
                "systemNodeGroup.minSize",
                self.system_node_group.min_size,
                f"a production stack keeps at least one system node in each of its "
                f"{self.network.az_count} AZs",
            )
        ]

    def _prometheus_disk_issues(self) -> list[Issue]:
        # Outside production Prometheus keeps its data in an emptyDir on its Karpenter node's disk
        # (components/monitoring.py storage_values), which also holds the OS, the images and the
        # other pods' ephemeral storage.
        room = self.karpenter.node_disk_gib // 2
        if self.profile.keep_volumes or self.monitoring.storage_gib <= room:
            return []
        return [
            (
                "monitoring.storageGiB",
                self.monitoring.storage_gib,
                f"outside production Prometheus keeps its data on its node's disk: at most half of "
                f"karpenter.nodeDiskGiB ({self.karpenter.node_disk_gib}), {room} GiB; lower it or "
                "raise karpenter.nodeDiskGiB",
            )
        ]

    def _capacity_issues(self) -> list[Issue]:
        cap = self.capacity_report()
        if cap.fits:
            return []
        return [
            (
                "karpenter.nodePools",
                {p.name: {"cpuLimit": p.cpu_limit, "minCpu": p.min_cpu} for p in self.karpenter.node_pools},
                f"could exhaust the private subnets: up to {cap.max_nodes} nodes and "
                f"{cap.planned_pods} planned pods need {cap.required_ips} pod IPs, but the "
                f"{len(cap.free_ips_per_az)} private subnets offer {cap.usable_ips} after "
                f"{self.capacity.headroom_percent}% headroom "
                f"(at most {cap.max_pods} pods fit the nodes); "
                "lower the pools' cpuLimit, raise their minCpu, or widen network.privateSubnetPrefix",
            )
        ]

    def _ami_release_issues(self) -> list[Issue]:
        """The system nodes' AMI release: pinned in production, for the cluster's Kubernetes minor."""
        release = self.system_node_group.ami_release_version
        key = "systemNodeGroup.amiReleaseVersion"
        if release is None:
            if not self.profile.requires_pinned_ami:
                return []  # dev follows the latest release for its Kubernetes version
            return [
                (
                    key,
                    None,
                    "required in a production stack: pin the system nodes' AMI release, so a "
                    "replaced node runs what was tested (`make ami-versions STACK=<stack>` prints it)",
                )
            ]
        minor = al2023_release_minor(release)
        wanted = self.cluster.kubernetes_version
        if self.system_node_group.ami_family == "AL2023" and minor is not None and minor != wanted:
            return [
                (
                    key,
                    release,
                    f"is a Kubernetes {minor} release, but cluster.kubernetesVersion is {wanted}; "
                    "change both together (docs/upgrades.md)",
                )
            ]
        return []

    def capacity_report(self) -> Capacity:
        """The stack's IP capacity: max nodes and pods against the free IPs of each private subnet."""
        return capacity(
            {str(private): private.prefixlen for private, _ in self.network.subnets()},
            self.system_node_group.max_size,
            self.karpenter,
            self.capacity,
        )

    @property
    def prefix(self) -> str:
        """The one name prefix every physical name derives from."""
        return f"{self.project}-{self.stack}"

    @property
    def cluster_name(self) -> str:
        return self.prefix

    @property
    def profile(self) -> StackProfile:
        """What `production` changes (stacks/profile.py): the phases build with it."""
        return profile(self.production)

    @property
    def all_tags(self) -> dict[str, str]:
        """The stack's tags: the required platform keys, then the stack file's extra tags.

        `environment` defaults to the stack's name, so a copied stack file tags its own stack.
        """
        return {
            "platform:project": self.project,
            "platform:stack": self.stack,
            "managed-by": "pulumi",
            "environment": self.stack,
            **self.tags,
        }


# Model fields the loader fills in; a stack file setting them is a mistake.
_NOT_STACK_KEYS = {
    "region": "unknown key: the region is `aws:region`",
    "project": "unknown key: the project name comes from Pulumi.yaml",
    "stack": "unknown key: the stack name comes from `pulumi stack select`",
}
# Keys of the project namespace that hold objects or lists (stored as JSON strings by the engine).
_SCALAR_KEYS = {"project", "stack", "region", "production", "protect"}
_OBJECT_KEYS = {
    field.alias or name for name, field in PlatformConfig.model_fields.items() if name not in _SCALAR_KEYS
}


def parse_raw(raw: dict[str, str], namespace: str = PROJECT) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Map the engine's flat `namespace:key -> string` config onto the model's input shape."""
    data: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    for full_key, value in raw.items():
        ns, _, key = full_key.partition(":")
        if full_key == "aws:region":
            data["region"] = value
        elif ns in OTHER_NAMESPACES:
            continue  # pulumi's own and the AWS provider's keys are not ours to judge
        elif ns != namespace:
            shown = json.loads(value) if value[:1] in ("{", "[") else value
            issues.append(ConfigIssue(full_key, shown, unknown_namespace(full_key, namespace)))
        elif key in _OBJECT_KEYS:
            try:
                data[key] = json.loads(value)
            except json.JSONDecodeError as err:
                issues.append(ConfigIssue(full_key, value, f"must be a YAML object ({err.msg})"))
        elif key in ("production", "protect"):
            if value not in ("true", "false", "True", "False"):
                issues.append(ConfigIssue(full_key, value, "must be true or false"))
            else:
                data[key] = value.lower() == "true"
        elif key in _NOT_STACK_KEYS:
            issues.append(ConfigIssue(full_key, value, _NOT_STACK_KEYS[key]))
        else:
            data[key] = value  # unknown keys are rejected by the model as typos
    return data, issues


def _secret_inputs(
    raw: dict[str, str], secret_keys: frozenset[str], namespace: str
) -> tuple[dict[str, str], list[ConfigIssue]]:
    """Pull the secret-only keys out of the raw config, checking they are secrets and well formed.

    Their values never appear in an error message: the issue shows "[secret]".
    """
    values: dict[str, str] = {}
    issues: list[ConfigIssue] = []
    for key, must_start in SECRET_KEYS.items():
        full = f"{namespace}:{key}"
        if full not in raw:
            continue
        value = raw.pop(full)
        if full not in secret_keys:
            issues.append(
                ConfigIssue(full, "[not shown]", f"must be a secret: `pulumi config set --secret {key} ...`")
            )
        elif value != SECRET_PLACEHOLDER and not value.startswith(must_start):
            issues.append(ConfigIssue(full, "[secret]", f"must start with {must_start}"))
        else:
            values[key] = value
    return values, issues


def validate(
    raw: dict[str, str], project: str, stack: str, source: str, secret_keys: frozenset[str] = frozenset()
) -> PlatformConfig:
    """Validate the raw engine config of one stack; raise ConfigError listing every problem."""
    raw = dict(raw)
    offline = raw.pop(f"{project}:{OFFLINE_KEY}", "false") == "true"
    secrets, issues = _secret_inputs(raw, secret_keys, project)
    data, parse_issues = parse_raw(raw, project)
    issues += parse_issues
    data["project"], data["stack"] = project, stack
    try:
        # The production flag is context for the sections' own production rules, so those are
        # reported together with every other error rather than after them; the stack names the
        # default GitOps folder (delivery.gitops.path), which must exist.
        context = {"production": data.get("production", False), "stack": stack, "project": project}
        cfg = PlatformConfig.model_validate(data, context=context)
    except ValidationError as err:
        issues += format_errors(err, project, PlatformConfig)
    if profile(data.get("production") is True).refuses_placeholders and not offline:
        issues += [
            ConfigIssue(key, value, f"{reason}: a documentation placeholder; replace it before deploying")
            for key, value, reason in placeholders.find(raw, secret_keys)
        ]
    if issues:
        raise ConfigError(source, issues)
    cfg._secrets = secrets
    return cfg


def load() -> PlatformConfig:
    """Read and validate this stack's config. The only reader of Pulumi config in the project."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    # The engine hands config over either through PULUMI_CONFIG or set_all_config; take both.
    raw = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    secret_keys = frozenset(k for k in raw if pulumi.runtime.is_config_secret(k)) | frozenset(
        pulumi.runtime.config.get_config_secret_keys_env()
    )
    return validate(raw, project, stack, f"Pulumi.{stack}.yaml", secret_keys)
