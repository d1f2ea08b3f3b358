"""The integration run's helpers, offline: the leak search against moto (real boto3 calls served
in-process), the cleanup order against a fake Automation API stack, and UTC handling."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError, create_command_error

from tools.cleanup_stacks import as_utc, clean_all, plain_console, stale
from tools.leak_check import Leak, destroy_blockers, error_lines, find_leaks

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
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
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
        ("Karpenter instance", instance["InstanceId"]),
        ("log group", f"/aws/eks/{CLUSTER}/cluster"),
        ("ECR repository", f"{CLUSTER}/catalog"),
    }
    details = {leak.id: leak.detail for leak in leaks}
    assert "PVC prometheus-db" in details[by_cluster] and "50 GiB" in details[by_cluster]
    assert details[instance["InstanceId"]] == "running, NodePool default"
    assert details[f"{CLUSTER}/catalog"] == "1 image(s)"


def test_terminated_instances_are_not_leaks(aws: boto3.Session) -> None:
    ec2 = aws.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
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
    assert {leak.id for leak in leaks} == {
        "EBS volumes",
        "EC2 instances",
        "CloudWatch log groups",
        "ECR repositories",
    }
    assert all("not authorized" in leak.detail or "denied" in leak.detail.lower() for leak in leaks), leaks


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
    last_update: dt.datetime | None = None
    update_in_progress: bool | None = False


def conflict() -> CommandError:
    # The exact text Pulumi Cloud returns for a locked stack; the SDK maps it to ConcurrentUpdateError.
    return create_command_error(
        CommandResult("", "error: [409] Conflict: Another update is currently in progress.\n", 255)
    )


@dataclass
class FakeStack:
    """A pulumi.automation.Stack stand-in: records calls, raises what the backend would."""

    name: str
    log: list[str]
    locked: bool = False
    destroy_error: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def cancel(self) -> None:
        self.log.append(f"{self.name}:cancel")
        self.locked = False

    def refresh(self, **kwargs: Any) -> None:
        self.log.append(f"{self.name}:refresh")
        self.calls.append(("refresh", kwargs))
        if self.locked:
            raise conflict()
        kwargs["on_output"]("[/] refreshed [bold]x[/bold]\n")

    def destroy(self, **kwargs: Any) -> None:
        self.log.append(f"{self.name}:destroy")
        self.calls.append(("destroy", kwargs))
        if self.destroy_error:
            raise create_command_error(CommandResult(self.destroy_error, "", 255))


def run_cleanup(stacks: dict[str, FakeStack], summaries: list[Summary], log: list[str]) -> Any:
    def select(name: str) -> FakeStack:
        if name not in stacks:
            raise create_command_error(CommandResult("", f"error: no stack named '{name}' found", 255))
        return stacks[name]

    def check(name: str, destroyed: bool) -> list[Leak]:
        log.append(f"{name}:check({'leaks' if destroyed else 'blockers'})")
        return [Leak("volume", "vol-1")] if name == "it-leaky" else []

    printed: list[str] = []
    outcomes = clean_all(summaries, select, lambda name: log.append(f"{name}:remove"), check, printed.append)
    return outcomes, printed


def test_a_locked_stack_is_cancelled_refreshed_destroyed_removed_and_checked() -> None:
    log: list[str] = []
    stacks = {"it-a": FakeStack("it-a", log, locked=True)}
    (outcome,), printed = run_cleanup(stacks, [Summary("it-a")], log)
    assert log == [
        "it-a:refresh",
        "it-a:cancel",
        "it-a:refresh",
        "it-a:destroy",
        "it-a:remove",
        "it-a:check(leaks)",
    ]
    assert outcome.ok and outcome.steps == ("refresh", "cancel", "refresh", "destroy", "remove")
    refresh = next(kwargs for call, kwargs in stacks["it-a"].calls if call == "refresh")
    assert refresh["clear_pending_creates"] is True and refresh["color"] == "never"
    assert printed == ["[/] refreshed [bold]x[/bold]\n"]


def test_a_stack_the_backend_reports_busy_is_cancelled_first() -> None:
    log: list[str] = []
    stacks = {"it-a": FakeStack("it-a", log, locked=True)}
    (outcome,), _ = run_cleanup(stacks, [Summary("it-a", update_in_progress=True)], log)
    assert log[:3] == ["it-a:cancel", "it-a:refresh", "it-a:destroy"] and outcome.ok


def test_one_stacks_failure_does_not_stop_the_others() -> None:
    log: list[str] = []
    blocked = "  aws:ec2:Vpc (net):\n    error: DependencyViolation: vpc-1 has dependencies\n"
    stacks = {
        "it-a": FakeStack("it-a", log, destroy_error=blocked),
        "it-c": FakeStack("it-c", log),
        "it-leaky": FakeStack("it-leaky", log),
    }
    summaries = [Summary("it-a"), Summary("it-b"), Summary("it-c"), Summary("it-leaky")]
    outcomes, _ = run_cleanup(stacks, summaries, log)
    by_name = {o.stack: o for o in outcomes}
    assert [o.stack for o in outcomes] == ["it-a", "it-b", "it-c", "it-leaky"]
    assert by_name["it-a"].error == ("error: DependencyViolation: vpc-1 has dependencies",)
    assert "it-a:remove" not in log and "it-a:check(blockers)" in log, "a failed destroy keeps the stack"
    assert "no stack named 'it-b' found" in by_name["it-b"].error[0]
    assert by_name["it-c"].ok and "it-c:remove" in log
    assert not by_name["it-leaky"].ok and by_name["it-leaky"].leaks == (Leak("volume", "vol-1"),)


def test_a_lock_that_survives_the_cancel_is_reported_not_retried_forever() -> None:
    log: list[str] = []

    class Stuck(FakeStack):
        def cancel(self) -> None:
            self.log.append(f"{self.name}:cancel")  # the lock stays

    (outcome,), _ = run_cleanup({"it-a": Stuck("it-a", log, locked=True)}, [Summary("it-a")], log)
    assert log.count("it-a:refresh") == 2 and "it-a:destroy" not in log
    assert "Another update is currently in progress" in outcome.error[0]


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
def test_stale_picks_old_and_unknown_it_stacks_only() -> None:
    # Here a naive 09:00 read as local time is 19:00 UTC the day before: a live run looks 17 h old.
    assert dt.datetime(2026, 11, 30, 9, 0).astimezone(dt.UTC).day == 29
    summaries = [
        Summary("it-recent", dt.datetime(2026, 11, 30, 9, 0)),  # 3 h ago: a live run
        Summary("it-old", dt.datetime(2026, 11, 30, 5, 0)),  # 7 h ago
        Summary("it-never"),
        Summary("dev", dt.datetime(2026, 11, 1)),
    ]
    assert [s.name for s in stale(summaries, NOW, 6)] == ["it-never", "it-old"]
    assert [s.name for s in stale(summaries, NOW, 0)] == ["it-never", "it-old", "it-recent"]


def test_pulumi_output_is_printed_verbatim() -> None:
    console = plain_console(record=True, width=200)
    console.print("[/] error: [409] Conflict [bold]", end="")
    assert console.export_text() == "[/] error: [409] Conflict [bold]"
