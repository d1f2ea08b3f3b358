"""Pulumi Deployments agents inside the stack's VPC, so deployments reach a private API endpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import clip, document, service_trust
from components.identity import AwsIdentity

IMAGE = "pulumi/customer-managed-workflow-agent"
# Where the agent and the workflow containers it starts share job files (same path on both sides).
WORK_DIR = "/var/lib/pulumi-agent"
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"


@dataclass(frozen=True, kw_only=True)
class DeployAgentArgs:
    identity: AwsIdentity
    private_subnet_ids: pulumi.Input[list[str]]
    vpc_id: pulumi.Input[str]
    # The Secrets Manager secret holding the agent pool's token: written by the identity project
    # (components/deployments.py, agent_token_secret_name), which owns the pool.
    token_secret_name: str
    cluster_security_group_id: pulumi.Input[str]
    instance_type: str
    architecture: str
    hosts: int
    version: str
    prefix: str


def user_data(region: str, secret_arn: str, version: str) -> str:
    """Boot script: Docker, the token from Secrets Manager, the agent as a restarting container.

    Follows pulumi/customer-managed-workflow-agent at v2.2.0: the agent reads PULUMI_AGENT_TOKEN
    (`kubernetes/agent.ts`), starts one container per job through the Docker socket (the default
    `docker` target), and shares job files through PULUMI_AGENT_SHARED_VOLUME_DIRECTORY
    (`kubernetes-dind/agent.ts`); images are `<tag>` multi-arch manifests (`.goreleaser.yaml`).
    """
    return f"""#!/bin/bash
set -euo pipefail
dnf install -y docker
systemctl enable --now docker
install -d -m 0700 {WORK_DIR}
umask 077
printf 'PULUMI_AGENT_TOKEN=%s\\n' "$(aws secretsmanager get-secret-value --region {region} \\
  --secret-id {secret_arn} --query SecretString --output text)" > /root/pulumi-agent.env
docker run -d --name pulumi-agent --restart unless-stopped \\
  --env-file /root/pulumi-agent.env \\
  -e PULUMI_AGENT_SHARED_VOLUME_DIRECTORY={WORK_DIR} \\
  -v /var/run/docker.sock:/var/run/docker.sock -v {WORK_DIR}:{WORK_DIR} \\
  {IMAGE}:{version}
"""


class DeployAgent(pulumi.ComponentResource):
    """Hosts of the stack's Pulumi Deployments agent pool, in its private subnets.

    Guarantees: the pool token lives only in Secrets Manager (written there by the identity project,
    which owns the pool) and is read by the host at boot, never in user data, plain inputs or this
    stack's state; the instance role can read that one secret
    and nothing else (the deployments themselves assume the deploy role through Pulumi's OIDC);
    IMDSv2 with hop limit 1, so job containers cannot borrow the host's role; encrypted gp3
    volumes; no public IP, no SSH key and no inbound rule: the agent polls Pulumi Cloud over
    HTTPS through the NAT gateways. The cluster security group admits the agents on 443, the
    only path to the private API endpoint. It does not scale with demand: each host runs one
    deployment at a time.
    """

    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DeployAgentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:agent:DeployAgent", name, None, opts)
        ident = args.identity
        child = pulumi.ResourceOptions(parent=self)

        # The secret's ARN ends in six random characters (Secrets Manager): match them.
        token_arn = ident.arn("secretsmanager", f"secret:{args.token_secret_name}-??????")
        role = aws.iam.Role(
            f"{name}-host",
            name=clip(f"{name}-host"),
            assume_role_policy=service_trust("ec2.amazonaws.com"),
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
            image_id=f"resolve:ssm:{AMI_PARAMETER.format(arch=args.architecture)}",
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
                user_data(ident.region, args.token_secret_name, args.version).encode()
            ).decode(),
            opts=child,
        )
        aws.autoscaling.Group(
            f"{name}-hosts",
            name=clip(f"{name}-hosts", 255),
            vpc_zone_identifiers=args.private_subnet_ids,
            min_size=args.hosts,
            max_size=args.hosts,
            desired_capacity=args.hosts,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            # A new template version (agent upgrade) replaces hosts one at a time.
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(min_healthy_percentage=0),
            ),
            tags=[aws.autoscaling.GroupTagArgs(key="Name", value=f"{name}-host", propagate_at_launch=True)],
            opts=child,
        )

        self.security_group_id = group.id
        self.register_outputs({"security_group_id": self.security_group_id})
