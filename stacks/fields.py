"""Field types and helpers shared by the config sections: parsing, messages, cross-field errors."""

from __future__ import annotations

import difflib
import functools
import inspect
import ipaddress
import re
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pulumi_aws import Region
from pulumi_aws.ec2 import InstanceType as Ec2InstanceType
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    StrictInt,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

from stacks.profile import StackProfile, profile

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
        raise ValueError(
            f"{value!r} is not an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/<name>)"
        )
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


def profile_of(info: ValidationInfo) -> StackProfile:
    """The profile of the stack being validated (stacks/profile.py): what it must set."""
    return profile(is_production(info))


# A cross-field problem: the key (relative to the model), the value shown, and why.
Issue = tuple[str, Any, str]


def cross_field(issues: list[Issue]) -> None:
    """Raise every cross-field problem of one model at once; `format_errors` expands them."""
    if issues:
        raise PydanticCustomError(
            "cross_field", "{summary}", {"summary": "; ".join(m for _, _, m in issues), "issues": issues}
        )


class FailedFieldError(Exception):
    """A rule read a field that failed its own validation; the rule has nothing to say (see Model)."""


def check_all(*checks: Callable[[], list[Issue]]) -> None:
    """Run independent rules and raise every issue at once.

    A rule that reads a field which failed its own validation is skipped, the others still run:
    `maxSize: 1` is reported next to an unknown instance type, not after it is fixed.
    """
    issues: list[Issue] = []
    for check in checks:
        try:
            issues += check()
        except FailedFieldError:
            continue
    cross_field(issues)


_KNOWN_ERRORS = frozenset(typing.get_args(ErrorType))


def _resend(error: ErrorDetails) -> InitErrorDetails:
    """One of pydantic's errors as it is raised again (custom types keep their message and ctx)."""
    ctx = error.get("ctx")
    kind = error["type"]
    if kind in _KNOWN_ERRORS:
        return InitErrorDetails(type=kind, loc=error["loc"], input=error["input"], ctx=ctx or {})
    custom = PydanticCustomError(kind, error["msg"], ctx)
    return InitErrorDetails(type=custom, loc=error["loc"], input=error["input"])


@functools.cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    # The type with its constraints (ge, le, min_length) and Annotated validators; no default.
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    return TypeAdapter(annotation)


class Model(BaseModel):
    """The base of every config section: frozen, unknown keys refused, camelCase keys.

    Every problem of a stack file is reported at once. Pydantic runs a model's `after` validators
    (its cross-field rules) only when every field validated; here, when some field fails, the
    rules still run on the fields that did validate, and a rule reading a failed field is skipped
    (`FailedFieldError`; `check_all` skips only that rule).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo
    ) -> Self:
        try:
            return handler(data)
        except ValidationError as err:
            raise _with_rule_errors(cls, data, info, err) from None

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Only an instance built by `_with_rule_errors` lacks a field: the one that failed.
            if name in type(self).model_fields:
                raise FailedFieldError(name)
            return super().__getattr__(name)


def _with_rule_errors(
    model: type[Model], data: Any, info: ValidationInfo, err: ValidationError
) -> ValidationError:
    """The field errors of `err`, plus what the model's rules find in the fields that validated."""
    errors = err.errors()
    if not isinstance(data, dict) or any(not e["loc"] for e in errors):
        return err  # not an object at all, or a whole-model error: there are no fields to judge
    failed = {e["loc"][0] for e in errors}
    valid: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias if field.alias in data else name
        if key not in data or key in failed or name in failed:
            continue
        try:
            valid[name] = _field_adapter(model, name).validate_python(data[key], context=info.context)
        except ValidationError:
            continue
    partial = model.model_construct(**valid)
    for name in model.model_fields:
        if name not in valid and (name in failed or model.model_fields[name].alias in failed):
            partial.__dict__.pop(name, None)  # reading it raises FailedFieldError
    found: list[InitErrorDetails] = []
    for decorator in model.__pydantic_decorators__.model_validators.values():
        if decorator.info.mode != "after":
            continue
        rule: Callable[..., Any] = decorator.func
        try:
            rule(partial, info) if len(inspect.signature(rule).parameters) == 2 else rule(partial)
        except FailedFieldError:
            continue
        except PydanticCustomError as problem:
            found.append(InitErrorDetails(type=problem, loc=(), input=data))
        except ValueError as problem:
            found.append(InitErrorDetails(type="value_error", loc=(), input=data, ctx={"error": problem}))
    if not found:
        return err
    return ValidationError.from_exception_data(err.title, [*map(_resend, errors), *found])
