"""The integration run's helpers, offline: the leak search and its deletions against moto (real boto3
calls served in-process), the cleanup order against a fake Automation API stack, which stacks it
picks (from `pulumi stack ls --json` as the SDK parses it), pending creates, and UTC handling."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import yaml
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from pulumi.automation._cmd import CommandResult
from pulumi.automation._local_workspace import LocalWorkspace
from pulumi.automation.errors import CommandError, create_command_error

from model.records import PlanResult
from tools import cleanup_stacks as cleanup
from tools.cleanup_stacks import as_utc, clean_all, plain_console, stale
from tools.leak_check import KINDS, TYPE_KINDS, Leak, destroy_blockers, error_lines, find_leaks, kinds_of
from tools.leak_delete import DELETERS, Deleted, delete_leaks
from tools.mocks import ROOT

REGION = "eu-west-1"
STACK = "it-0000abcd"
CLUSTER = f"eks-platform-{STACK}"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def tag_spec(kind: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


####################################################################################################
# find_leaks: after a successful destroy


def test_a_clean_account_has_no_leaks(aws: boto3.Session) -> None:
    ec2 = aws.client("ec2")
    # Another stack's volume and an untagged one are not this stack's leaks.
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)
    ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=8,
        TagSpecifications=tag_spec("volume", {"kubernetes.io/cluster/eks-platform-dev": "owned"}),
    )
    aws.client("logs").create_log_group(logGroupName="/aws/eks/eks-platform-dev/cluster")
    aws.client("ecr").create_repository(repositoryName="eks-platform-dev/catalog")
    assert find_leaks(aws, "eks-platform", STACK) == []


def test_finds_pvc_volumes_by_either_tag_karpenter_instances_log_groups_and_images(
    aws: boto3.Session,
) -> None:
    ec2 = aws.client("ec2")
    by_cluster = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=50,
        TagSpecifications=tag_spec(
            "volume",
            {
                f"kubernetes.io/cluster/{CLUSTER}": "owned",
                "kubernetes.io/created-for/pvc/name": "prometheus-db",
            },
        ),
    )["VolumeId"]
    by_stack = ec2.create_volume(
        AvailabilityZone=f"{REGION}b",
        Size=10,
        TagSpecifications=tag_spec("volume", {"platform:stack": STACK}),
    )["VolumeId"]
    image = "ami-0123456789abcdef0"  # not validated (moto: MOTO_ENABLE_AMI_VALIDATION off)
    (instance,) = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=tag_spec(
            "instance", {f"kubernetes.io/cluster/{CLUSTER}": "owned", "karpenter.sh/nodepool": "default"}
        ),
    )["Instances"]
    aws.client("logs").create_log_group(logGroupName=f"/aws/eks/{CLUSTER}/cluster")
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName=f"{CLUSTER}/catalog")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    ecr.put_image(repositoryName=f"{CLUSTER}/catalog", imageManifest=json.dumps(manifest), imageTag="v1")

    leaks = find_leaks(aws, "eks-platform", STACK)

    assert leaks == sorted(leaks)
    assert {(leak.kind, leak.id) for leak in leaks} == {
        ("volume", by_cluster),
        ("volume", by_stack),
        ("instance", instance["InstanceId"]),
        ("log group", f"/aws/eks/{CLUSTER}/cluster"),
        ("ECR repository", f"{CLUSTER}/catalog"),
    }
    details = {leak.id: leak.detail for leak in leaks}
    assert "PVC prometheus-db" in details[by_cluster] and "50 GiB" in details[by_cluster]
    assert details[instance["InstanceId"]] == "running, Karpenter NodePool default"
    assert details[f"{CLUSTER}/catalog"] == "1 image(s)"


def test_terminated_instances_are_not_leaks(aws: boto3.Session) -> None:
    ec2 = aws.client("ec2")
    image = "ami-0123456789abcdef0"  # not validated (moto: MOTO_ENABLE_AMI_VALIDATION off)
    (instance,) = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=tag_spec("instance", {f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
    )["Instances"]
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    assert find_leaks(aws, "eks-platform", STACK) == []


@set_initial_no_auth_action_count(2)  # the two IAM calls below; every later call is authorised
def test_an_aws_error_is_reported_as_unchecked_not_as_clean(aws: boto3.Session) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="reader")
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    # A principal with no permissions: every search gets a real AccessDenied / UnauthorizedOperation.
    denied = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )
    leaks = find_leaks(denied, "eks-platform", STACK)
    assert {leak.kind for leak in leaks} == {"unchecked"}
    assert {leak.id for leak in leaks} == set(KINDS)
    # moto answers EKS with a signature error, the others with AccessDenied: an error, not "clean".
    assert all(leak.detail.startswith("An error occurred") for leak in leaks), leaks


####################################################################################################
# destroy_blockers: after a failed destroy


def test_a_failed_destroy_reports_the_vpc_and_what_is_left_in_it(aws: boto3.Session) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(
        CidrBlock="10.99.0.0/16", TagSpecifications=tag_spec("vpc", {"platform:stack": STACK})
    )["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="k8s-elb", Description="lb", VpcId=vpc)["GroupId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Description="ELB app/k8s-x", Groups=[group])
    other = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]

    blockers = destroy_blockers(aws, STACK)

    ids = {leak.id for leak in blockers}
    assert {vpc, group, eni["NetworkInterface"]["NetworkInterfaceId"]} <= ids
    assert other not in ids and not any("default" in leak.detail for leak in blockers)
    assert destroy_blockers(aws, "it-ffffffff") == []


def test_error_lines_keep_what_blocked_pulumi_once_each() -> None:
    output = (
        "Destroying (it-1)\n"
        "  aws:ec2:Vpc (net):\n"
        "    error: deleting EC2 VPC (vpc-1): DependencyViolation: has dependencies\n"
        "error: update failed\n"
        "    error: deleting EC2 VPC (vpc-1): DependencyViolation: has dependencies\n"
    )
    assert error_lines(output) == [
        "error: deleting EC2 VPC (vpc-1): DependencyViolation: has dependencies",
        "error: update failed",
    ]
    assert error_lines("Destroying (it-1)\nResources: 3 deleted\n") == []


####################################################################################################
# The cleanup: which stacks, in which order, with cancel/refresh/destroy and isolation per stack


@dataclass
class Summary:
    name: str
    last_update: dt.datetime | None = dt.datetime(2026, 11, 30, 1, 0)
    update_in_progress: bool | None = False


def conflict() -> CommandError:
    # The exact text Pulumi Cloud returns for a locked stack; the SDK maps it to ConcurrentUpdateError.
    return create_command_error(
        CommandResult("", "error: [409] Conflict: Another update is currently in progress.\n", 255)
    )


def state(*pending: tuple[str, str], ids: tuple[str, ...] = (), kubeconfig: Any = "kube") -> dict[str, Any]:
    """A `pulumi stack export --show-secrets` document (DeploymentV3: snake_case keys)."""
    stack = {"type": "pulumi:pulumi:Stack", "urn": "urn:stack", "outputs": {"kubeconfig": kubeconfig}}
    return {
        "version": 3,
        "deployment": {
            "resources": [stack, *({"type": "aws:x", "urn": f"urn:{i}", "id": i} for i in ids)],
            "pending_operations": [
                {"type": "creating", "resource": {"urn": u, "type": t}} for u, t in pending
            ],
        },
    }


@dataclass
class FakeStack:
    """A pulumi.automation.Stack stand-in: records calls, raises what the backend would."""

    name: str
    log: list[str]
    locked: bool = False
    destroy_errors: list[str] = field(default_factory=list)
    exported: dict[str, Any] = field(default_factory=state)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    region: str | None = "eu-west-1"  # its config's aws:region

    def get_config(self, key: str) -> Any:
        if key != "aws:region" or self.region is None:
            raise create_command_error(CommandResult("", f"error: configuration key '{key}' not found", 255))
        return type("ConfigValue", (), {"value": self.region, "secret": False})()

    def cancel(self) -> None:
        self.log.append(f"{self.name}:cancel")
        self.locked = False

    def export_stack(self) -> Any:
        return type("Deployment", (), {"deployment": self.exported})()

    def refresh(self, **kwargs: Any) -> None:
        self.log.append(f"{self.name}:refresh")
        self.calls.append(("refresh", kwargs))
        if self.locked:
            raise conflict()
        kwargs["on_output"]("[/] refreshed [bold]x[/bold]\n")

    def destroy(self, **kwargs: Any) -> None:
        self.log.append(f"{self.name}:destroy")
        self.calls.append(("destroy", kwargs))
        if self.destroy_errors:
            raise create_command_error(CommandResult(self.destroy_errors.pop(0), "", 255))


@dataclass
class FakeAccount:
    """The cluster and AWS side: what each stack holds (`held`), deleting what `stuck` does not name."""

    log: list[str]
    held: dict[str, list[Leak]] = field(default_factory=dict)
    stuck: set[str] = field(default_factory=set)

    def prepare(self, stack: str, kubeconfig: str | None) -> list[str]:
        self.log.append(f"{stack}:kubernetes({kubeconfig})")
        return [f"deleted the test's objects in {stack}"]

    def find(self, stack: str, kinds: Any = None) -> list[Leak]:
        self.log.append(f"{stack}:find" + (f"({','.join(sorted(kinds))})" if kinds is not None else ""))
        return [x for x in self.held.get(stack, []) if kinds is None or x.kind in kinds]

    def delete(self, leaks: Any) -> list[Deleted]:
        done = []
        for leak in leaks:
            self.log.append(f"delete {leak.id}")
            if leak.id in self.stuck:
                done.append(Deleted(leak, "DependencyViolation"))
            else:
                done.append(Deleted(leak))
                for held in self.held.values():
                    if leak in held:
                        held.remove(leak)
        return done


def run_cleanup(
    stacks: dict[str, FakeStack],
    summaries: list[Summary],
    log: list[str],
    account: FakeAccount | None = None,
    fallback_region: str | None = None,
) -> Any:
    def select(name: str) -> FakeStack:
        if name not in stacks:
            raise create_command_error(CommandResult("", f"error: no stack named '{name}' found", 255))
        return stacks[name]

    printed: list[str] = []
    account = account or FakeAccount(log)

    def in_region(region: str) -> FakeAccount:
        log.append(f"account({region})")
        return account

    outcomes = clean_all(
        summaries,
        select,
        lambda name: log.append(f"{name}:remove"),
        in_region,
        printed.append,
        fallback_region=fallback_region,
    )
    return outcomes, printed


def ops(log: list[str]) -> list[str]:
    """The Pulumi and AWS steps of the log (not the searches)."""
    return [line for line in log if ":find" not in line and not line.startswith("account(")]


def test_a_locked_stack_is_cancelled_refreshed_destroyed_checked_and_removed() -> None:
    log: list[str] = []
    stacks = {"it-a": FakeStack("it-a", log, locked=True)}
    (outcome,), printed = run_cleanup(stacks, [Summary("it-a")], log)
    assert log == [
        "account(eu-west-1)",
        "it-a:kubernetes(kube)",
        "it-a:refresh",
        "it-a:cancel",
        "it-a:refresh",
        "it-a:destroy",
        "it-a:find",
        "it-a:remove",
    ]
    assert outcome.ok
    assert outcome.steps == ("kubernetes", "refresh", "cancel", "refresh", "destroy", "leak check", "remove")
    refresh = next(kwargs for call, kwargs in stacks["it-a"].calls if call == "refresh")
    assert refresh["clear_pending_creates"] is False, "nothing pending: nothing to clear"
    assert refresh["color"] == "never"
    assert printed == ["[/] refreshed [bold]x[/bold]\n"]


def test_a_stack_the_backend_reports_busy_is_cancelled_first() -> None:
    log: list[str] = []
    stacks = {"it-a": FakeStack("it-a", log, locked=True)}
    (outcome,), _ = run_cleanup(stacks, [Summary("it-a", update_in_progress=True)], log)
    assert (
        ops(log)[:4] == ["it-a:cancel", "it-a:kubernetes(kube)", "it-a:refresh", "it-a:destroy"]
        and outcome.ok
    )


def test_one_stacks_failure_does_not_stop_the_others() -> None:
    log: list[str] = []
    blocked = "  aws:ec2:Vpc (net):\n    error: DependencyViolation: vpc-1 has dependencies\n"
    stacks = {
        "it-a": FakeStack("it-a", log, destroy_errors=[blocked]),
        "it-c": FakeStack("it-c", log),
    }
    summaries = [Summary("it-a"), Summary("it-b"), Summary("it-c")]
    outcomes, _ = run_cleanup(stacks, summaries, log)
    by_name = {o.stack: o for o in outcomes}
    assert [o.stack for o in outcomes] == ["it-a", "it-b", "it-c"]
    assert by_name["it-a"].error == ("error: DependencyViolation: vpc-1 has dependencies",)
    assert "it-a:remove" not in log, "a failed destroy keeps the stack"
    assert "no stack named 'it-b' found" in by_name["it-b"].error[0]
    assert by_name["it-c"].ok and "it-c:remove" in log


def test_a_lock_that_survives_the_cancel_is_reported_not_retried_forever() -> None:
    log: list[str] = []

    class Stuck(FakeStack):
        def cancel(self) -> None:
            self.log.append(f"{self.name}:cancel")  # the lock stays

    (outcome,), _ = run_cleanup({"it-a": Stuck("it-a", log, locked=True)}, [Summary("it-a")], log)
    assert log.count("it-a:refresh") == 2 and "it-a:destroy" not in log
    assert "Another update is currently in progress" in outcome.error[0]


####################################################################################################
# Item 7: the leak check runs before `stack rm`; what it finds is deleted and said


def test_leaks_are_deleted_and_reported_before_the_stack_is_removed() -> None:
    log: list[str] = []
    volume = Leak("volume", "vol-1", "50 GiB, available, PVC prometheus-db")
    account = FakeAccount(log, held={"it-a": [volume]})
    (outcome,), _ = run_cleanup({"it-a": FakeStack("it-a", log)}, [Summary("it-a")], log, account)
    assert ops(log)[-2:] == ["delete vol-1", "it-a:remove"], "deleted before the stack goes"
    assert outcome.ok and outcome.report[-1] == f"deleted {volume} (left after the destroy)"


def test_a_leak_that_cannot_be_deleted_keeps_the_stack_for_the_next_run() -> None:
    log: list[str] = []
    volume = Leak("volume", "vol-1")
    account = FakeAccount(log, held={"it-a": [volume]}, stuck={"vol-1"})
    (outcome,), _ = run_cleanup({"it-a": FakeStack("it-a", log)}, [Summary("it-a")], log, account)
    assert "it-a:remove" not in log and not outcome.ok
    assert (
        outcome.leaks == (volume,)
        and "could not delete volume vol-1: DependencyViolation" in outcome.report[-1]
    )


def test_a_destroy_blocked_by_what_controllers_left_is_retried_after_deleting_it() -> None:
    log: list[str] = []
    eni = Leak("network interface", "eni-1", "available: aws-K8S-i-1")
    vpc = Leak("VPC", "vpc-1")  # Pulumi's own: the retried destroy deletes it, not the cleanup
    blocked = "    error: deleting EC2 VPC (vpc-1): DependencyViolation\n"
    stack = FakeStack("it-a", log, destroy_errors=[blocked], exported=state(ids=("vpc-1",)))
    account = FakeAccount(log, held={"it-a": [eni, vpc]})
    (outcome,), _ = run_cleanup({"it-a": stack}, [Summary("it-a")], log, account)
    assert ops(log)[-5:-1] == ["it-a:destroy", "delete eni-1", "it-a:destroy", "delete vpc-1"]
    assert "blocked the destroy: error: deleting EC2 VPC (vpc-1)" in outcome.report[2]


####################################################################################################
# Item 6: pending creates are found and deleted before they are cleared, never cleared blindly


NAT = (
    "urn:pulumi:it-a::eks-platform::awsx:ec2:Vpc$aws:ec2/natGateway:NatGateway::net-1",
    "aws:ec2/natGateway:NatGateway",
)


def test_a_pending_create_found_in_aws_is_deleted_then_cleared() -> None:
    log: list[str] = []
    orphan, known = Leak("NAT gateway", "nat-new"), Leak("NAT gateway", "nat-known")
    stack = FakeStack("it-a", log, exported=state(NAT, ids=("nat-known",)))
    account = FakeAccount(log, held={"it-a": [orphan, known]})
    (outcome,), _ = run_cleanup({"it-a": stack}, [Summary("it-a")], log, account)
    assert log[1:5] == ["it-a:kubernetes(kube)", "it-a:find(NAT gateway)", "delete nat-new", "it-a:refresh"]
    refresh = next(kwargs for call, kwargs in stack.calls if call == "refresh")
    assert refresh["clear_pending_creates"] is True
    assert outcome.report[2].startswith("deleted NAT gateway nat-new (created by the killed run")


def test_a_pending_create_of_an_unknown_type_stops_the_stack_before_anything_is_cleared() -> None:
    log: list[str] = []
    pending = ("urn:pulumi:it-a::eks-platform::aws:rds/instance:Instance::db", "aws:rds/instance:Instance")
    stack = FakeStack("it-a", log, exported=state(pending))
    (outcome,), _ = run_cleanup({"it-a": stack}, [Summary("it-a")], log)
    assert "it-a:refresh" not in log and "it-a:destroy" not in log
    assert outcome.error == (
        f"pending create {pending[0]} (aws:rds/instance:Instance): no search for this type",
    )


def test_a_pending_create_that_cannot_be_deleted_is_not_cleared() -> None:
    log: list[str] = []
    account = FakeAccount(log, held={"it-a": [Leak("NAT gateway", "nat-new")]}, stuck={"nat-new"})
    stack = FakeStack("it-a", log, exported=state(NAT))
    (outcome,), _ = run_cleanup({"it-a": stack}, [Summary("it-a")], log, account)
    assert "it-a:refresh" not in log and "could not delete NAT gateway nat-new" in outcome.error[0]


def test_a_pending_kubernetes_object_or_part_is_cleared_with_nothing_to_delete() -> None:
    pending = [
        cleanup.PendingCreate("urn:a", "kubernetes:core/v1:Namespace"),
        cleanup.PendingCreate("urn:b", "aws:eks/addon:Addon"),  # goes with its cluster
    ]
    assert cleanup.resolve_pending(pending, [Leak("NAT gateway", "nat-1")], set()) == ([], [])


def test_pending_creates_outputs_and_ids_are_read_from_the_exported_state() -> None:
    secret = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "plaintext": '"apiVersion: v1"',
    }
    exported = state(NAT, ids=("vpc-1",), kubeconfig=secret)
    assert cleanup.pending_creates(exported) == [cleanup.PendingCreate(*NAT)]
    assert cleanup.known_ids(exported) == {"vpc-1"}
    assert cleanup.stack_output(exported, "kubeconfig") == "apiVersion: v1"


####################################################################################################
# Item 5: destroyable from any runner


def test_kubernetes_objects_of_an_unreachable_cluster_leave_the_state_and_refresh_comes_first() -> None:
    # pulumi-kubernetes provider.go: Configure reads the variable and compares it with "true";
    # Read and Delete then drop an unreachable cluster's object; a Helm release's Delete refuses
    # even so, its Read drops it: the refresh must run before the destroy.
    assert cleanup.DELETE_UNREACHABLE == {"PULUMI_K8S_DELETE_UNREACHABLE": "true"}
    options = cleanup.workspace_options()
    assert options.env_vars == cleanup.DELETE_UNREACHABLE and options.work_dir == str(ROOT)
    log: list[str] = []
    run_cleanup({"it-a": FakeStack("it-a", log)}, [Summary("it-a")], log)
    assert log.index("it-a:refresh") < log.index("it-a:destroy")


####################################################################################################
# Item 9: the test's own objects first, when the cluster answers


def _answers(*codes: int) -> tuple[list[list[str]], Any]:
    ran: list[list[str]] = []
    replies = iter(codes)

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        ran.append(cmd)
        code = next(replies)
        return subprocess.CompletedProcess(cmd, code, "", "" if code == 0 else "dial tcp: i/o timeout")

    return ran, run


def test_a_reachable_cluster_loses_the_tests_objects_and_their_nodeclaims() -> None:
    ran, run = _answers(0, 0, 0)
    assert cleanup.run_kube_cleanup("apiVersion: v1", run) == []
    probe, delete, wait = ran
    assert probe[-3:] == ["get", "--raw", "/readyz"]
    assert delete[4:6] == ["delete", ",".join(cleanup.IT_OBJECT_KINDS)]
    assert delete[7:9] == ["-l", cleanup.IT_OBJECT_LABEL] and "--all-namespaces" in delete
    assert "nodeclaims.karpenter.sh" in wait and f"karpenter.sh/nodepool={cleanup.IT_NODE_POOL}" in wait


def test_an_unreachable_cluster_is_said_and_left_to_the_state_and_the_leak_check() -> None:
    ran, run = _answers(1)
    (line,) = cleanup.run_kube_cleanup("apiVersion: v1", run)
    assert len(ran) == 1 and "cluster unreachable" in line and "i/o timeout" in line
    assert cleanup.run_kube_cleanup(None, run) == [
        "no kubeconfig in the state: no cluster to clean the test's objects from"
    ]


def test_it_cleanup_falls_back_to_the_region_the_tests_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    monkeypatch.setattr(cleanup, "missing_tools", lambda: ["stop here"])
    seen: dict[str, Any] = {}
    real = argparse.ArgumentParser.parse_args

    def spy(self: Any, args: Any = None, namespace: Any = None) -> Any:
        seen["args"] = real(self, args, namespace)
        return seen["args"]

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    assert cleanup.main([]) == 2 and seen["args"].region == "us-east-2"


def test_each_stack_is_searched_and_deleted_in_its_own_configured_region() -> None:
    # The machine runs in eu-west-1; a developer's stacks were made in eu-central-1 and us-east-2.
    log: list[str] = []
    leak = Leak("volume", "vol-1")
    stacks = {
        "it-a": FakeStack("it-a", log, region="eu-central-1"),
        "it-b": FakeStack("it-b", log, region="us-east-2"),
        "it-c": FakeStack("it-c", log, region=None),  # no aws:region: the fallback
    }
    account = FakeAccount(log, held={"it-a": [leak]})
    summaries = [Summary("it-a"), Summary("it-b"), Summary("it-c")]
    outcomes = run_cleanup(stacks, summaries, log, account, fallback_region="eu-west-1")[0]
    assert [line for line in log if line.startswith("account(")] == [
        "account(eu-central-1)",
        "account(us-east-2)",
        "account(eu-west-1)",
    ]
    assert [o.report[0] for o in outcomes] == ["region eu-central-1", "region us-east-2", "region eu-west-1"]
    assert "delete vol-1" in log


def test_another_machine_finds_the_region_in_the_state_not_in_a_config_file_it_lacks() -> None:
    """Only the checkout that created a stack has its Pulumi.<stack>.yaml; the backend's state has
    the AWS provider with its region. A colleague's cleanup from eu-west-1 must search us-east-2."""
    log: list[str] = []
    provider = {"type": "pulumi:providers:aws", "urn": "urn:provider", "inputs": {"region": "us-east-2"}}
    exported = state()
    exported["deployment"]["resources"].append(provider)
    stacks = {"it-a": FakeStack("it-a", log, region=None, exported=exported)}
    (outcome,), _ = run_cleanup(stacks, [Summary("it-a")], log, FakeAccount(log), fallback_region="eu-west-1")
    assert outcome.report[0] == "region us-east-2"
    assert [line for line in log if line.startswith("account(")] == ["account(us-east-2)"]


def test_a_stack_without_a_region_anywhere_is_not_searched_blindly() -> None:
    log: list[str] = []
    (outcome,), _ = run_cleanup({"it-a": FakeStack("it-a", log, region=None)}, [Summary("it-a")], log)
    assert not outcome.ok and "no aws:region" in outcome.error[0] and log == []


####################################################################################################
# Time: lastUpdate is UTC, never local time


NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def test_naive_last_update_is_read_as_utc() -> None:
    naive = dt.datetime(2026, 11, 30, 9, 0)  # what the Automation API parses from "...T09:00:00.000Z"
    assert as_utc(naive) == dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert as_utc(dt.datetime(2026, 11, 30, 11, 0, tzinfo=plus_two)) == naive.replace(tzinfo=dt.UTC)
    assert as_utc(None) is None


@pytest.fixture
def east_of_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("east_of_utc")
def test_stale_picks_old_it_stacks_only_and_reads_times_as_utc() -> None:
    # Here a naive 09:00 read as local time is 19:00 UTC the day before: a live run looks 17 h old.
    assert dt.datetime(2026, 11, 30, 9, 0).astimezone(dt.UTC).day == 29
    summaries = [
        Summary("it-recent", dt.datetime(2026, 11, 30, 9, 0)),  # 3 h ago
        Summary("it-old", dt.datetime(2026, 11, 30, 5, 0)),  # 7 h ago
        Summary("it-running", None),  # no lastUpdate: an update in progress
        Summary("dev", dt.datetime(2026, 11, 1)),
    ]
    assert [s.name for s in stale(summaries, NOW, 6)] == ["it-old"]
    # No start tag: the last update must itself be older than any run, whatever --older-than says.
    assert [s.name for s in stale(summaries, NOW, 0)] == ["it-old"]


def hours_ago(hours: float) -> dt.datetime:
    return NOW - dt.timedelta(hours=hours)


def test_a_live_run_between_up_and_destroy_is_never_stale_whatever_older_than_says() -> None:
    # `up` ended 10 minutes ago, the checks run: nothing in progress, a recent last update.
    testing = Summary("it-live", hours_ago(1 / 6).replace(tzinfo=None))
    started = {"it-live": hours_ago(0.5)}
    assert stale([testing], NOW, 0, started=started) == []
    # The same stack once its run started longer ago than any run lasts: a dead run's stack.
    assert [s.name for s in stale([testing], NOW, 0, started={"it-live": hours_ago(5)})] == ["it-live"]
    # ... and --older-than still spares a stack touched recently.
    assert stale([testing], NOW, 6, started={"it-live": hours_ago(5)}) == []


def test_a_run_younger_than_any_run_is_never_cancelled() -> None:
    running = Summary("it-up", None, update_in_progress=True)
    assert stale([running], NOW, 0, started={"it-up": hours_ago(cleanup.MAX_RUN_HOURS - 0.1)}) == []
    assert stale([running], NOW, 0, started={"it-up": hours_ago(cleanup.MAX_RUN_HOURS)}) == [running]
    assert stale([running], NOW, 0) == [], "no start time: never cancelled"


def test_the_longest_run_the_workflow_allows_is_shorter_than_max_run_hours() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "integration.yml").read_text())
    (job,) = workflow["jobs"].values()
    assert job["timeout-minutes"] / 60 < cleanup.MAX_RUN_HOURS


def test_a_named_stack_is_cleaned_whatever_its_age_and_only_it() -> None:
    summaries = [Summary("acme/eks-platform/it-mine", None, True), Summary("it-other"), Summary("dev")]
    picked, unknown = cleanup.named(summaries, ["it-mine", "it-gone", "dev"])
    assert [s.name for s in picked] == ["acme/eks-platform/it-mine"]
    assert unknown == ["dev", "it-gone"]


def test_a_run_tags_its_start_and_whose_run_it_is() -> None:
    ci = {"GITHUB_RUN_ID": "42", "GITHUB_REPOSITORY": "acme/eks-platform"}
    tags = cleanup.run_tags(ci, NOW, "runner-1", "runner")
    assert tags == {
        cleanup.STARTED_TAG: "2026-11-30T12:00:00+00:00",
        cleanup.RUN_TAG: "github-actions acme/eks-platform run 42",
    }
    assert cleanup.parse_started(tags[cleanup.STARTED_TAG]) == NOW
    assert cleanup.run_tags({}, NOW, "laptop", "alice")[cleanup.RUN_TAG] == "alice@laptop"


def stack_ls(*rows: dict[str, Any]) -> list[Any]:
    """`LocalWorkspace.list_stacks()` parsing `pulumi stack ls --json` output (the SDK's own code)."""
    workspace = object.__new__(LocalWorkspace)

    def run(args: list[str], *_: Any) -> CommandResult:
        return CommandResult(json.dumps(list(rows)), "", 0)

    workspace._run_pulumi_cmd_sync = run  # type: ignore[method-assign,assignment]
    return workspace.list_stacks()


# The rows stack_list.go `formatStackSummariesJSON` writes: Pulumi Cloud sets updateInProgress and
# omits lastUpdate while an update runs; a finished one has both; a self-managed backend writes
# neither updateInProgress (no progress support) nor, before its first checkpoint, lastUpdate.
RUNNING = {"name": "it-live", "current": False, "updateInProgress": True, "resourceCount": 120}
FIRST_UP = {"name": "it-first", "current": False}
FINISHED = {
    "name": "it-done",
    "current": False,
    "updateInProgress": False,
    "lastUpdate": "2026-11-29T09:00:00.000Z",
    "resourceCount": 0,
}


def test_a_stack_whose_update_is_in_progress_is_never_stale_by_age() -> None:
    summaries = stack_ls(RUNNING, FIRST_UP, FINISHED)
    assert [s.name for s in stale(summaries, NOW, 0)] == ["it-done"]


def test_an_in_progress_stack_is_dead_once_its_start_is_older_than_any_run() -> None:
    summaries = stack_ls(RUNNING, FIRST_UP)
    started = {"it-live": NOW - dt.timedelta(hours=5), "it-first": NOW - dt.timedelta(hours=1)}
    assert [s.name for s in stale(summaries, NOW, 6, started=started)] == ["it-live"]
    assert cleanup.parse_started("2026-11-30T07:00:00+00:00") == NOW - dt.timedelta(hours=5)
    assert cleanup.parse_started("garbage") is None and cleanup.parse_started(None) is None


def test_a_stack_of_another_organisation_is_matched_by_its_short_name() -> None:
    summaries = stack_ls({**FINISHED, "name": "acme/eks-platform/it-done"}, {**FINISHED, "name": "acme/dev"})
    assert [s.name for s in stale(summaries, NOW, 6)] == ["acme/eks-platform/it-done"]


def test_pulumi_output_is_printed_verbatim() -> None:
    console = plain_console(record=True, width=200)
    console.print("[/] error: [409] Conflict [bold]", end="")
    assert console.export_text() == "[/] error: [409] Conflict [bold]"


####################################################################################################
# Item 6: the leak check covers every type the stacks create, and can delete each kind it finds


def test_every_resource_type_of_every_plan_is_covered_by_the_leak_check(plans: dict[str, PlanResult]) -> None:
    from tests.unit.test_integration_setup import planned, raw_config

    integration = planned(raw_config())
    for name, plan in [*plans.items(), (STACK, integration)]:
        _, unknown = kinds_of(r.type for r in plan.records)
        assert unknown == [], f"{name}: add these types to tools/leak_check.py TYPE_KINDS: {unknown}"
    named = {k for kinds in TYPE_KINDS.values() if isinstance(kinds, tuple) for k in kinds}
    assert named <= set(KINDS) and set(KINDS) <= set(DELETERS)


def test_a_new_aws_type_in_a_plan_is_reported_not_skipped() -> None:
    kinds, unknown = kinds_of(["aws:rds/instance:Instance", "kubernetes:core/v1:Pod", "aws:sqs/queue:Queue"])
    assert unknown == ["aws:rds/instance:Instance"] and "SQS queue" in kinds


def _json_policy() -> str:
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_every_kind_a_stack_leaves_is_found_by_its_tags_or_names_and_deleted(aws: boto3.Session) -> None:
    stack_tags = {"platform:stack": STACK}
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16", TagSpecifications=tag_spec("vpc", stack_tags))["Vpc"][
        "VpcId"
    ]
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.99.0.0/24", TagSpecifications=tag_spec("subnet", stack_tags)
    )["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc, TagSpecifications=tag_spec("route-table", stack_tags))
    ec2.associate_route_table(RouteTableId=table["RouteTable"]["RouteTableId"], SubnetId=subnet)
    gateway = ec2.create_internet_gateway(TagSpecifications=tag_spec("internet-gateway", stack_tags))
    ec2.attach_internet_gateway(InternetGatewayId=gateway["InternetGateway"]["InternetGatewayId"], VpcId=vpc)
    eip = ec2.allocate_address(Domain="vpc", TagSpecifications=tag_spec("elastic-ip", stack_tags))
    ec2.create_nat_gateway(
        SubnetId=subnet,
        AllocationId=eip["AllocationId"],
        TagSpecifications=tag_spec("natgateway", stack_tags),
    )
    ec2.create_security_group(
        GroupName="k8s", Description="x", VpcId=vpc, TagSpecifications=tag_spec("security-group", stack_tags)
    )
    cni = {"cluster.k8s.amazonaws.com/name": CLUSTER}
    ec2.create_network_interface(SubnetId=subnet, TagSpecifications=tag_spec("network-interface", cni))
    karpenter = {"karpenter.k8s.aws/cluster": CLUSTER}
    ec2.create_launch_template(
        LaunchTemplateName="k",
        LaunchTemplateData={},
        TagSpecifications=tag_spec("launch-template", karpenter),
    )
    ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=f"com.amazonaws.{REGION}.s3",
        VpcEndpointType="Gateway",
        TagSpecifications=tag_spec("vpc-endpoint", stack_tags),
    )
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, TagSpecifications=tag_spec("volume", stack_tags))
    iam = aws.client("iam")
    role = f"{CLUSTER}-karpenter-node"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=_json_policy())
    boundary = iam.create_policy(PolicyName=f"{CLUSTER}-boundary", PolicyDocument=_json_policy())["Policy"]
    iam.attach_role_policy(RoleName=role, PolicyArn=boundary["Arn"])
    iam.create_policy_version(PolicyArn=boundary["Arn"], PolicyDocument=_json_policy(), SetAsDefault=True)
    iam.create_instance_profile(InstanceProfileName=f"{CLUSTER}_1234")  # Karpenter's name for it
    iam.add_role_to_instance_profile(InstanceProfileName=f"{CLUSTER}_1234", RoleName=role)
    iam.create_role(RoleName=f"eks-platform-{STACK}0-other", AssumeRolePolicyDocument="{}")  # it-...abcd0
    iam.create_open_id_connect_provider(
        Url="https://oidc.eks.example/id/1",
        ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["a" * 40],
        Tags=[{"Key": "platform:stack", "Value": STACK}],
    )
    aws.client("kms").create_key(Tags=[{"TagKey": "platform:stack", "TagValue": STACK}])
    aws.client("logs").create_log_group(logGroupName=f"/aws/vpc/{CLUSTER}-network/flow-logs")
    aws.client("sqs").create_queue(QueueName=f"{CLUSTER}-karpenter-interruptions")
    events = aws.client("events")
    events.put_rule(Name=f"{CLUSTER}-karpenter-rebalance", EventPattern='{"source": ["aws.ec2"]}')
    events.put_targets(
        Rule=f"{CLUSTER}-karpenter-rebalance",
        Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:123456789012:q"}],
    )
    aws.client("secretsmanager").create_secret(Name=f"{CLUSTER}/grafana-admin", SecretString="{}")
    aws.client("ecr").create_repository(repositoryName=f"{CLUSTER}/{'it-hello'}")
    eks = aws.client("eks")
    role_arn = "arn:aws:iam::123456789012:role/x"
    eks.create_cluster(name=CLUSTER, roleArn=role_arn, resourcesVpcConfig={"subnetIds": [subnet]})
    eks.create_nodegroup(clusterName=CLUSTER, nodegroupName="system", subnets=[subnet], nodeRole=role_arn)

    leaks = find_leaks(aws, "eks-platform", STACK)

    found = {leak.kind for leak in leaks}
    expected = set(KINDS) - {"instance", "Auto Scaling group", "load balancer"}  # covered elsewhere / below
    assert expected <= found, expected - found
    assert f"eks-platform-{STACK}0-other" not in {leak.id for leak in leaks}, "another stack's role"
    done = delete_leaks(aws, leaks)
    assert [d.error for d in done if d.error] == []
    assert [d.leak.kind for d in done].index("EKS node group") < [d.leak.kind for d in done].index(
        "EKS cluster"
    )
    assert [d.leak.kind for d in done].index("NAT gateway") < [d.leak.kind for d in done].index("EIP")
    assert find_leaks(aws, "eks-platform", STACK) == []


def test_instances_and_their_groups_are_found_and_deleted(aws: boto3.Session) -> None:
    ec2 = aws.client("ec2")
    image = "ami-0123456789abcdef0"  # not validated (moto: MOTO_ENABLE_AMI_VALIDATION off)
    template = ec2.create_launch_template(LaunchTemplateName="ng", LaunchTemplateData={"ImageId": image})
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="eks-system-1",
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]},
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=[f"{REGION}a"],
        Tags=[{"Key": "eks:cluster-name", "Value": CLUSTER, "PropagateAtLaunch": False}],
    )
    ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=tag_spec("instance", {f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
    )
    leaks = find_leaks(aws, "eks-platform", STACK, kinds=["instance", "Auto Scaling group"])
    assert {leak.kind for leak in leaks} == {"instance", "Auto Scaling group"}
    assert all(d.error is None for d in delete_leaks(aws, leaks))
    assert find_leaks(aws, "eks-platform", STACK, kinds=["instance", "Auto Scaling group"]) == []


def test_a_load_balancer_of_the_cluster_is_found_and_deleted(aws: boto3.Session) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.99.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    elbv2 = aws.client("elbv2")
    tags = [{"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"}]
    elbv2.create_load_balancer(Name="k8s-svc", Subnets=subnets, Tags=tags)
    elbv2.create_load_balancer(Name="other", Subnets=subnets)
    (leak,) = find_leaks(aws, "eks-platform", STACK, kinds=["load balancer"])
    assert leak.kind == "load balancer" and "k8s-svc" in leak.id
    assert delete_leaks(aws, [leak]) == [Deleted(leak)]
    assert find_leaks(aws, "eks-platform", STACK, kinds=["load balancer"]) == []


####################################################################################################
# M3: EKS's cluster security group belongs to its cluster, never to a pending create


def test_a_pending_security_group_never_deletes_the_live_clusters_own_group() -> None:
    cluster = f"eks-platform-{STACK}"
    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        ec2 = session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

        def group(name: str, tags: dict[str, str]) -> str:
            spec = [
                {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
            return str(
                ec2.create_security_group(
                    GroupName=name, Description=name, VpcId=vpc, TagSpecifications=spec
                )["GroupId"]
            )

        owned = {f"kubernetes.io/cluster/{cluster}": "owned"}
        eks_group = group(f"eks-cluster-sg-{cluster}-1234", {**owned, "aws:eks:cluster-name": cluster})
        orphan = group(f"{cluster}-nodes", {"platform:stack": STACK})
        eks = session.client("eks")
        eks.create_cluster(name=cluster, roleArn="arn:aws:iam::123456789012:role/x", resourcesVpcConfig={})
        pending = [cleanup.PendingCreate("urn:sg", "aws:ec2/securityGroup:SecurityGroup")]
        found = find_leaks(session, "eks-platform", STACK, cleanup.pending_kinds(pending))
        delete, unresolved = cleanup.resolve_pending(pending, found, set())
        assert [leak.id for leak in delete] == [orphan] and unresolved == []
        # Once the cluster is gone, a group EKS left behind is a leak like any other.
        eks.delete_cluster(name=cluster)
        found = find_leaks(session, "eks-platform", STACK, {"security group"})
        assert {leak.id for leak in found} == {eks_group, orphan}
        assert "its cluster gone" in next(leak.detail for leak in found if leak.id == eks_group)
        # Deleted with its cluster earlier in the same batch: already gone is done, not a failure.
        ec2.delete_security_group(GroupId=eks_group)
        (done,) = delete_leaks(session, [Leak("security group", eks_group)])
        assert done.error is None


def test_a_pending_subnet_is_deleted_so_that_the_vpc_delete_can_succeed() -> None:
    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        ec2 = session.client("ec2")
        tags = tag_spec("vpc", {"platform:stack": STACK})
        vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16", TagSpecifications=tags)["Vpc"]["VpcId"]
        known = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock="10.99.1.0/24",
            TagSpecifications=tag_spec("subnet", {"platform:stack": STACK}),
        )
        orphan = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock="10.99.2.0/24",
            TagSpecifications=tag_spec("subnet", {"platform:stack": STACK}),
        )
        pending = [cleanup.PendingCreate("urn:subnet", "aws:ec2/subnet:Subnet")]
        assert cleanup.pending_kinds(pending) == {"subnet"}
        found = find_leaks(session, "eks-platform", STACK, cleanup.pending_kinds(pending))
        delete, unresolved = cleanup.resolve_pending(pending, found, {vpc, known["Subnet"]["SubnetId"]})
        assert [leak.id for leak in delete] == [orphan["Subnet"]["SubnetId"]] and unresolved == []
        assert [d.error for d in delete_leaks(session, delete)] == [None]
        ec2.delete_subnet(SubnetId=known["Subnet"]["SubnetId"])  # what the destroy deletes
        ec2.delete_vpc(VpcId=vpc)  # nothing left in it


def test_main_spares_a_live_run_and_cleans_a_dead_one_in_its_own_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`make it-cleanup ARGS='--older-than 0'` on a machine in eu-west-1, with a colleague's live run
    (between `up` and `destroy`) and a dead run made in us-east-2."""
    from pulumi import automation as auto

    now = dt.datetime.now(dt.UTC)
    log: list[str] = []
    summaries = [
        Summary("it-live", (now - dt.timedelta(minutes=10)).replace(tzinfo=None)),
        Summary("it-dead", (now - dt.timedelta(hours=5)).replace(tzinfo=None)),
    ]
    started = {"it-live": now - dt.timedelta(minutes=40), "it-dead": now - dt.timedelta(hours=6)}
    stacks = {"it-live": FakeStack("it-live", log), "it-dead": FakeStack("it-dead", log, region="us-east-2")}

    class Workspace:
        def __init__(self, **_: Any) -> None:
            pass

        def list_stacks(self) -> list[Summary]:
            return summaries

        def list_tags(self, name: str) -> dict[str, str]:
            return {cleanup.STARTED_TAG: started[name].isoformat()}

        def remove_stack(self, name: str) -> None:
            log.append(f"{name}:remove")

    def account(session: Any) -> FakeAccount:
        log.append(f"account({session.region_name})")
        return FakeAccount(log)

    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setattr(cleanup, "missing_tools", lambda: [])
    monkeypatch.setattr(cleanup, "AwsAccount", account)
    monkeypatch.setattr(auto, "LocalWorkspace", Workspace)
    monkeypatch.setattr(auto, "select_stack", lambda stack_name, **_: stacks[stack_name])
    assert cleanup.main(["--older-than", "0"]) == 0
    assert not [line for line in log if line.startswith("it-live")], "a live run is never touched"
    assert "account(us-east-2)" in log and "account(eu-west-1)" not in log
    assert "it-dead:destroy" in log and "it-dead:remove" in log
