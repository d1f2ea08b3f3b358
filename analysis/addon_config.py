"""EKS add-on configuration values checked against each pinned add-on version's own schema.

EKS validates an add-on's `configurationValues` against the JSON schema of that add-on version
(EKS API DescribeAddonConfiguration, `configurationSchema`) and refuses the create or update when
they do not match: an unknown key fails the first `up`. `make addon-versions` records each pinned
version's schema under platform/addon-schemas/ (tools/addon_versions.py); this analysis reads the
recorded plan and those files, never AWS:

- `addon-config-schema` (mandatory): values that break the recorded schema, or that are not JSON
  or YAML at all, each problem named by its path in the values.
- `addon-config-unverified` (advisory): values whose add-on version has no recorded schema yet
  (or no pinned version, or secret values), so nothing offline can say whether EKS accepts them.

It covers `aws:eks/addon:Addon` and pulumi-eks's add-on options on `eks:index:Cluster`
(`corednsAddonOptions`, `kubeProxyAddonOptions`, `vpcCniOptions`), whose `configurationValues`
pulumi-eks passes to the same EKS API ("must match the schema derived from
describe-addon-configuration", pulumi_eks 4.4.0 `_inputs.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, SchemaError
from jsonschema.validators import validator_for

from stacks.data import addon_schema, addon_schema_path

SECRET = "[secret]"  # noqa: S105 (the plan's mask for a secret, not a password)
# pulumi-eks's add-on options: (option, add-on name, the option's version key, its "enabled" default).
EKS_OPTIONS = (
    ("corednsAddonOptions", "coredns", "version", True),
    ("kubeProxyAddonOptions", "kube-proxy", "version", True),
    ("vpcCniOptions", "vpc-cni", "addonVersion", True),
)


@dataclass(frozen=True)
class AddonConfig:
    """One add-on's configuration values as the plan records them."""

    urn: str
    addon: str
    version: str | None
    # A JSON/YAML string (aws:eks/addon:Addon), an object (pulumi-eks), or "[secret]".
    values: Any
    where: str


def configurations(resources: Iterable[Mapping[str, Any]]) -> list[AddonConfig]:
    """Every add-on of the plan that sets configuration values."""
    out: list[AddonConfig] = []
    for r in resources:
        inputs = r.get("inputs") or {}
        if r["type"] == "aws:eks/addon:Addon" and inputs.get("configurationValues") not in (None, ""):
            out.append(
                AddonConfig(
                    r["urn"],
                    inputs["addonName"],
                    inputs.get("addonVersion"),
                    inputs["configurationValues"],
                    "configurationValues",
                )
            )
        if r["type"] != "eks:index:Cluster":
            continue
        for option, addon, version_key, default_on in EKS_OPTIONS:
            settings = inputs.get(option)
            if not isinstance(settings, Mapping) or settings.get("configurationValues") in (None, {}):
                continue
            if not settings.get("enabled", default_on) or (
                option == "vpcCniOptions" and inputs.get("useDefaultVpcCni")
            ):
                continue
            out.append(
                AddonConfig(
                    r["urn"],
                    addon,
                    settings.get(version_key),
                    settings["configurationValues"],
                    f"{option}.configurationValues",
                )
            )
    return out


def problems(values: Any, schema: Mapping[str, Any]) -> list[str]:
    """What in `values` the schema refuses, each as `<path>: <reason>`; empty when it conforms.

    The validator follows the schema's own `$schema` (AWS has published draft-07 and 2019-09
    schemas), draft-07 when it names none."""
    if isinstance(values, str):
        try:
            values = yaml.safe_load(values)  # EKS takes JSON or YAML; JSON is YAML
        except yaml.YAMLError as err:
            return [f"(root): not JSON or YAML: {err}"]
    cls = validator_for(schema, default=Draft7Validator)
    validator = cls(schema)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(values)
    )


def findings(resources: Iterable[Mapping[str, Any]], folder: Path | None = None) -> list[dict[str, Any]]:
    """The plan's findings (plan.schema.json `findings`) for every add-on's configuration values,
    against the schemas recorded in `folder` (platform/addon-schemas/)."""
    out: list[dict[str, Any]] = []
    for config in configurations(resources):
        label = f"{config.addon} {config.version or '(version not pinned)'} {config.where}"

        def unverified(why: str, config: AddonConfig = config, label: str = label) -> dict[str, Any]:
            return {
                "rule": "addon-config-unverified",
                "level": "advisory",
                "urn": config.urn,
                "message": f"{label}: unverified: {why} (EKS refuses values its schema does not allow)",
            }

        if config.version is None:
            out.append(unverified("no pinned add-on version to check against"))
            continue
        if config.values == SECRET:
            out.append(unverified("the values are secret"))
            continue
        path = addon_schema_path(config.addon, config.version, folder)
        try:
            schema = addon_schema(config.addon, config.version, folder)
            if schema is not None:
                validator_for(schema, default=Draft7Validator).check_schema(schema)
        except (ValueError, KeyError, SchemaError) as err:
            out.append(
                {
                    "rule": "addon-config-schema",
                    "level": "mandatory",
                    "urn": config.urn,
                    "message": f"{label}: the recorded schema {path.name} is unreadable ({err}); "
                    "record it again with `make addon-versions`",
                }
            )
            continue
        if schema is None:
            out.append(
                unverified(f"no configuration schema recorded ({path.name}): run `make addon-versions`")
            )
            continue
        out += [
            {
                "rule": "addon-config-schema",
                "level": "mandatory",
                "urn": config.urn,
                "message": f"{label}: {problem} (schema {path.name}); EKS would refuse the add-on",
            }
            for problem in problems(config.values, schema)
        ]
    return out
