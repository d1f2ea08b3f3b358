"""Pulumi Deployments agents inside the stack's VPC, so deployments reach a private API endpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.iam import clip, document, service_trust
from components.identity import AwsIdentity

# The agent runs from the release archive on the host (components/agent_host.sh).
INSTALL_DIR = "/opt/pulumi-agent"
HOST_SCRIPT = Path(__file__).with_name("agent_host.sh")
# Amazon Linux 2023 names its x86_64 AMI parameter `x86_64` (there is no `amd64` parameter).
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
# Only linux/amd64 runs jobs: the release's `workflow-runner-embeddable`, which the agent puts in
# each job's container, is built for linux/amd64 alone (.goreleaser.yaml at v2.2.0: goarch amd64,
# "Always include the linux-x64 binary, which is used by the docker container"), and Pulumi's EC2
# reference (agent-images/) runs an amd64 Ubuntu host.
ARCHITECTURE = "amd64"
LAUNCH_HOOK = "agent-running"
TERMINATION_HOOK = "agent-idle"
# Installing Docker and the agent takes a few minutes; a host not running it by then is abandoned.
LAUNCH_TIMEOUT_SECONDS = 600
# The drain sends a heartbeat every minute while a job runs; a silent host is let go after this.
DRAIN_HEARTBEAT_SECONDS = 900


@dataclass(frozen=True)
class Hook:
    name: str
    transition: str
    timeout: int
    default_result: str


# A launch the agent never confirms is abandoned; a termination goes on once the host is idle.
HOOKS = (
    Hook(LAUNCH_HOOK, "autoscaling:EC2_INSTANCE_LAUNCHING", LAUNCH_TIMEOUT_SECONDS, "ABANDON"),
    Hook(TERMINATION_HOOK, "autoscaling:EC2_INSTANCE_TERMINATING", DRAIN_HEARTBEAT_SECONDS, "CONTINUE"),
)


@dataclass(frozen=True, kw_only=True)
class DeployAgentArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    private_subnet_ids: pulumi.Input[list[str]]
    vpc_id: pulumi.Input[str]
    # The Secrets Manager secret holding the agent pool's token: written by the identity project
    # (components/deploy_roles.py, agent_token_secret_name), which owns the pool.
    token_secret_name: str
    cluster_security_group_id: pulumi.Input[str]
    instance_type: str
    # Must be ARCHITECTURE (config validation refuses Graviton types for the agents).
    architecture: str
    hosts: int
    version: str
    prefix: str


def user_data(region: str, secret_id: str, version: str, group: str, install_dir: str = INSTALL_DIR) -> str:
    """The host's boot script (components/agent_host.sh) for one release, secret and group.

    `secret_id`: the token secret's name (or ARN), which the script passes to `--secret-id`.

    Follows pulumi/customer-managed-workflow-agent at v2.2.0: agent-images/ (Pulumi's EC2
    reference: Docker, the release's agent binary under systemd, `customer-managed-workflow-agent
    run`, the token in `pulumi-workflow-agent.yaml` beside the binary), pulumi-workflow-agent.yaml.sample
    (its keys) and .goreleaser.yaml (the archive's name and contents, `checksums.txt`).
    """
    values = {
        "REGION": region,
        "SECRET_ID": secret_id,
        "VERSION": version,
        "GROUP": group,
        "LAUNCH_HOOK": LAUNCH_HOOK,
        "TERMINATION_HOOK": TERMINATION_HOOK,
        "INSTALL_DIR": install_dir,
    }
    script = HOST_SCRIPT.read_text(encoding="utf-8")
    for key, value in values.items():
        if not value or "'" in value:
            raise ValueError(f"agent host script: {key}={value!r} must be set and without a single quote")
        script = script.replace(f"@@{key}@@", value)
    if "@@" in script:
        raise ValueError(f"{HOST_SCRIPT.name} has a placeholder user_data() does not fill")
    return script


class DeployAgent(pulumi.ComponentResource):
    """Hosts of the stack's Pulumi Deployments agent pool, in its private subnets.

    Guarantees: the pool token lives only in Secrets Manager (written there by the identity project,
    which owns the pool) and is read by the host at boot, never in user data, plain inputs or this
    stack's state; the instance role can read that one secret
    and nothing else (the deployments themselves assume the deploy role through Pulumi's OIDC);
    IMDSv2 with hop limit 1, so job containers cannot borrow the host's role; encrypted gp3
    volumes; no public IP, no SSH key and no inbound rule: the agent polls Pulumi Cloud over
    HTTPS through the NAT gateways. The cluster security group admits the agents on 443, the
    only path to the private API endpoint.

    An agent keeps running through every replacement: a new launch template version (agent
    version, instance type) or an unhealthy host is replaced launch-first (healthy 100-200 %), a
    new host goes in service only once its agent runs (launch hook, completed by the boot script),
    and an old host goes only once its job has finished (termination hook, completed by the
    drain unit), so a push that upgrades the agents is not killed by its own change. A host whose
    agent keeps failing reports itself unhealthy and is replaced. It does not scale with demand:
    each host runs one deployment at a time.
    """

    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DeployAgentArgs, opts: pulumi.ResourceOptions | None = None):
        if args.architecture != ARCHITECTURE:  # before anything is registered
            raise ValueError(
                f"DeployAgentArgs.architecture={args.architecture!r}: the agent runs its jobs on "
                f"{ARCHITECTURE} only (choose an x86_64 instance type)"
            )
        super().__init__("platform:agent:DeployAgent", name, None, opts)
        ident = args.identity
        group_name = clip(f"{name}-hosts", 255)
        child = pulumi.ResourceOptions(parent=self)

        # The secret's ARN ends in six random characters (Secrets Manager): match them.
        token_arn = ident.arn("secretsmanager", f"secret:{args.token_secret_name}-??????")
        role = aws.iam.Role(
            f"{name}-host",
            name=clip(f"{name}-host"),
            assume_role_policy=service_trust("ec2.amazonaws.com"),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-host",
            role=role.id,
            policy=document(
                {
                    "Sid": "ReadThePoolToken",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": token_arn,
                },
                # The identity project's key (its ARN is not known here): only through Secrets
                # Manager, and only for this secret (Secrets Manager's encryption context names
                # the secret's ARN; Secrets Manager User Guide, "Secret encryption and decryption").
                {
                    "Sid": "DecryptThatSecretOnly",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": ident.arn("kms", "key/*"),
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{ident.region}.{ident.dns_suffix}"
                        },
                        "StringLike": {"kms:EncryptionContext:SecretARN": token_arn},
                    },
                },
                {
                    # The boot script and the drain complete this group's lifecycle hooks; a host
                    # whose agent keeps failing reports itself unhealthy.
                    "Sid": "ItsOwnGroupsLifecycle",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:CompleteLifecycleAction",
                        "autoscaling:RecordLifecycleActionHeartbeat",
                        "autoscaling:SetInstanceHealth",
                    ],
                    "Resource": ident.arn(
                        "autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{group_name}"
                    ),
                },
            ),
            opts=child,
        )
        profile = aws.iam.InstanceProfile(
            f"{name}-host", name=clip(f"{name}-host", 128), role=role.name, opts=child
        )

        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="Pulumi Deployments agents: no inbound; HTTPS out to Pulumi Cloud, registries, AWS",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr_blocks=["0.0.0.0/0"],
                    description="api.pulumi.com, Docker Hub, GitHub, AWS APIs, the EKS endpoint",
                )
            ],
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-to-eks-api",
            security_group_id=args.cluster_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Pulumi Deployments agents reach the private Kubernetes API endpoint",
            opts=child,
        )

        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"Pulumi Deployments agent {args.version}: IMDSv2 only, encrypted gp3, no SSH",
            update_default_version=True,
            image_id=f"resolve:ssm:{AMI_PARAMETER}",
            instance_type=args.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            network_interfaces=[
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    associate_public_ip_address="false",
                    security_groups=[group.id],
                    delete_on_termination="true",
                )
            ],
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=40, volume_type="gp3", encrypted="true", delete_on_termination="true"
                    ),
                )
            ],
            user_data=base64.b64encode(
                user_data(ident.region, args.token_secret_name, args.version, group_name).encode()
            ).decode(),
            opts=child,
        )
        # Launch before terminate, for an upgrade and for a health replacement alike: the group
        # keeps 100 % of its hosts in service and may run up to 200 % while replacing (AWS EC2 Auto
        # Scaling User Guide, "Instance maintenance policies"); max_size leaves that room, the
        # desired count stays `hosts`. The AWS provider starts a refresh and does not wait for it
        # (pulumi_aws 7.51.1 `GroupInstanceRefreshArgs`: "This resource does not wait for the instance
        # refresh to complete", and a refresh in progress is cancelled before a new one starts;
        # terraform-provider-aws internal/service/autoscaling/group.go `startInstanceRefresh`,
        # `cancelInstanceRefresh`; hashicorp/terraform-provider-aws#42355 is open), so the run that
        # starts it ends while the old host, the one running it, is still in service: the new host
        # comes first and the old one waits for `agent-idle` (docs/upgrades.md).
        hosts = aws.autoscaling.Group(
            f"{name}-hosts",
            name=group_name,
            vpc_zone_identifiers=args.private_subnet_ids,
            min_size=args.hosts,
            max_size=2 * args.hosts,
            desired_capacity=args.hosts,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            instance_maintenance_policy=aws.autoscaling.GroupInstanceMaintenancePolicyArgs(
                min_healthy_percentage=100, max_healthy_percentage=200
            ),
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=100, max_healthy_percentage=200, instance_warmup="60"
                ),
            ),
            # Hooks given at creation hold the very first hosts too (a separate LifecycleHook
            # resource comes after them). terraform-provider-aws (internal/service/autoscaling/
            # group.go) marks `initial_lifecycle_hook` ForceNew and never reads it back, so a change
            # to it, or a group created before it, would replace this fixed-name group (AlreadyExists,
            # or a delete that waits on the run doing it). The group ignores it after creation; the
            # LifecycleHook resources below own the hooks from then on.
            initial_lifecycle_hooks=[
                aws.autoscaling.GroupInitialLifecycleHookArgs(
                    name=hook.name,
                    lifecycle_transition=hook.transition,
                    heartbeat_timeout=hook.timeout,
                    default_result=hook.default_result,
                )
                for hook in HOOKS
            ],
            health_check_type="EC2",
            # The first `up` waits for hosts whose agent runs (the launch hook), up to its timeout.
            wait_for_capacity_timeout=f"{LAUNCH_TIMEOUT_SECONDS + 300}s",
            tags=[aws.autoscaling.GroupTagArgs(key="Name", value=f"{name}-host", propagate_at_launch=True)],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["initialLifecycleHooks"])
            ),
        )
        for hook in HOOKS:
            # PutLifecycleHook creates or updates in place (lifecycle_hook.go: Create and Update are
            # both resourceLifecycleHookPut): it adopts the initial hook of a new group, adds the
            # hooks to a group created without them, and changes a timeout without a replacement.
            aws.autoscaling.LifecycleHook(
                f"{name}-{hook.name}",
                name=hook.name,
                autoscaling_group_name=hosts.name,
                lifecycle_transition=hook.transition,
                heartbeat_timeout=hook.timeout,
                default_result=hook.default_result,
                opts=child,
            )

        self.security_group_id = group.id
        self.register_outputs({"security_group_id": self.security_group_id})
