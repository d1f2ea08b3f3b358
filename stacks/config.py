"""The stack's typed configuration: read once from `Pulumi.<stack>.yaml`, validated once, frozen.

`load()` is the only code in the project that reads `pulumi.Config`. Every error in a stack file
is reported at once, each naming the key, the bad value, why, and the file it came from; an
invalid stack raises `ConfigError` (a `pulumi.RunError`, so the CLI prints the message without a
traceback) before any resource is registered.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

PROJECT = "eks-platform"

# Kubernetes minor versions EKS offers, with the support tier each is in as of 2026-11
# (1.34 leaves standard support on 2026-12-02). Bump this table with the EKS release calendar.
KUBERNETES_VERSIONS: dict[str, Literal["standard", "extended"]] = {
    "1.33": "extended",
    "1.34": "standard",
    "1.35": "standard",
}

# The only retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "ec2", "sqs", "logs")

MIN_AZS, MAX_AZS = 2, 6

# Matched with fullmatch and re.ASCII: no trailing newline, no non-ASCII digits.
_INSTANCE_TYPE = re.compile(r"(?P<family>[a-z][a-z0-9-]*\d[a-z0-9-]*)\.(?P<size>[a-z0-9-]+)", re.ASCII)
# Graviton families carry a `g` right after the generation digit (m7g, c7gn, r8gd, t4g, im4gn,
# is4gen, g5g); `a1` is the first-generation Graviton.
_GRAVITON_FAMILY = re.compile(r"a1|[a-z]+\d+g[a-z]*", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
_TAG_KEY = re.compile(r"[\w .:/=+\-@]{1,128}", re.ASCII)
# Tag keys the platform sets itself; a stack's extra tags may not override them.
RESERVED_TAG_KEYS = ("platform:project", "platform:stack", "managed-by")
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# The widest CIDR a production stack may open its API endpoint to.
MIN_PRODUCTION_PUBLIC_PREFIX = 16


def is_rfc1918(network: ipaddress.IPv4Network) -> bool:
    return any(network.subnet_of(block) for block in _RFC1918)


def _parse_cidr(value: Any) -> Any:
    """Accept "a.b.c.d/n" with no host bits; say exactly what is wrong otherwise."""
    if not isinstance(value, str):
        return value
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as err:
        if "has host bits set" in str(err):
            network = ipaddress.IPv4Network(value, strict=False)
            raise ValueError(f"{value} has host bits set; the network is {network}") from None
        raise ValueError(f"{value!r} is not an IPv4 CIDR (a.b.c.d/n)") from None


def instance_architecture(instance_type: str) -> Literal["arm64", "x86_64"]:
    """The CPU architecture of an EC2 instance type, from its family name."""
    match = _INSTANCE_TYPE.fullmatch(instance_type)
    if match is None:
        raise ValueError(f"{instance_type!r} is not an EC2 instance type (family.size, e.g. m7g.large)")
    return "arm64" if _GRAVITON_FAMILY.fullmatch(match["family"]) else "x86_64"


def _check_instance_type(value: str) -> str:
    instance_architecture(value)
    return value


def _check_role_arn(value: str) -> str:
    if not _ROLE_ARN.fullmatch(value):
        raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)")
    return value


def _check_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(
            f"{value} days is not a CloudWatch Logs retention period; "
            f"allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}"
        )
    return value


InstanceType = Annotated[str, AfterValidator(_check_instance_type)]
RoleArn = Annotated[str, AfterValidator(_check_role_arn)]
RetentionDays = Annotated[StrictInt, AfterValidator(_check_retention)]
Cidr = Annotated[ipaddress.IPv4Network, BeforeValidator(_parse_cidr)]


def _production(info: ValidationInfo) -> bool:
    """Whether the stack being validated is marked production (validation context)."""
    return bool((info.context or {}).get("production"))


def _cross(issues: list[tuple[str, Any, str]]) -> None:
    """Raise every cross-field problem of one model at once; `format_errors` expands them."""
    if issues:
        raise PydanticCustomError(
            "cross_field", "{summary}", {"summary": "; ".join(m for _, _, m in issues), "issues": issues}
        )


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


def subnet_layout(
    cidr: ipaddress.IPv4Network, az_count: int, private_prefix: int, public_prefix: int
) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]:
    """Split the VPC into one block per AZ; each block holds its private subnet, then its public one.

    Raises ValueError when the subnets do not fit. Deterministic, so the plan, the capacity check
    and AWS all see the same CIDRs.
    """
    block_prefix = cidr.prefixlen + math.ceil(math.log2(az_count))
    need = 2 ** (32 - private_prefix) + 2 ** (32 - public_prefix)
    if block_prefix > 32 or need > 2 ** (32 - block_prefix):
        raise ValueError(
            f"{cidr} is too small for {az_count} AZs of a /{private_prefix} private and a "
            f"/{public_prefix} public subnet: each AZ gets a /{block_prefix} "
            f"({2 ** (32 - min(block_prefix, 32))} addresses) but needs {need}"
        )
    layout = []
    for block in list(cidr.subnets(new_prefix=block_prefix))[:az_count]:
        private = ipaddress.IPv4Network((int(block.network_address), private_prefix))
        public_start = int(block.network_address) + 2 ** (32 - private_prefix)
        layout.append((private, ipaddress.IPv4Network((public_start, public_prefix))))
    return layout


class NetworkConfig(_Model):
    cidr: Cidr = Field(
        default=ipaddress.IPv4Network("10.0.0.0/16"),
        description="VPC CIDR, a private range between /16 and /24.",
    )
    az_count: StrictInt = Field(
        default=3, ge=MIN_AZS, le=MAX_AZS, description="Availability zones used, 2 to 6."
    )
    nat_strategy: Literal["single", "onePerAz"] = Field(
        default="onePerAz", description="`single` NAT gateway (dev) or `onePerAz` (required in production)."
    )
    private_subnet_prefix: StrictInt = Field(
        default=19, ge=16, le=22, description="Prefix length of each AZ's private subnet (nodes and pod IPs)."
    )
    public_subnet_prefix: StrictInt = Field(
        default=24,
        ge=20,
        le=28,
        description="Prefix length of each AZ's public subnet (load balancers, NAT).",
    )
    flow_log_retention_days: RetentionDays = Field(
        default=30, description="Days VPC flow logs are kept (a CloudWatch Logs retention value)."
    )
    interface_endpoints: tuple[Literal["ecr.api", "ecr.dkr", "sts", "ec2", "sqs", "logs"], ...] = Field(
        default=(), description="Interface VPC endpoints to create (the S3 gateway endpoint is always there)."
    )

    @field_validator("nat_strategy")
    @classmethod
    def _nat_per_az_in_production(cls, value: str, info: ValidationInfo) -> str:
        if _production(info) and value != "onePerAz":
            raise ValueError(
                "a production stack needs one NAT gateway per AZ, "
                "so one AZ's loss does not cut the others off"
            )
        return value

    @model_validator(mode="after")
    def _fits(self) -> NetworkConfig:
        issues: list[tuple[str, Any, str]] = []
        if not is_rfc1918(self.cidr):
            issues.append(("cidr", str(self.cidr), "must be a private (RFC 1918) range"))
        if not 16 <= self.cidr.prefixlen <= 24:
            issues.append(("cidr", str(self.cidr), "a VPC CIDR must be between /16 and /24"))
        if self.public_subnet_prefix <= self.private_subnet_prefix:
            issues.append(
                (
                    "publicSubnetPrefix",
                    self.public_subnet_prefix,
                    f"public subnets (only load balancers and NAT) must be smaller than the "
                    f"/{self.private_subnet_prefix} private subnets that hold the pod IPs",
                )
            )
        if len(set(self.interface_endpoints)) != len(self.interface_endpoints):
            issues.append(("interfaceEndpoints", list(self.interface_endpoints), "lists a service twice"))
        if not issues:
            try:
                self.subnets()
            except ValueError as err:
                issues.append(("cidr", str(self.cidr), str(err)))
        _cross(issues)
        return self

    def subnets(self) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]:
        return subnet_layout(self.cidr, self.az_count, self.private_subnet_prefix, self.public_subnet_prefix)


class ClusterConfig(_Model):
    kubernetes_version: str = Field(default="1.35", description="EKS Kubernetes minor version.")
    upgrade_support_type: Literal["STANDARD", "EXTENDED"] = Field(
        default="STANDARD", description="EKS support tier; EXTENDED costs extra once a version ages."
    )
    endpoint_public_access: StrictBool = Field(
        default=False, description="Open the public API endpoint (the private one is always on)."
    )
    public_access_cidrs: tuple[Cidr, ...] = Field(
        default=(), description="CIDRs allowed to the public endpoint; required when it is open."
    )
    service_cidr: Cidr = Field(
        default=ipaddress.IPv4Network("172.20.0.0/16"),
        description="Kubernetes Service CIDR: private, /12 to /24, outside the VPC.",
    )
    admin_role_arns: tuple[RoleArn, ...] = Field(
        default=(), description="IAM roles granted cluster admin through EKS access entries."
    )
    log_retention_days: RetentionDays = Field(
        default=90, description="Days control-plane logs are kept (a CloudWatch Logs retention value)."
    )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ClusterConfig:
        issues: list[tuple[str, Any, str]] = []
        if not (is_rfc1918(self.service_cidr) and 12 <= self.service_cidr.prefixlen <= 24):
            issues.append(
                (
                    "serviceCidr",
                    str(self.service_cidr),
                    "EKS needs a private (RFC 1918) Service CIDR between /12 and /24",
                )
            )
        if _production(info):
            for c in self.public_access_cidrs:
                if c.prefixlen < MIN_PRODUCTION_PUBLIC_PREFIX:
                    issues.append(
                        (
                            "publicAccessCidrs",
                            str(c),
                            f"opens the API endpoint to {c.num_addresses:,} addresses; a production "
                            f"stack lists its deployers' egress CIDRs "
                            f"(/{MIN_PRODUCTION_PUBLIC_PREFIX} or narrower)",
                        )
                    )
        tier = KUBERNETES_VERSIONS.get(self.kubernetes_version)
        if tier is None:
            issues.append(
                (
                    "kubernetesVersion",
                    self.kubernetes_version,
                    f"not an EKS version this platform supports; use one of {', '.join(KUBERNETES_VERSIONS)}",
                )
            )
        elif tier == "extended" and self.upgrade_support_type == "STANDARD":
            issues.append(
                (
                    "kubernetesVersion",
                    self.kubernetes_version,
                    "is only in EKS extended support; upgrade it, or set "
                    "upgradeSupportType: EXTENDED and accept the extra cost",
                )
            )
        if self.endpoint_public_access and not self.public_access_cidrs:
            issues.append(
                (
                    "publicAccessCidrs",
                    [],
                    "endpointPublicAccess is true, so list the CIDRs "
                    "allowed to reach the public API endpoint",
                )
            )
        if not self.endpoint_public_access and self.public_access_cidrs:
            issues.append(
                (
                    "publicAccessCidrs",
                    [str(c) for c in self.public_access_cidrs],
                    "set, but endpointPublicAccess is false: the CIDRs would have no effect",
                )
            )
        for i, a in enumerate(self.public_access_cidrs):
            for b in self.public_access_cidrs[i + 1 :]:
                if a.overlaps(b):
                    issues.append(("publicAccessCidrs", f"{a}, {b}", "these CIDRs overlap"))
        if len(set(self.admin_role_arns)) != len(self.admin_role_arns):
            issues.append(("adminRoleArns", list(self.admin_role_arns), "lists a role twice"))
        _cross(issues)
        return self


class SystemNodeGroupConfig(_Model):
    instance_types: tuple[InstanceType, ...] = Field(
        default=("m7g.large",), description="EC2 instance types (at least one), all of `architecture`."
    )
    architecture: Literal["arm64", "x86_64"] = Field(default="arm64", description="CPU architecture.")
    ami_family: Literal["AL2023", "Bottlerocket"] = Field(
        default="AL2023", description="Node OS image family."
    )
    min_size: StrictInt = Field(
        default=2, ge=1, description="Minimum nodes (production: at least one per AZ)."
    )
    desired_size: StrictInt = Field(
        default=2, ge=1, description="Nodes at creation; minSize <= desiredSize <= maxSize."
    )
    max_size: StrictInt = Field(default=4, ge=1, le=100, description="Maximum nodes.")
    disk_size_gib: StrictInt = Field(
        default=50, ge=20, le=1000, alias="diskSizeGiB", description="Encrypted gp3 root/data volume size."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SystemNodeGroupConfig:
        issues: list[tuple[str, Any, str]] = []
        if not self.instance_types:
            issues.append(("instanceTypes", [], "list at least one instance type"))
        if not self.min_size <= self.desired_size <= self.max_size:
            issues.append(
                (
                    "desiredSize",
                    self.desired_size,
                    f"must satisfy minSize ({self.min_size}) <= desiredSize "
                    f"({self.desired_size}) <= maxSize ({self.max_size})",
                )
            )
        for t in self.instance_types:
            if instance_architecture(t) != self.architecture:
                issues.append(
                    (
                        "instanceTypes",
                        t,
                        f"is {instance_architecture(t)}, but architecture is {self.architecture}",
                    )
                )
        _cross(issues)
        return self


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    problems = []
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            problems.append(f"tag key {key!r}: the 'aws:' prefix is reserved by AWS")
        elif key in RESERVED_TAG_KEYS:
            problems.append(f"tag key {key!r} is set by the platform itself")
        elif not _TAG_KEY.fullmatch(key):
            problems.append(
                f"tag key {key!r} must be 1-128 characters of letters, digits, spaces and _ . : / = + - @"
            )
        if len(value) > 256:
            problems.append(f"tag {key!r}: the value is longer than 256 characters")
    if problems:
        raise ValueError("; ".join(problems))
    return tags


class PlatformConfig(_Model):
    """Everything a stack can set. Defaults are the secure, production-shaped choice."""

    project: str
    stack: str
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$", description="AWS region (`aws:region`).")
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
    tags: Annotated[dict[str, str], AfterValidator(_check_tags)] = Field(
        default={}, description="Extra tags on every AWS resource (no `aws:` prefix)."
    )

    @field_validator("protect")
    @classmethod
    def _protected_in_production(cls, protect: bool, info: ValidationInfo) -> bool:
        # A field rule (not a model rule) so it is reported even when a section is invalid.
        if info.data.get("production") and not protect:
            raise ValueError(
                "a production stack must protect its state (cluster, keys); "
                "unprotect deliberately with `pulumi state unprotect`"
            )
        return protect

    @model_validator(mode="after")
    def _across_sections(self) -> PlatformConfig:
        issues: list[tuple[str, Any, str]] = []
        if self.cluster.service_cidr.overlaps(self.network.cidr):
            issues.append(
                (
                    "cluster.serviceCidr",
                    str(self.cluster.service_cidr),
                    f"overlaps the VPC CIDR {self.network.cidr}; Service IPs must not be VPC addresses",
                )
            )
        if self.production and self.system_node_group.min_size < self.network.az_count:
            issues.append(
                (
                    "systemNodeGroup.minSize",
                    self.system_node_group.min_size,
                    f"a production stack keeps at least one system node in each of its "
                    f"{self.network.az_count} AZs",
                )
            )
        _cross(issues)
        return self

    @property
    def prefix(self) -> str:
        """The one name prefix every physical name derives from."""
        return f"{self.project}-{self.stack}"

    @property
    def cluster_name(self) -> str:
        return self.prefix

    @property
    def all_tags(self) -> dict[str, str]:
        """The stack's tags: the required platform keys, then the stack file's extra tags."""
        return {
            "platform:project": self.project,
            "platform:stack": self.stack,
            "managed-by": "pulumi",
            **self.tags,
        }


@dataclass(frozen=True)
class ConfigIssue:
    key: str
    value: Any
    message: str

    @property
    def shown_value(self) -> str:
        """The value as JSON, shortened so that one issue stays one readable line."""
        text = json.dumps(self.value, default=str)
        return text if len(text) <= 60 else text[:59] + "…"

    def __str__(self) -> str:
        return f"{self.key} = {self.shown_value}: {self.message}"


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; the message lists every problem."""

    def __init__(self, source: str, issues: list[ConfigIssue]):
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  - {i}" for i in issues)
        super().__init__(f"{source}: {len(issues)} invalid configuration value(s):\n{lines}")


def format_errors(err: ValidationError, namespace: str) -> list[ConfigIssue]:
    """Turn pydantic's errors into issues keyed by the stack file's own names."""
    issues = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        if e["type"] == "cross_field":
            for sub, value, message in e["ctx"]["issues"]:
                key = f"{path}.{sub}" if path else sub
                issues.append(ConfigIssue(_qualify(key, namespace), value, message))
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (a typo?); see the config reference in the README"
        value = e["input"] if e["type"] != "missing" else None
        issues.append(ConfigIssue(_qualify(path, namespace), value, msg))
    return issues


def _qualify(path: str, namespace: str) -> str:
    if path == "region":
        return "aws:region"
    return f"{namespace}:{path}"


# Model fields the loader fills in; a stack file setting them is a mistake.
_NOT_STACK_KEYS = {
    "region": "unknown key: the region is `aws:region`",
    "project": "unknown key: the project name comes from Pulumi.yaml",
    "stack": "unknown key: the stack name comes from `pulumi stack select`",
}
# Keys of the project namespace that hold objects or lists (stored as JSON strings by the engine).
_OBJECT_KEYS = {"network", "cluster", "systemNodeGroup", "tags"}


def parse_raw(raw: dict[str, str], namespace: str = PROJECT) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Map the engine's flat `namespace:key -> string` config onto the model's input shape."""
    data: dict[str, Any] = {}
    issues: list[ConfigIssue] = []
    for full_key, value in raw.items():
        ns, _, key = full_key.partition(":")
        if full_key == "aws:region":
            data["region"] = value
        elif ns != namespace:
            continue  # other providers' and pulumi's own keys are not ours to judge
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


def validate(raw: dict[str, str], project: str, stack: str, source: str) -> PlatformConfig:
    """Validate the raw engine config of one stack; raise ConfigError listing every problem."""
    data, issues = parse_raw(raw, project)
    data["project"], data["stack"] = project, stack
    try:
        # The production flag is context for the sections' own production rules, so those are
        # reported together with every other error rather than after them.
        cfg = PlatformConfig.model_validate(data, context={"production": data.get("production", False)})
    except ValidationError as err:
        issues += format_errors(err, project)
    if issues:
        raise ConfigError(source, issues)
    return cfg


def load() -> PlatformConfig:
    """Read and validate this stack's config. The only reader of Pulumi config in the project."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    # The engine hands config over either through PULUMI_CONFIG or set_all_config; take both.
    raw = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    return validate(raw, project, stack, f"Pulumi.{stack}.yaml")
