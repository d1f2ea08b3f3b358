"""Phase 4 of the composition (stacks/platform.py): registries, CI roles, ArgoCD, NetworkPolicies."""

from __future__ import annotations

import json
from typing import Any

from components.gitops import GitOps, GitOpsArgs, SsoArgs
from components.netpol import NetworkPolicies, NetworkPoliciesArgs
from components.registry import Registry, RegistryArgs, ServiceRegistry
from stacks.config import PlatformConfig
from stacks.data import chart_specs, values
from stacks.phase_base import ClusterPhase, Foundation, key_window
from stacks.phase_services import Services

# -- phase 4: delivery ---------------------------------------------------------------------------


def delivery(cfg: PlatformConfig, base: Foundation, core: ClusterPhase, services: Services) -> dict[str, Any]:
    """Registries and CI roles for the services, and ArgoCD with the stack's root Application."""
    prefix, identity = cfg.prefix, base.identity
    charts = chart_specs()
    registry = Registry(
        f"{prefix}-registry",
        RegistryArgs(
            identity=identity,
            permissions_boundary=base.permissions_boundary,
            prefix=prefix,
            services=tuple(
                ServiceRegistry(
                    name=s.name, github_repository=s.github_repository, subject=s.subject, branch=s.branch
                )
                for s in cfg.delivery.services
            ),
            existing_oidc_provider_arn=cfg.delivery.github_oidc_provider_arn,
            keep_tagged_images=cfg.delivery.keep_tagged_images,
            untagged_image_days=cfg.delivery.untagged_image_days,
            key_deletion_window_days=key_window(cfg),
            protect=cfg.protect,
        ),
        opts=base.aws_only,
    )

    gitops = cfg.delivery.gitops
    argocd = GitOps(
        f"{prefix}-gitops",
        GitOpsArgs(
            chart=charts["argo-cd"],
            base_values=values("argocd"),
            high_availability=cfg.profile.high_availability,
            repo_url=gitops.repo_url,
            revision=gitops.revision,
            path=gitops.folder(cfg.stack),
            service_namespaces=tuple(svc.name for svc in cfg.delivery.services),
            labels={
                "eks-platform.io/environment": cfg.stack,
                "eks-platform.io/region": cfg.region,
                "eks-platform.io/cluster": cfg.cluster_name,
            },
            annotations={
                "eks-platform.io/account-id": identity.account_id,
                "eks-platform.io/ecr-registry": registry.registry,
                "eks-platform.io/repository-urls": registry.repository_urls.apply(json.dumps),
                # Each service's own ClusterSecretStore (charts/microservice uses service-<release>).
                "eks-platform.io/service-secret-stores": services.secrets.service_stores.apply(json.dumps),
            },
            sso=None
            if gitops.sso is None
            else SsoArgs(
                issuer=gitops.sso.issuer,
                client_id=gitops.sso.client_id,
                secret_name=gitops.sso.client_secret_name,
                url=gitops.sso.url,
                display_name=gitops.sso.display_name,
                requested_scopes=gitops.sso.requested_scopes,
                groups_claim=gitops.sso.groups_claim,
                admin_groups=gitops.sso.admin_groups,
                read_only_groups=gitops.sso.read_only_groups,
            ),
            # prod's redis-ha claims volumes (argo-cd 10.1.1 / redis-ha 4.38.0 persistentVolume).
            depends_on=[services.namespaces, services.secrets, services.addons, core.nodes.node_group],
        ),
        opts=services.k8s_opts,
    )

    # Last: a first install's Helm hooks run before any policy exists; the policies keep DNS and the
    # API server open for later upgrades' hooks (docs/network-policies.md).
    NetworkPolicies(
        f"{prefix}-network-policies",
        NetworkPoliciesArgs(
            vpc_cidr=str(cfg.network.cidr),
            service_cidr=str(cfg.cluster.service_cidr),
            service_namespaces=tuple(svc.name for svc in cfg.delivery.services),
            depends_on=[services.namespaces, services.secrets, services.monitoring, argocd],
        ),
        opts=services.k8s_opts,
    )

    return {
        "karpenterNodeRoleArn": services.karpenter.node_role_arn,
        "karpenterInterruptionQueue": services.karpenter.queue_name,
        "repositoryUrls": registry.repository_urls,
        "ciRoleArns": registry.ci_role_arns,
        "secretStore": services.secrets.store_name,
        "serviceSecretStores": services.secrets.service_stores,
    }
