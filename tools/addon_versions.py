"""Compare the pinned EKS add-on versions with the newest AWS offers (needs AWS credentials).

    python -m tools.addon_versions --stack dev [--refresh-schemas]

Read-only towards AWS (boto3 `eks.describe_addon_versions`, paginated): prints a table and exits 1
when a pin is behind, so a scheduled job can flag it. It also records the configuration schema of
every pinned version that has none yet (`eks.describe_addon_configuration`, `configurationSchema`)
as platform/addon-schemas/<add-on>-<version>.json, with the date and the call that produced it;
the offline plan validates the add-ons' configuration values against them (analysis/addon_config.py).
`--refresh-schemas` records them again. Without credentials, or when AWS refuses a call, it prints
AWS's own error text and exits 2, without a traceback. Bumping stays a reviewed edit of
platform/eks-addons.yaml.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
from jsonschema import Draft7Validator, SchemaError
from jsonschema.validators import validator_for
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stacks.data import ADDON_SCHEMA_DIR, addon_schema_path, addon_versions
from tools.stackcli import load_config


def version_key(version: str) -> tuple[int, ...]:
    """Order EKS add-on versions (`v1.21.1-eksbuild.2`) by their numbers, build number last."""
    return tuple(int(n) for n in re.findall(r"\d+", version))


def newest(eks: Any, addon: str, kubernetes_version: str) -> str | None:
    """The newest version of `addon` that AWS offers for `kubernetes_version`, or None if none."""
    versions = [
        v["addonVersion"]
        for page in eks.get_paginator("describe_addon_versions").paginate(
            addonName=addon, kubernetesVersion=kubernetes_version
        )
        for entry in page["addons"]
        if entry["addonName"] == addon
        for v in entry["addonVersions"]
    ]
    return max(versions, key=version_key) if versions else None


def compare(eks: Any, kubernetes_version: str, pins: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """(add-on, pinned, newest) for every pin, sorted by add-on name."""
    return [(addon, pins[addon], newest(eks, addon, kubernetes_version)) for addon in sorted(pins)]


def schema_record(eks: Any, addon: str, version: str, region: str, today: datetime.date) -> dict[str, Any]:
    """One add-on version's configuration schema as AWS returns it, with when and how it was read.

    AWS returns the schema as a JSON string; it is stored parsed (readable in review) and must be
    a valid JSON schema, or the plan could not use it."""
    reply = eks.describe_addon_configuration(addonName=addon, addonVersion=version)
    schema = json.loads(reply["configurationSchema"])
    try:
        validator_for(schema, default=Draft7Validator).check_schema(schema)
    except SchemaError as err:
        raise ValueError(
            f"AWS's configuration schema of {addon} {version} is not a JSON schema: {err.message}"
        ) from err
    return {
        "addonName": addon,
        "addonVersion": version,
        "recorded": today.isoformat(),
        "source": (
            f"EKS DescribeAddonConfiguration addonName={addon} addonVersion={version} in {region} "
            "(`aws eks describe-addon-configuration`), recorded by `make addon-versions`"
        ),
        "configurationSchema": schema,
    }


def record_schemas(
    eks: Any,
    pins: dict[str, str],
    region: str,
    *,
    refresh: bool = False,
    folder: Path = ADDON_SCHEMA_DIR,
    today: datetime.date | None = None,
) -> list[Path]:
    """Write the schema of every pinned add-on version that has none recorded (all with `refresh`)."""
    written = []
    for addon in sorted(pins):
        path = addon_schema_path(addon, pins[addon], folder)
        if path.exists() and not refresh:
            continue
        record = schema_record(eks, addon, pins[addon], region, today or datetime.date.today())
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(
    argv: list[str] | None = None, session: boto3.Session | None = None, schema_dir: Path = ADDON_SCHEMA_DIR
) -> int:
    parser = argparse.ArgumentParser(prog="make addon-versions", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument(
        "--refresh-schemas", action="store_true", help="record every pinned version's schema again"
    )
    args = parser.parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    cfg = load_config(args.stack, errors)
    if cfg is None:
        return 2
    k8s = cfg.cluster.kubernetes_version
    eks = (session or boto3.Session()).client("eks", region_name=cfg.region)
    pins = addon_versions(k8s)
    try:
        rows = compare(eks, k8s, pins)
    except (ClientError, BotoCoreError) as err:
        errors.print(
            f"[red]AWS refused the add-on lookup[/]: {escape(str(err))}", highlight=False, soft_wrap=True
        )
        return 2
    table = Table(title=f"EKS add-ons for Kubernetes {k8s} ({cfg.region})")
    for column in ("add-on", "pinned", "newest", ""):
        table.add_column(column, no_wrap=True)
    behind = 0
    for addon, pinned, latest in rows:
        if latest is None:
            status = "[red]not offered[/]"
        elif version_key(latest) > version_key(pinned):
            status = "[yellow]bump[/]"
        else:
            status = ""
        behind += bool(status)
        table.add_row(addon, pinned, latest or "-", status)
    console.print(table)
    offered = {addon: pinned for addon, pinned, latest in rows if latest is not None}
    try:
        written = record_schemas(eks, offered, cfg.region, refresh=args.refresh_schemas, folder=schema_dir)
    except (ClientError, BotoCoreError, ValueError) as err:
        errors.print(
            f"[red]Could not record an add-on configuration schema[/]: {escape(str(err))}",
            highlight=False,
            soft_wrap=True,
        )
        return 2
    for path in written:
        console.print(
            f"Recorded the configuration schema {escape(str(path))}", highlight=False, soft_wrap=True
        )
    return 1 if behind else 0


if __name__ == "__main__":
    sys.exit(main())
