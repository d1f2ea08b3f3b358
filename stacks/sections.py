"""The infrastructure sections of a stack's config: network, cluster, system node group."""

from __future__ import annotations

import datetime
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from stacks.fields import (
    KUBERNETES_VERSIONS,
    MAX_AZS,
    MIN_AZS,
    Cidr,
    InstanceType,
    Issue,
    Model,
    RetentionDays,
    RoleArn,
    check_all,
    instance_architecture,
    is_rfc1918,
    profile_of,
)


def subnet_layout(
    cidr: ipaddress.IPv4Network, az_count: int, private_prefix: int, public_prefix: int
) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]:
    """Lay the subnets out from the start of the VPC: every AZ's private subnet, then every public one.

    Packing the private subnets first wastes nothing on AZ counts that are not a power of two
    (three /18s and three /24s fit a /16). Public subnets are no larger than private ones, so
    each stays aligned. Raises ValueError when they do not fit. Deterministic, so the plan, the
    capacity check and AWS all see the same CIDRs.
    """
    private_size, public_size = 2 ** (32 - private_prefix), 2 ** (32 - public_prefix)
    need = az_count * (private_size + public_size)
    if need > cidr.num_addresses:
        raise ValueError(
            f"{cidr} ({cidr.num_addresses} addresses) is too small for {az_count} AZs of a "
            f"/{private_prefix} private and a /{public_prefix} public subnet, which need {need}"
        )
    start = int(cidr.network_address)
    public_start = start + az_count * private_size
    return [
        (
            ipaddress.IPv4Network((start + i * private_size, private_prefix)),
            ipaddress.IPv4Network((public_start + i * public_size, public_prefix)),
        )
        for i in range(az_count)
    ]


class NetworkConfig(Model):
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
        if profile_of(info).requires_nat_per_az and value != "onePerAz":
            raise ValueError(
                "a production stack needs one NAT gateway per AZ, "
                "so one AZ's loss does not cut the others off"
            )
        return value

    @model_validator(mode="after")
    def _fits(self) -> NetworkConfig:
        check_all(self._cidr_issues, self._prefix_issues, self._endpoint_issues)
        return self

    def _cidr_issues(self) -> list[Issue]:
        issues: list[Issue] = []
        if not is_rfc1918(self.cidr):
            issues.append(("cidr", str(self.cidr), "must be a private (RFC 1918) range"))
        if not 16 <= self.cidr.prefixlen <= 24:
            issues.append(("cidr", str(self.cidr), "a VPC CIDR must be between /16 and /24"))
        if not issues and not self._prefix_issues():
            try:
                self.subnets()
            except ValueError as err:
                issues.append(("cidr", str(self.cidr), str(err)))
        return issues

    def _prefix_issues(self) -> list[Issue]:
        if self.public_subnet_prefix > self.private_subnet_prefix:
            return []
        return [
            (
                "publicSubnetPrefix",
                self.public_subnet_prefix,
                f"public subnets (only load balancers and NAT) must be smaller than the "
                f"/{self.private_subnet_prefix} private subnets that hold the pod IPs",
            )
        ]

    def _endpoint_issues(self) -> list[Issue]:
        if len(set(self.interface_endpoints)) != len(self.interface_endpoints):
            return [("interfaceEndpoints", list(self.interface_endpoints), "lists a service twice")]
        return []

    def subnets(self) -> list[tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]]:
        return subnet_layout(self.cidr, self.az_count, self.private_subnet_prefix, self.public_subnet_prefix)


def _quoted_version(value: Any) -> Any:
    """YAML reads `1.35` as a number (and `1.30` as 1.3): name the value read and the text to write."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        given = str(value)
        decimals = given.partition(".")[2]
        quoted = f"{value:.2f}" if isinstance(value, float) and len(decimals) == 1 else given
        lost = f"; an unquoted {quoted} reads as {given}" if quoted != given else ""
        raise ValueError(
            f'YAML read {given} as a number, not a version: quote it (kubernetesVersion: "{quoted}"){lost}'
        )
    return value


class ClusterConfig(Model):
    kubernetes_version: Annotated[str, BeforeValidator(_quoted_version)] = Field(
        default="1.35", description="EKS Kubernetes minor version."
    )
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
        check_all(
            self._service_cidr_issues,
            lambda: self._public_access_issues(profile_of(info).min_public_access_prefix),
            self._version_issues,
            self._admin_issues,
        )
        return self

    def _service_cidr_issues(self) -> list[Issue]:
        if is_rfc1918(self.service_cidr) and 12 <= self.service_cidr.prefixlen <= 24:
            return []
        return [
            (
                "serviceCidr",
                str(self.service_cidr),
                "EKS needs a private (RFC 1918) Service CIDR between /12 and /24",
            )
        ]

    def _public_access_issues(self, widest: int | None) -> list[Issue]:
        issues: list[Issue] = []
        if widest is not None:
            for c in self.public_access_cidrs:
                if c.prefixlen < widest:
                    issues.append(
                        (
                            "publicAccessCidrs",
                            str(c),
                            f"opens the API endpoint to {c.num_addresses:,} addresses; a production "
                            f"stack lists its deployers' egress CIDRs "
                            f"(/{widest} or narrower)",
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
        return issues

    def _version_issues(self) -> list[Issue]:
        tier = KUBERNETES_VERSIONS.get(self.kubernetes_version)
        if tier is None:
            return [
                (
                    "kubernetesVersion",
                    self.kubernetes_version,
                    f"not an EKS version this platform supports; use one of {', '.join(KUBERNETES_VERSIONS)}",
                )
            ]
        if tier == "extended" and self.upgrade_support_type == "STANDARD":
            return [
                (
                    "kubernetesVersion",
                    self.kubernetes_version,
                    "is only in EKS extended support; upgrade it, or set "
                    "upgradeSupportType: EXTENDED and accept the extra cost",
                )
            ]
        return []

    def _admin_issues(self) -> list[Issue]:
        if len(set(self.admin_role_arns)) != len(self.admin_role_arns):
            return [("adminRoleArns", list(self.admin_role_arns), "lists a role twice")]
        return []


# A managed node group's `releaseVersion` (EKS API CreateNodegroup / UpdateNodegroupVersion
# `releaseVersion`; pulumi_aws 7.51.1 `eks.NodeGroup(release_version=...)`, "Defaults to latest
# version for Kubernetes version"). AL2023: `<Kubernetes x.y.z>-<YYYYMMDD>`, as the "Release
# version" column of awslabs/amazon-eks-ami CHANGELOG.md lists it (1.35.6-20260714 in AMI Release
# v20260714). Bottlerocket: `<OS x.y.z>-<8-hex commit>` (1.47.0-6154605b), the OS release.
AL2023_RELEASE = re.compile(r"(\d+)\.(\d+)\.\d+-(\d{8})", re.ASCII)
BOTTLEROCKET_RELEASE = re.compile(r"\d+\.\d+\.\d+-[0-9a-f]{8}", re.ASCII)
AMI_RELEASE_EXAMPLES = {"AL2023": "1.35.6-20260714", "Bottlerocket": "1.47.0-6154605b"}


def al2023_release_minor(release: str) -> str | None:
    """The Kubernetes minor (`1.35`) of an AL2023 release version, or None if it is not one."""
    found = AL2023_RELEASE.fullmatch(release)
    return f"{found[1]}.{found[2]}" if found else None


def _release_format_problem(release: str, family: str) -> str | None:
    pattern = AL2023_RELEASE if family == "AL2023" else BOTTLEROCKET_RELEASE
    if pattern.fullmatch(release):
        if family == "AL2023":
            try:
                datetime.datetime.strptime(release.rsplit("-", 1)[1], "%Y%m%d")
            except ValueError:
                return f"{release.rsplit('-', 1)[1]} is not a date (YYYYMMDD)"
        return None
    shape = "<Kubernetes version>-<YYYYMMDD>" if family == "AL2023" else "<OS version>-<commit>"
    return (
        f"not a valid {family} release version: EKS takes {shape}, e.g. {AMI_RELEASE_EXAMPLES[family]} "
        "(`make ami-versions` prints the current one)"
    )


class SystemNodeGroupConfig(Model):
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
    ami_release_version: str | None = Field(
        default=None,
        description=(
            "EKS AMI release the nodes run (e.g. 1.35.6-20260714); required in production, "
            "omitted: the latest for the cluster's version."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> SystemNodeGroupConfig:
        check_all(self._types_issues, self._release_issues, self._size_issues)
        return self

    def _types_issues(self) -> list[Issue]:
        if not self.instance_types:
            return [("instanceTypes", [], "list at least one instance type")]
        return [
            ("instanceTypes", t, f"is {instance_architecture(t)}, but architecture is {self.architecture}")
            for t in self.instance_types
            if instance_architecture(t) != self.architecture
        ]

    def _release_issues(self) -> list[Issue]:
        release = self.ami_release_version
        if release is not None and (problem := _release_format_problem(release, self.ami_family)):
            return [("amiReleaseVersion", release, problem)]
        return []

    def _size_issues(self) -> list[Issue]:
        if self.min_size <= self.desired_size <= self.max_size:
            return []
        return [
            (
                "desiredSize",
                self.desired_size,
                f"must satisfy minSize ({self.min_size}) <= desiredSize "
                f"({self.desired_size}) <= maxSize ({self.max_size})",
            )
        ]


_PROM_DURATION = re.compile(r"[1-9]\d*(ms|s|m|h|d|w|y)", re.ASCII)
MIN_PROMETHEUS_GIB = 20


class MonitoringConfig(Model):
    retention: str = Field(default="15d", description="How long Prometheus keeps samples (e.g. 15d, 12w).")
    storage_gib: StrictInt = Field(
        default=50,
        alias="storageGiB",
        description=(
            "Room per Prometheus replica, GiB: an encrypted gp3 volume in production, an emptyDir's "
            "size limit on the node's disk elsewhere (at most half of karpenter.nodeDiskGiB)."
        ),
    )
    receiver: Literal["slack", "webhook"] = Field(
        default="slack", description="Kind of the URL in the `alertReceiverUrl` secret."
    )

    @model_validator(mode="after")
    def _valid(self) -> MonitoringConfig:
        check_all(self._retention_issues, self._storage_issues)
        return self

    def _retention_issues(self) -> list[Issue]:
        if _PROM_DURATION.fullmatch(self.retention):
            return []
        return [("retention", self.retention, "a Prometheus duration: a number and ms, s, m, h, d, w or y")]

    def _storage_issues(self) -> list[Issue]:
        if self.storage_gib >= MIN_PROMETHEUS_GIB:
            return []
        return [
            (
                "storageGiB",
                self.storage_gib,
                f"at least {MIN_PROMETHEUS_GIB} GiB: Prometheus needs room for its WAL and compaction",
            )
        ]

    @property
    def retention_size(self) -> str:
        """Size-based retention just under the volume, so Prometheus prunes before the disk fills."""
        return f"{int(self.storage_gib * 0.85)}GiB"
