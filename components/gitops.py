"""GitOps: ArgoCD, its projects, and the root Application that syncs the GitOps tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.helm import ChartSpec, merge, release

NAMESPACE = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
SERVICES_PROJECT, PLATFORM_PROJECT = "microservices", "platform"
# The AppProject Argo CD creates with every permission when none exists (argo-cd v3.4.4
# server/server.go initializeDefaultProject): an Application naming it could deploy anything anywhere.
DEFAULT_PROJECT = "default"
# The app-of-apps Application (argocd/root) that syncs the stack's GitOps folder.
ROOT_APPLICATION = "root"
# The key of the OIDC client secret, in Secrets Manager's JSON value and so in the Kubernetes Secret.
CLIENT_SECRET_KEY = "clientSecret"  # noqa: S105 (a key name, not a password)
# Argo CD resolves `$<secret>:<key>` only in Secrets carrying this label (argo-cd v3.4.4
# docs/operator-manual/user-management/index.md, "Sensitive Data and SSO Client Secrets").
ARGOCD_SECRET_LABELS = {"app.kubernetes.io/part-of": "argocd"}


@dataclass(frozen=True, kw_only=True)
class SsoArgs:
    """Sign-in through an OIDC provider; the client secret is in the Secret `secret_name`."""

    issuer: str
    client_id: str
    secret_name: str
    url: str
    display_name: str
    requested_scopes: tuple[str, ...]
    groups_claim: str
    admin_groups: tuple[str, ...]
    read_only_groups: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class GitOpsArgs:
    chart: ChartSpec
    base_values: dict[str, Any]
    high_availability: bool
    repo_url: str
    revision: str
    # Path of this stack's folder in the GitOps repository (the root Application's source).
    path: str
    service_namespaces: tuple[str, ...]
    # Facts charts in the GitOps repository read from the cluster Secret instead of hard-coding.
    labels: dict[str, str]
    annotations: dict[str, pulumi.Input[str]]
    # None: no SSO (only where the local admin stays on).
    sso: SsoArgs | None
    depends_on: list[pulumi.Resource]


def sso_values(sso: SsoArgs) -> dict[str, Any]:
    """argocd-cm `url` and `oidc.config`, argocd-rbac-cm `policy.csv`, `scopes` and `policy.default`.

    Argo CD v3.4.4 docs: user-management/index.md "Existing OIDC Provider" (the keys of
    oidc.config; `$<secret>:<key>` references), argocd-cm.yaml (`url`, required for SSO: the
    redirect URI is `<url>/auth/callback`), rbac.md "Using SSO Users/Groups" (`g, <group>, <role>`;
    `scopes` lists the claims RBAC reads). Nobody outside the listed groups gets a role.
    """
    oidc = {
        "name": sso.display_name,
        "issuer": sso.issuer,
        "clientID": sso.client_id,
        "clientSecret": f"${sso.secret_name}:{CLIENT_SECRET_KEY}",
        "requestedScopes": list(sso.requested_scopes),
        "requestedIDTokenClaims": {sso.groups_claim: {"essential": True}},
    }
    grants = [(g, "role:admin") for g in sso.admin_groups] + [
        (g, "role:readonly") for g in sso.read_only_groups
    ]
    return {
        "configs": {
            "cm": {"url": sso.url, "oidc.config": yaml.safe_dump(oidc, sort_keys=True)},
            "rbac": {
                "policy.default": "",
                "policy.csv": "".join(f"g, {group}, {role}\n" for group, role in grants),
                "scopes": f"[{sso.groups_claim}]",
            },
        }
    }


def stack_values(args: GitOpsArgs) -> dict[str, Any]:
    ha = args.high_availability
    replicas = 2 if ha else 1
    values: dict[str, Any] = {
        # The admin user exists only outside production; there, people sign in through SSO.
        "configs": {
            "cm": {"admin.enabled": not ha},
            "clusterCredentials": {
                "in-cluster": {
                    "server": IN_CLUSTER,
                    "labels": args.labels,
                    "annotations": args.annotations,
                    "config": {"tlsClientConfig": {"insecure": False}},
                }
            },
        },
        "redis-ha": _redis_ha(ha),
        # One controller replica (it shards clusters, one is right for one cluster): a PDB could
        # only block drains (minAvailable 1) or protect nothing, so it gets none.
        "controller": {"replicas": 1, "pdb": {"enabled": False}},
        # argo-cd 10.1.1 renders `minAvailable: 0` when `pdb.enabled` comes without a bound
        # (templates/argocd-*/pdb.yaml: `minAvailable: {{ .minAvailable | default 0 }}`): such a
        # PDB protects nothing, so the bound is explicit.
        "server": {"replicas": replicas, "pdb": _pdb(ha)},
        "repoServer": {"replicas": replicas, "pdb": _pdb(ha)},
        "applicationSet": {"replicas": replicas, "pdb": _pdb(ha)},
        # Zone spread for every Argo CD component with more than one replica; the chart fills in
        # each component's own label selector when it is left out (values.yaml, global).
        # Hard hostname anti-affinity in prod (the chart's default is soft): two replicas of one
        # component never share a node, so losing a node takes at most one of them.
        "global": {
            "topologySpreadConstraints": [ZONE_SPREAD] if ha else [],
            "affinity": {"podAntiAffinity": "hard" if ha else "soft"},
        },
    }
    if args.sso is not None:
        # Added in place, not through merge(): the annotations hold Outputs, which cannot be copied.
        sso = sso_values(args.sso)["configs"]
        values["configs"]["cm"].update(sso["cm"])
        values["configs"]["rbac"] = sso["rbac"]
    return values


ZONE_SPREAD = {
    "maxSkew": 1,
    "topologyKey": "topology.kubernetes.io/zone",
    "whenUnsatisfiable": "ScheduleAnyway",
}


def _pdb(ha: bool) -> dict[str, Any]:
    return {"enabled": True, "minAvailable": 1} if ha else {"enabled": False}


def _redis_ha(ha: bool) -> dict[str, Any]:
    """redis-ha 4.38.0 keeps its default hard hostname anti-affinity; prod adds zone spread."""
    if not ha:
        return {"enabled": False}
    # One switch for the Redis StatefulSet and HAProxy alike (templates/redis-ha-statefulset.yaml,
    # templates/redis-haproxy-deployment.yaml both read the top-level key).
    # PDBs only when set (templates/redis-ha-pdb.yaml, redis-haproxy-pdb.yaml): one pod of three
    # at a time, so Sentinel keeps its quorum of two through a drain.
    one_at_a_time = {"maxUnavailable": 1}
    return {
        "enabled": True,
        "topologySpreadConstraints": {"enabled": True, **ZONE_SPREAD},
        "podDisruptionBudget": one_at_a_time,
        "haproxy": {"podDisruptionBudget": one_at_a_time},
    }


def services_project(args: GitOpsArgs) -> dict[str, Any]:
    """Services: only the GitOps repository, only their own namespaces, nothing cluster-scoped."""
    return {
        "description": "Microservices delivered from the GitOps repository",
        "sourceRepos": [args.repo_url],
        "destinations": [{"server": IN_CLUSTER, "namespace": ns} for ns in args.service_namespaces],
        "clusterResourceWhitelist": [],
        "namespaceResourceBlacklist": [
            {"group": "", "kind": "ResourceQuota"},
            {"group": "", "kind": "LimitRange"},
            # A namespaced SecretStore without `auth`, or a generator (STSSessionToken,
            # ECRAuthorizationToken...), would run on the External Secrets controller's own AWS
            # credentials with no prefix or conditions (external-secrets v2.9.0
            # providers/v1/aws/auth/auth.go New: no auth, the default chain): a service reads
            # Secrets Manager only through its ClusterSecretStore service-<name> (docs/secrets.md).
            {"group": "external-secrets.io", "kind": "SecretStore"},
            {"group": "generators.external-secrets.io", "kind": "*"},
            # NetworkPolicy is allowed: charts/microservice ships each service's own allows on top
            # of the namespace's default deny, which the platform owns (components/netpol.py).
        ],
    }


def platform_project(args: GitOpsArgs) -> dict[str, Any]:
    """The root Application's project: it may only create Applications in the argocd namespace."""
    return {
        "description": "The app-of-apps: Applications of this stack's GitOps folder",
        "sourceRepos": [args.repo_url],
        "destinations": [{"server": IN_CLUSTER, "namespace": NAMESPACE}],
        "clusterResourceWhitelist": [],
        "namespaceResourceWhitelist": [{"group": "argoproj.io", "kind": "Application"}],
    }


def default_project() -> dict[str, Any]:
    """The `default` AppProject, stripped of every permission. Argo CD creates it when it is missing
    with sourceRepos *, destinations */* and clusterResourceWhitelist */* (argo-cd v3.4.4
    server/server.go initializeDefaultProject; it only creates, never resets an existing one), so any
    Application in the GitOps tree naming `project: default` could deploy anything anywhere. Argo CD
    v3.4.4 docs/user-guide/projects.md ("The Default Project": it can be modified, not deleted) gives
    this spec to remove all its permissions; clusterResourceWhitelist is set empty as well, because
    the patch below takes over only the fields it names."""
    return {
        "description": "Locked by the platform: use the microservices or platform project",
        "sourceRepos": [],
        "sourceNamespaces": [],
        "destinations": [],
        "clusterResourceWhitelist": [],
        "namespaceResourceBlacklist": [{"group": "*", "kind": "*"}],
    }


def root_application(args: GitOpsArgs, name: str) -> dict[str, Any]:
    return {
        "project": PLATFORM_PROJECT,
        "source": {"repoURL": args.repo_url, "targetRevision": args.revision, "path": args.path},
        "destination": {"server": IN_CLUSTER, "namespace": NAMESPACE},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True},
            "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
            "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}},
        },
    }


class GitOps(pulumi.ComponentResource):
    """ArgoCD on the system nodes, its AppProjects and the root app-of-apps.

    Guarantees: a pinned chart; HA in prod (redis-ha, 2 server/repo-server/ApplicationSet
    replicas, PDBs), single replicas elsewhere; the local admin user disabled in prod (SSO only)
    and the initial admin secret never read or exported; a `microservices` AppProject limited to
    the GitOps repository, this cluster and the services' namespaces, with no cluster-scoped
    resources; a `platform` project whose root Application may only create Applications; Argo CD's
    `default` project stripped of every permission (no Application may use it); the root
    Application syncs this stack's folder automatically (prune, self-heal, retries with backoff).
    The in-cluster cluster Secret carries the platform's facts as labels and annotations.
    Repository credentials, for a private repository, arrive as an ExternalSecret (Secrets).
    """

    def __init__(self, name: str, args: GitOpsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:gitops:GitOps", name, None, opts)
        argocd = release(
            f"{name}-argocd",
            release_name="argocd",
            namespace=NAMESPACE,
            spec=args.chart,
            values=merge(args.base_values, stack_values(args)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        after = pulumi.ResourceOptions(parent=self, depends_on=[argocd])
        projects = [
            k8s.apiextensions.CustomResource(
                f"{name}-project-{project}",
                api_version="argoproj.io/v1alpha1",
                kind="AppProject",
                metadata={"name": project, "namespace": NAMESPACE},
                spec=spec,
                opts=after,
            )
            for project, spec in (
                (SERVICES_PROJECT, services_project(args)),
                (PLATFORM_PROJECT, platform_project(args)),
            )
        ]
        # A patch (server-side apply), not a CustomResource: Argo CD's server has usually created
        # `default` by now, and pulumi-kubernetes from 4.29.0 fails a create of an object that exists
        # (its release notes: "use client-side create for new resources"). `pulumi.com/patchForce`
        # (the Patch resources' docs) takes the fields over from argocd-server, which created them.
        locked = k8s.apiextensions.CustomResourcePatch(
            f"{name}-project-{DEFAULT_PROJECT}",
            api_version="argoproj.io/v1alpha1",
            kind="AppProject",
            metadata={
                "name": DEFAULT_PROJECT,
                "namespace": NAMESPACE,
                "annotations": {"pulumi.com/patchForce": "true"},
            },
            spec=default_project(),
            opts=after,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-root",
            api_version="argoproj.io/v1alpha1",
            kind="Application",
            metadata={
                "name": ROOT_APPLICATION,
                "namespace": NAMESPACE,
                # Deleting the root app deletes what it synced (the service Applications) first.
                "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            },
            spec=root_application(args, name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[argocd, *projects, locked]),
        )
        self.register_outputs({})
