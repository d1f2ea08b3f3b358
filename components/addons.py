"""Cluster add-ons that need running nodes: CoreDNS, the EBS CSI driver, the default StorageClass."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.iam import pod_identity_trust, role_with_policies
from components.identity import AwsIdentity

EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")
STORAGE_CLASS = "gp3-encrypted"


def pinned_addon(
    resource_name: str,
    cluster_name: pulumi.Input[str],
    addon: str,
    versions: dict[str, str],
    opts: pulumi.ResourceOptions,
    **settings: Any,
) -> aws.eks.Addon:
    """An EKS managed add-on at its pinned version; the program's settings win over edits in-cluster."""
    return aws.eks.Addon(
        resource_name,
        cluster_name=cluster_name,
        addon_name=addon,
        addon_version=versions[addon],
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        opts=opts,
        **settings,
    )


@dataclass(frozen=True, kw_only=True)
class ClusterAddonsArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    cluster_name: pulumi.Input[str]
    # The cluster ARN as a plain string, so trust policies read in the plan.
    cluster_arn: str
    addon_versions: dict[str, str]
    # The floor of CoreDNS's replicas. EKS's managed CoreDNS autoscaler adds replicas as the cluster
    # grows (max(nodes / 16, cores / 256), AWS EKS User Guide "Scale CoreDNS Pods for high DNS
    # traffic"): Karpenter adding a hundred nodes must not leave DNS at its day-one size.
    coredns_replicas: int
    coredns_max_replicas: int = 32
    # Spread replicas over zones and keep a disruption budget (prod).
    high_availability: bool
    reclaim_policy: str
    # The nodes that must exist before these add-ons can become healthy.
    node_group: pulumi.Resource
    # Tags on every EBS volume the CSI driver creates (the provider's default tags do not reach them).
    volume_tags: dict[str, str]


class ClusterAddons(pulumi.ComponentResource):
    """The add-ons that schedule pods, installed once the system nodes exist.

    Guarantees: pinned CoreDNS (HA-spread with a PDB in prod) and EBS CSI driver versions; the
    EBS CSI controller gets its own Pod Identity role bound to its service account alone, with
    AWS's tag-scoped EBS policy; a default gp3 StorageClass that always encrypts, binds in the
    pod's zone, allows expansion, and retains volumes in prod.

    `coredns` is exposed for ordering only: whatever resolves AWS endpoints while it cleans up on
    destroy (Karpenter terminating its nodes) depends on it, so a destroy deletes it last
    (platform/teardown.yaml). Whatever holds volume claims depends on the whole component (the
    driver, its DNS and the StorageClass).
    """

    storage_class_name: pulumi.Output[str]
    coredns: aws.eks.Addon

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:addons:ClusterAddons", name, None, opts)
        ident = args.identity
        after_nodes = pulumi.ResourceOptions(parent=self, depends_on=[args.node_group])

        # The add-on's configuration schema takes `autoScaling` (enabled, minReplicas, maxReplicas)
        # since CoreDNS v1.9.3-eksbuild.5 (AWS EKS User Guide, "Scale CoreDNS Pods for high DNS
        # traffic"); with the autoscaler on, the floor is `minReplicas`, not `replicaCount`.
        coredns_config: dict[str, object] = {
            "autoScaling": {
                "enabled": True,
                "minReplicas": args.coredns_replicas,
                "maxReplicas": args.coredns_max_replicas,
            }
        }
        if args.high_availability:
            coredns_config["podDisruptionBudget"] = {"enabled": True, "maxUnavailable": 1}
            coredns_config["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ]
        self.coredns = pinned_addon(
            f"{name}-coredns",
            args.cluster_name,
            "coredns",
            args.addon_versions,
            configuration_values=json.dumps(coredns_config),
            opts=after_nodes,
        )

        namespace, service_account = EBS_CSI_SERVICE_ACCOUNT
        ebs_role, ebs_policies = role_with_policies(
            f"{name}-ebs-csi",
            pod_identity_trust(ident.account_id, args.cluster_arn, namespace, service_account),
            ident.partition,
            ["service-role/AmazonEBSCSIDriverPolicy"],
            parent=self,
            permissions_boundary=args.permissions_boundary,
        )
        # The add-on takes the chart's values (aws-ebs-csi-driver charts/aws-ebs-csi-driver/values.yaml):
        # with controller.k8sTagClusterId the driver tags each volume `kubernetes.io/cluster/<id>:
        # owned`, and controller.extraVolumeTags adds the stack's tags (docs/tagging.md). Without
        # them a PVC volume (Prometheus, Alertmanager, Grafana) carries no mark of its cluster, and
        # neither cost reports nor the leak check after a destroy (tools/leak_check.py) can find it.
        ebs_config = pulumi.Output.json_dumps(
            {"controller": {"k8sTagClusterId": args.cluster_name, "extraVolumeTags": args.volume_tags}}
        )
        ebs_csi = pinned_addon(
            f"{name}-ebs-csi",
            args.cluster_name,
            "aws-ebs-csi-driver",
            args.addon_versions,
            configuration_values=ebs_config,
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(
                    role_arn=ebs_role.arn, service_account=service_account
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.node_group, *ebs_policies]),
        )

        # A raw manifest through ConfigGroup rather than the typed StorageClass class: the typed
        # class makes the SDK load all of core/v1 (about 0.3 s of every plan and test run) for a
        # field (allowedTopologies) this platform does not use. The object is the same.
        k8s.yaml.v2.ConfigGroup(
            f"{name}-gp3",
            objs=[
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {
                        "name": STORAGE_CLASS,
                        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                    },
                    "provisioner": "ebs.csi.aws.com",
                    "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
                    "volumeBindingMode": "WaitForFirstConsumer",
                    "allowVolumeExpansion": True,
                    "reclaimPolicy": args.reclaim_policy,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ebs_csi]),
        )
        self.storage_class_name = pulumi.Output.from_input(STORAGE_CLASS)
        self.register_outputs({"storage_class_name": self.storage_class_name})
