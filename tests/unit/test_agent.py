"""The Deployments agent hosts (components/agent.py) as prod's plan records them.

Checked against pulumi/customer-managed-workflow-agent at v2.2.0: .goreleaser.yaml builds
`workflow-runner-embeddable` for linux/amd64 only and ships it in every archive "used by the docker
container"; agent-images/ (Pulumi's EC2 reference) runs the agent binary under systemd on an amd64
Ubuntu host with Docker. The host's boot script itself runs in tests/unit/test_agent_host.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components import agent
from model.records import PlanResult, Registration
from stacks.config import ConfigError, validate
from stacks.data import PLATFORM_DIR
from stacks.fields import instance_architecture
from tools.mocks import stack_config

PROJECT = "eks-platform"


def one(prod: PlanResult, typ: str, suffix: str) -> Registration:
    (found,) = [r for r in prod.of_type(typ) if r.name.endswith(f"deploy-agent-{suffix}")]
    return found


def test_an_upgrade_launches_the_new_host_before_the_old_one_goes(prod: PlanResult) -> None:
    group = one(prod, "aws:autoscaling/group:Group", "hosts")
    healthy = {"minHealthyPercentage": 100, "maxHealthyPercentage": 200}
    assert {k: group.get(f"instanceRefresh.preferences.{k}") for k in healthy} == healthy
    assert group.get("instanceMaintenancePolicy") == healthy  # health replacements too
    assert group.get("maxSize") == 2 * group.get("desiredCapacity") == 2 * group.get("minSize")
    hooks = {h["lifecycleTransition"]: h for h in group.get("initialLifecycleHooks")}
    launching = hooks["autoscaling:EC2_INSTANCE_LAUNCHING"]
    terminating = hooks["autoscaling:EC2_INSTANCE_TERMINATING"]
    assert (launching["name"], launching["defaultResult"]) == (agent.LAUNCH_HOOK, "ABANDON")
    assert (terminating["name"], terminating["defaultResult"]) == (agent.TERMINATION_HOOK, "CONTINUE")
    # The first `up` waits longer than the launch hook may hold a host.
    assert int(group.get("waitForCapacityTimeout").rstrip("s")) > launching["heartbeatTimeout"]


def test_the_hooks_change_in_place_and_never_replace_the_fixed_name_group(prod: PlanResult) -> None:
    """terraform-provider-aws internal/service/autoscaling/group.go: `initial_lifecycle_hook` is
    ForceNew and Read never sets it, so a hook change (or a group made before the hooks) would replace
    the group, whose name is fixed: AlreadyExists, or a delete waiting on the run itself. The group
    ignores its initial hooks after creation; a LifecycleHook per hook (PutLifecycleHook, an
    in-place create-or-update) owns them, same values, on the same group."""
    group = one(prod, "aws:autoscaling/group:Group", "hosts")
    assert "initialLifecycleHooks" in group.ignore_changes
    managed = {
        r.get("name"): r
        for r in prod.of_type("aws:autoscaling/lifecycleHook:LifecycleHook")
        if r.parent == group.parent
    }
    assert set(managed) == {agent.LAUNCH_HOOK, agent.TERMINATION_HOOK}
    for initial in group.get("initialLifecycleHooks"):
        hook = managed[initial["name"]]
        assert hook.get("autoscalingGroupName") == group.get("name")
        assert {k: hook.get(k) for k in ("lifecycleTransition", "heartbeatTimeout", "defaultResult")} == {
            k: initial[k] for k in ("lifecycleTransition", "heartbeatTimeout", "defaultResult")
        }


def test_the_boot_script_completes_the_hooks_of_its_own_group(prod: PlanResult) -> None:
    group = one(prod, "aws:autoscaling/group:Group", "hosts")
    policy = one(prod, "aws:iam/rolePolicy:RolePolicy", "host")
    (statement,) = [
        s for s in json.loads(policy.get("policy"))["Statement"] if s["Sid"] == "ItsOwnGroupsLifecycle"
    ]
    assert sorted(statement["Action"]) == [
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:SetInstanceHealth",
    ]
    assert statement["Resource"] == (
        f"arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:*:autoScalingGroupName/{group.get('name')}"
    )
    script = agent.user_data("eu-west-1", "p/deploy-agent-token", "v2.2.0", group.get("name"))
    assert f"GROUP='{group.get('name')}'" in script


def test_the_hosts_are_amd64_with_a_priced_instance_type(prod: PlanResult) -> None:
    template = one(prod, "aws:ec2/launchTemplate:LaunchTemplate", "lt")
    assert template.get("imageId") == (
        "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    )
    instance_type = template.get("instanceType")
    assert instance_architecture(instance_type) == "x86_64"
    regions = yaml.safe_load((PLATFORM_DIR / "prices.yaml").read_text())["regions"]
    region = prod.one("pulumi:providers:aws").get("region")
    # A sourced price in the stack's region (the cost estimate's input), for an amd64 type.
    assert regions[region]["instances"][instance_type]["arch"] == "amd64"


@pytest.mark.parametrize("instance_type", ["t4g.medium", "m7g.large"])
def test_graviton_agent_hosts_are_refused(instance_type: str) -> None:
    raw, _ = stack_config("prod")
    deployments = json.loads(raw[f"{PROJECT}:deployments"])
    deployments["agent"] = {**deployments.get("agent", {}), "instanceType": instance_type}
    raw[f"{PROJECT}:deployments"] = json.dumps(deployments)
    with pytest.raises(ConfigError) as err:
        validate(raw, PROJECT, "prod", "Pulumi.prod.yaml")
    (issue,) = err.value.issues
    assert issue.key == f"{PROJECT}:deployments.agent.instanceType" and "linux/amd64 only" in issue.message


def test_the_component_refuses_another_architecture() -> None:
    with pytest.raises(ValueError, match="runs its jobs on amd64 only"):
        agent.DeployAgent("x", agent.DeployAgentArgs(**{**_ARGS, "architecture": "arm64"}))


def test_every_placeholder_is_filled_and_none_can_break_out_of_its_quotes() -> None:
    script = agent.user_data("eu-west-1", "arn:aws:secretsmanager:x", "v2.2.0", "group")
    assert "@@" not in script and "VERSION='v2.2.0'" in script
    with pytest.raises(ValueError, match="SECRET_ID="):
        agent.user_data("eu-west-1", "arn'; rm -rf /", "v2.2.0", "group")
    with pytest.raises(ValueError, match="GROUP='' must be set"):
        agent.user_data("eu-west-1", "arn:aws:secretsmanager:x", "v2.2.0", "")


_ARGS: dict[str, Any] = {
    "identity": None,
    "permissions_boundary": None,
    "private_subnet_ids": [],
    "vpc_id": "vpc",
    "token_secret_name": "p/deploy-agent-token",
    "cluster_security_group_id": "sg",
    "instance_type": "t4g.medium",
    "architecture": "amd64",
    "hosts": 1,
    "version": "v2.2.0",
    "prefix": "p",
}
