"""Field types and helpers shared by the config sections: parsing, messages, cross-field errors."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

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

# Matched with fullmatch and re.ASCII: no trailing newline, no non-ASCII digits.
_INSTANCE_TYPE = re.compile(r"(?P<family>[a-z][a-z0-9-]*\d[a-z0-9-]*)\.(?P<size>[a-z0-9-]+)", re.ASCII)
# Graviton families carry a `g` right after the generation digit (m7g, c7gn, r8gd, t4g, im4gn,
# is4gen, g5g); `a1` is the first-generation Graviton.
_GRAVITON_FAMILY = re.compile(r"a1|[a-z]+\d+g[a-z]*", re.ASCII)
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
