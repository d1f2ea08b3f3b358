"""The EKS control plane, its encryption and logging, and the add-ons nodes need to join."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from components.addons import pinned_addon
from components.iam import document, irsa_trust, role_with_policies, service_trust
from components.identity import AwsIdentity

# Every control-plane log type EKS offers.
CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")

# The input pulumi-eks sets to `true` on the `aws:eks/cluster:Cluster` it creates, and ignores
# changes to (pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts, the `accessConfig` block of
# `new aws.eks.Cluster` and its `ignoreChanges`; platform/component-internals.yaml).
CREATOR_ADMIN = "accessConfig.bootstrapClusterCreatorAdminPermissions"


def creator_admin_off(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """A transform for the pulumi-eks Cluster: its EKS cluster grants the creating principal nothing.

    pulumi-eks always asks EKS for the creator's bootstrap admin access entry; the program grants every
    admin (adminRoleArns, the deploy role) an explicit access entry, and the first `up` runs as one of
    them, so EKS's own entry makes the program's fail with ResourceInUseException (409). With the
    bootstrap off, every admin entry is the program's, whoever applies the stack.

    The engine runs a component's transforms on the children a packaged component registers
    (pulumi/pulumi pkg/resource/deploy/source_eval.go, RegisterResource: `pendingTransforms` saved for a
    remote construct, then each child collects its parents' `resourceTransforms`). Keys are the
    engine's (camelCase). The field stays in `ignore_changes` (pulumi-eks puts it there; kept here
    in case it stops): terraform-provider-aws marks it ForceNew (internal/service/eks/cluster.go,
    `access_config`), so an existing cluster keeps its value instead of being replaced.
    """
    if args.type_ != "aws:eks/cluster:Cluster":
        return None
    props = dict(args.props)
    access = props.get("accessConfig")
    if not isinstance(access, Mapping):
        # pulumi-eks sends a literal object whenever authenticationMode is set (always, here).
        raise ValueError(
            f"{args.name}: expected pulumi-eks to send accessConfig as an object, got {access!r}"
        )
    props["accessConfig"] = {**access, "bootstrapClusterCreatorAdminPermissions": False}
    opts = args.opts
    if CREATOR_ADMIN not in (opts.ignore_changes or []):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=[CREATOR_ADMIN]))
    return pulumi.ResourceTransformResult(props, opts)


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    cluster_name: str
    kubernetes_version: str
    upgrade_support_type: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    service_cidr: str
    endpoint_public_access: bool
    public_access_cidrs: tuple[str, ...]
    admin_role_arns: tuple[str, ...]
    # The deploying identity (Pulumi Deployments' role): cluster admin, and the role the
    # kubeconfig assumes, so every run reaches Kubernetes as it. None: ambient credentials.
    deploy_role_arn: pulumi.Input[str] | None
    key_arn: pulumi.Input[str]
    log_retention_days: int
    # Whether the control-plane log group already exists in the account (identity.log_group_exists).
    existing_log_group: bool
    addon_versions: dict[str, str]
    # Free IPs the VPC CNI keeps per node (and at least this many) instead of a whole spare /28;
    # the stack's IP-capacity check counts with the same numbers (stacks/scaling.py).
    warm_ip_target: int
    minimum_ip_target: int
    protect: bool
    tags: dict[str, str]


class Cluster(pulumi.ComponentResource):
    """An EKS cluster whose defaults are security controls.

    Guarantees: Kubernetes secrets envelope-encrypted with the platform's KMS key; all five
    control-plane log types into a log group this component owns (KMS, retention, protected and
    kept after a destroy in prod, adopted by the next stack of the same name) and creates before
    the cluster, so it is never unbounded; private endpoint always on, public only for listed
    CIDRs; API authentication with access entries for the admin roles only; STANDARD upgrade
    support unless config says EXTENDED; deletion protection and `protect` in prod; an IAM OIDC
    provider for IRSA and the Pod Identity agent; the VPC CNI as a pinned managed add-on with
    prefix delegation, network policy and its own IRSA role (so nodes carry no CNI permissions);
    kube-proxy pinned. It creates no nodes: the default node group is off, and CoreDNS/EBS CSI
    come after the system nodes (ClusterAddons).
    """

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig_json: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:cluster:Cluster", name, None, opts)
        ident = args.identity
        child = pulumi.ResourceOptions(parent=self)

        role, cluster_policies = role_with_policies(
            f"{name}-control-plane",
            service_trust("eks.amazonaws.com", tag_session=True),
            ident.partition,
            ["AmazonEKSClusterPolicy"],
            parent=self,
            permissions_boundary=args.permissions_boundary,
        )
        key_policy = aws.iam.RolePolicy(
            f"{name}-control-plane-kms",
            role=role.id,
            policy=pulumi.Output.from_input(args.key_arn).apply(
                lambda arn: document(
                    {
                        "Effect": "Allow",
                        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                        "Resource": arn,
                    }
                )
            ),
            opts=child,
        )
        log_group_name = f"/aws/eks/{args.cluster_name}/cluster"
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            # EKS writes to exactly this name; owning it bounds retention and encrypts it.
            name=log_group_name,
            retention_in_days=args.log_retention_days,
            kms_key_id=args.key_arn,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                # Prod: a destroy leaves the group (its audit trail); the next stack of the same
                # name adopts it through `import_` below (docs/retiring-a-stack.md).
                retain_on_delete=args.protect,
                # EKS recreates this group with its service role after a destroy deletes it
                # (github.com/terraform-aws-modules/terraform-aws-eks/issues/2446 and /2763: a Deny
                # on logs:CreateLogGroup does not stop it), so the next create would fail with
                # ResourceAlreadyExistsException. Adopt it
                # instead: `import` takes over an existing group and then applies retention and
                # KMS (pulumi/pulumi developer-docs/architecture/import.md: same ID in state is a
                # normal update).
                import_=log_group_name if args.existing_log_group else None,
            ),
        )

        admin_policy = f"arn:{ident.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        cluster = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=args.upgrade_support_type),
            deletion_protection=args.protect,
            service_role=role,
            vpc_id=args.vpc_id,
            # Control-plane ENIs live in the private subnets only; load balancers find the
            # public subnets by their `kubernetes.io/role/elb` tag.
            private_subnet_ids=args.private_subnet_ids,
            node_associate_public_ip_address=False,
            kubernetes_service_ip_address_range=args.service_cidr,
            endpoint_private_access=True,
            endpoint_public_access=args.endpoint_public_access,
            public_access_cidrs=list(args.public_access_cidrs) or None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries={
                # Keyed by role name (not position) so reordering the list replaces nothing.
                f"admin-{arn.split(':role/')[1].replace('/', '-')}": eks.AccessEntryArgs(
                    principal_arn=arn,
                    type=eks.AccessEntryType.STANDARD,
                    access_policies={
                        "cluster-admin": eks.AccessPolicyAssociationArgs(
                            policy_arn=admin_policy,
                            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                        )
                    },
                )
                for arn in args.admin_role_arns
            }
            | (
                {
                    "deploy": eks.AccessEntryArgs(
                        principal_arn=args.deploy_role_arn,
                        type=eks.AccessEntryType.STANDARD,
                        access_policies={
                            "cluster-admin": eks.AccessPolicyAssociationArgs(
                                policy_arn=admin_policy,
                                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                            )
                        },
                    )
                }
                if args.deploy_role_arn is not None
                else {}
            ),
            # pulumi-eks builds the kubeconfig (its own provider's and the output) with
            # `aws eks get-token ... --role <roleArn>` (nodejs/eks/cluster/cluster.ts,
            # generateKubeconfig), so every run uses the deploy role's access entry.
            provider_credential_opts=(
                eks.KubeconfigOptionsArgs(role_arn=args.deploy_role_arn)
                if args.deploy_role_arn is not None
                else None
            ),
            encryption_config_key_arn=args.key_arn,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            create_oidc_provider=True,
            skip_default_node_group=True,
            skip_default_security_groups=True,
            use_default_vpc_cni=True,
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=False),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(
                enabled=True, version=args.addon_versions["kube-proxy"]
            ),
            tags=args.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                # The role must hold its policies, and EKS must find its log group, at creation.
                depends_on=[*cluster_policies, key_policy, log_group],
                # Every admin entry is the program's: EKS grants the creator nothing of its own.
                transforms=[creator_admin_off],
            ),
        )
        cluster_name = cluster.eks_cluster.name

        pod_identity = pinned_addon(
            f"{name}-pod-identity-agent",
            cluster_name,
            "eks-pod-identity-agent",
            args.addon_versions,
            opts=child,
        )
        cni_role, cni_policies = role_with_policies(
            f"{name}-vpc-cni",
            irsa_trust(cluster.oidc_provider_arn, cluster.oidc_issuer, "kube-system", "aws-node"),
            ident.partition,
            ["AmazonEKS_CNI_Policy"],
            parent=self,
            permissions_boundary=args.permissions_boundary,
        )
        vpc_cni = aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=cluster_name,
            addon_name="vpc-cni",
            addon_version=args.addon_versions["vpc-cni"],
            service_account_role_arn=cni_role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            configuration_values=json.dumps(
                {
                    "enableNetworkPolicy": "true",
                    "env": {
                        "ENABLE_PREFIX_DELEGATION": "true",
                        "WARM_IP_TARGET": str(args.warm_ip_target),
                        "MINIMUM_IP_TARGET": str(args.minimum_ip_target),
                    },
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=cni_policies),
        )

        self.eks = cluster
        self.node_prerequisites: list[pulumi.Resource] = [vpc_cni, pod_identity]
        self.cluster_name = cluster_name
        self.cluster_arn = cluster.eks_cluster.arn
        self.endpoint = cluster.eks_cluster.endpoint
        self.kubeconfig_json = pulumi.Output.secret(cluster.kubeconfig_json)
        self.oidc_provider_arn = cluster.oidc_provider_arn
        self.cluster_security_group_id = cluster.eks_cluster.vpc_config.cluster_security_group_id
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_arn": self.cluster_arn,
                "endpoint": self.endpoint,
                "kubeconfig_json": self.kubeconfig_json,
                "oidc_provider_arn": self.oidc_provider_arn,
                "cluster_security_group_id": self.cluster_security_group_id,
            }
        )
