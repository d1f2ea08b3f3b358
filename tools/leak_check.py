"""What AWS still holds for a stack after `pulumi destroy`, and what blocked a destroy that failed.

A *successful* destroy has deleted everything Pulumi created, VPC included; what can still be left
is what controllers created outside Pulumi's state:
- EBS volumes of PersistentVolumeClaims (Prometheus, Alertmanager, Grafana): the EBS CSI driver
  tags them `kubernetes.io/cluster/<cluster>: owned` because the add-on sets `k8sTagClusterId`,
  and with the stack's tags through `extraVolumeTags` (components/addons.py; aws-ebs-csi-driver
  `docs/tagging.md`). A volume is searched by either tag.
- EC2 instances Karpenter launched: its controller policy requires the request tags
  `kubernetes.io/cluster/<cluster>` and `eks:eks-cluster-name` on every launch
  (karpenter-provider-aws `controller-policy.json`, 1.14, in the shared reference set).
- CloudWatch log groups under `/aws/eks/<cluster>/`, which EKS recreates when the control plane
  still writes logs after Pulumi deleted the group.
- ECR repositories `<project>-<stack>/...` (and their images) that survived the destroy.

ENIs, security groups and load balancers are not leaks of a successful destroy: any of them keeps
the VPC from being deleted, so the destroy fails first. `destroy_blockers` lists what is still in
the stack's VPCs after such a failure. Uses boto3 only, so moto serves it in the unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped")
STACK_TAG = "platform:stack"
KARPENTER_POOL_TAG = "karpenter.sh/nodepool"


@dataclass(frozen=True, order=True)
class Leak:
    kind: str
    id: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.id}" + (f" ({self.detail})" if self.detail else "")


def _tags(item: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags", [])}


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    found: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        found += page.get(key, [])
    return found


def _checked(what: str, search: Callable[[], list[Leak]]) -> list[Leak]:
    """One search; an AWS error becomes an `unchecked` finding (nothing proven), never a crash."""
    try:
        return search()
    except (ClientError, BotoCoreError) as err:
        return [Leak("unchecked", what, str(err))]


def _volumes(ec2: Any, cluster: str, stack: str) -> list[Leak]:
    by_id: dict[str, dict[str, Any]] = {}
    for tag_filter in (
        {"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]},
        {"Name": f"tag:{STACK_TAG}", "Values": [stack]},
    ):
        for volume in _pages(ec2, "describe_volumes", "Volumes", Filters=[tag_filter]):
            by_id[volume["VolumeId"]] = volume
    leaks = []
    for volume_id, volume in by_id.items():
        claim = _tags(volume).get("kubernetes.io/created-for/pvc/name", "")
        detail = f"{volume['Size']} GiB, {volume['State']}" + (f", PVC {claim}" if claim else "")
        leaks.append(Leak("volume", volume_id, detail))
    return leaks


def _instances(ec2: Any, cluster: str) -> list[Leak]:
    filters = [
        {"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned", "shared"]},
        {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)},
    ]
    leaks = []
    for reservation in _pages(ec2, "describe_instances", "Reservations", Filters=filters):
        for instance in reservation["Instances"]:
            pool = _tags(instance).get(KARPENTER_POOL_TAG)
            kind = "Karpenter instance" if pool else "instance"
            detail = f"{instance['State']['Name']}" + (f", NodePool {pool}" if pool else "")
            leaks.append(Leak(kind, instance["InstanceId"], detail))
    return leaks


def _log_groups(logs: Any, cluster: str) -> list[Leak]:
    groups = _pages(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=f"/aws/eks/{cluster}/")
    return [Leak("log group", g["logGroupName"]) for g in groups]


def _repositories(ecr: Any, prefix: str) -> list[Leak]:
    leaks = []
    for repo in _pages(ecr, "describe_repositories", "repositories"):
        name = repo["repositoryName"]
        if name.startswith(f"{prefix}/"):
            images = _pages(ecr, "list_images", "imageIds", repositoryName=name)
            leaks.append(Leak("ECR repository", name, f"{len(images)} image(s)"))
    return leaks


def find_leaks(session: Any, project: str, stack: str) -> list[Leak]:
    """Everything AWS still holds for `<project>-<stack>` after a successful destroy, sorted."""
    prefix = cluster = f"{project}-{stack}"  # stacks.config: the cluster is named after the prefix
    ec2, logs, ecr = (session.client(s) for s in ("ec2", "logs", "ecr"))
    leaks = [
        *_checked("EBS volumes", lambda: _volumes(ec2, cluster, stack)),
        *_checked("EC2 instances", lambda: _instances(ec2, cluster)),
        *_checked("CloudWatch log groups", lambda: _log_groups(logs, cluster)),
        *_checked("ECR repositories", lambda: _repositories(ecr, prefix)),
    ]
    return sorted(set(leaks))


def _vpc_contents(ec2: Any, vpc_id: str) -> list[Leak]:
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    leaks = [
        Leak(
            "network interface",
            eni["NetworkInterfaceId"],
            f"{vpc_id}, {eni.get('InterfaceType', 'interface')}: {eni.get('Description') or '-'}",
        )
        for eni in _pages(ec2, "describe_network_interfaces", "NetworkInterfaces", Filters=in_vpc)
    ]
    leaks += [
        Leak("security group", sg["GroupId"], f"{vpc_id}, {sg['GroupName']}")
        for sg in _pages(ec2, "describe_security_groups", "SecurityGroups", Filters=in_vpc)
        if sg["GroupName"] != "default"
    ]
    return leaks


def destroy_blockers(session: Any, stack: str) -> list[Leak]:
    """After a failed destroy: the stack's VPCs still standing and what is left inside them."""
    ec2 = session.client("ec2")

    def search() -> list[Leak]:
        vpcs = _pages(ec2, "describe_vpcs", "Vpcs", Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [stack]}])
        leaks = [Leak("VPC", v["VpcId"], "still exists") for v in vpcs]
        for vpc in vpcs:
            leaks += _vpc_contents(ec2, vpc["VpcId"])
        return leaks

    return sorted(set(_checked("the stack's VPCs", search)))


def error_lines(output: str) -> list[str]:
    """The `error:` lines of Pulumi's output (what blocked an operation), in order, once each."""
    seen: dict[str, None] = {}
    for line in output.splitlines():
        text = line.strip()
        if "error:" in text:
            seen.setdefault(text[text.index("error:") :], None)
    return list(seen)
