"""The composition: build the platform's components for one validated stack config.

`build()` reads top-down in deploy order, one function per phase, each returning what the next
needs: foundation (account facts, providers, KMS key, VPC, the deploy role's derived ARN), cluster
(control plane, system nodes, Deployments agents), cluster services (add-ons, Karpenter,
autoscaling, secrets, monitoring: every Kubernetes object but GitOps) and delivery (registries,
ArgoCD, NetworkPolicies). A bootstrap run (deployments.bootstrap) stops after the cluster phase:
nothing it creates needs the Kubernetes API, so it works from outside a private endpoint.

The phases live in stacks/phase_base.py (foundation, cluster), stacks/phase_services.py and
stacks/phase_delivery.py.
"""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.config import PlatformConfig
from stacks.phase_base import cluster_phase, foundation
from stacks.phase_delivery import delivery
from stacks.phase_services import cluster_services


def build(cfg: PlatformConfig) -> dict[str, Any]:
    """Create every resource of the stack; return the stack outputs."""
    base = foundation(cfg)
    core = cluster_phase(cfg, base)
    outputs: dict[str, Any] = {
        "clusterName": core.cluster.cluster_name,
        "clusterEndpoint": core.cluster.endpoint,
        "kubeconfig": core.cluster.kubeconfig_json,
        "vpcId": base.network.vpc_id,
        "privateSubnetIds": base.network.private_subnet_ids,
        "publicSubnetIds": base.network.public_subnet_ids,
        "oidcProviderArn": core.cluster.oidc_provider_arn,
        "nodeRoleArn": core.nodes.node_role_arn,
    }
    if base.deploy_role_arn is not None:
        outputs["deployRoleArn"] = base.deploy_role_arn
    if cfg.deployments.bootstrap:
        pulumi.log.warn(
            "deployments.bootstrap: stopping after the cluster and the Deployments agents; run the "
            "stack's deployment (on the agents) to create the Kubernetes objects. Never bootstrap a "
            "stack that has them: the run would delete them."
        )
        return outputs
    services = cluster_services(cfg, base, core)
    return outputs | delivery(cfg, base, core, services)
