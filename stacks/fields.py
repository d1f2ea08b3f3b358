"""Field types and helpers shared by the config sections: parsing, messages, cross-field errors."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pulumi_aws import Region
from pulumi_aws.ec2 import InstanceType as Ec2InstanceType
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictInt,
    ValidationInfo,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

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

# Every EC2 instance type and region the installed AWS provider knows: pulumi_aws 7.51.1
# `ec2/_enums.py` `InstanceType` (1,405 values) and `_enums.py` `Region`, both generated from the
# AWS API with each provider release. A pin bump brings the new types and regions with it.
INSTANCE_TYPES = frozenset(t.value for t in Ec2InstanceType)
REGIONS = frozenset(r.value for r in Region)
# The SDK lists types without their architecture, so it comes from the family name. Graviton
# families carry a `g` right after the generation digit (m7g, c7gn, r8gd, t4g, im4gn, is4gen,
# g5g); `a1` is the first-generation Graviton. p6e-gb200 runs on NVIDIA Grace (Arm) CPUs.
_GRAVITON_FAMILY = re.compile(r"a1|[a-z]+\d+g[a-z]*|p6e-gb200", re.ASCII)
# EC2 Mac instances run only on dedicated hosts, which EKS node groups and Karpenter do not use.
_MAC_FAMILY = re.compile(r"mac[\w-]*", re.ASCII)
_ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
TAG_KEY = re.compile(r"[\w .:/=+\-@]{1,128}", re.ASCII)
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


def closest(value: str, known: Iterable[str]) -> str | None:
    """The known value closest to `value` (difflib ratio 0.75 or better), if any."""
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.75)
    return close[0] if close else None


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """ " (did you mean 'x'?)" for the closest known value, or "" when nothing is close."""
    close = closest(value, known)
    return f" (did you mean {close!r}?)" if close else ""


_SIZE_ORDER = ("nano", "micro", "small", "medium", "large", "xlarge")


def _size_key(size: str) -> tuple[int, int, str]:
    if size in _SIZE_ORDER:
        return (0, _SIZE_ORDER.index(size), size)
    number = re.match(r"\d+", size)
    return (1, int(number[0]), size) if number else (2, 0, size)


def _instance_hint(value: str) -> str:
    """A near miss gets the closest type; a known family with a wrong size gets the sizes it has."""
    cleaned = value.strip().lower()
    if cleaned in INSTANCE_TYPES:
        return f" (did you mean {cleaned!r}?)"
    family, _, size = cleaned.partition(".")
    sizes = sorted((t.partition(".")[2] for t in INSTANCE_TYPES if t.startswith(family + ".")), key=_size_key)
    if sizes:
        near = closest(size, sizes)
        if near:
            return f" (did you mean '{family}.{near}'?)"
        return f" ({family} comes in {', '.join(sizes)})"
    return did_you_mean(cleaned, INSTANCE_TYPES)


def instance_architecture(instance_type: str) -> Literal["arm64", "x86_64"]:
    """The CPU architecture of an EC2 instance type the AWS provider knows (see INSTANCE_TYPES)."""
    if instance_type not in INSTANCE_TYPES:
        raise ValueError(f"{instance_type!r} is not an EC2 instance type{_instance_hint(instance_type)}")
    family = instance_type.split(".", 1)[0]
    if _MAC_FAMILY.fullmatch(family):
        raise ValueError(
            f"{instance_type!r} is an EC2 Mac instance (dedicated hosts only); EKS cannot use it"
        )
    return "arm64" if _GRAVITON_FAMILY.fullmatch(family) else "x86_64"


def _check_instance_type(value: str) -> str:
    instance_architecture(value)
    return value


def check_region(value: str) -> str:
    if value not in REGIONS:
        raise ValueError(f"{value!r} is not an AWS region{did_you_mean(value, REGIONS)}")
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


def is_production(info: ValidationInfo) -> bool:
    """Whether the stack being validated is marked production (validation context)."""
    return bool((info.context or {}).get("production"))


def cross_field(issues: list[tuple[str, Any, str]]) -> None:
    """Raise every cross-field problem of one model at once; `format_errors` expands them."""
    if issues:
        raise PydanticCustomError(
            "cross_field", "{summary}", {"summary": "; ".join(m for _, _, m in issues), "issues": issues}
        )


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)
