"""Kubernetes objects the platform creates directly: namespaces, storage, Argo CD projects and access,
External Secrets stores.

Objects applied through `kubernetes:yaml/v2:ConfigGroup` are read from its `objs` input.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from policy.helm_profiles import chart_name
from policy.model import Context, Level, Resource, RuleSet, Source, bpg, cis
from policy.props import falsy, get, is_map, items, truthy
from policy.resource_types import (
    APP_PROJECT,
    APP_PROJECT_PATCH,
    CLUSTER_SECRET_STORE,
    CONFIG_GROUP,
    EXTERNAL_SECRET,
    HELM,
    NAMESPACE,
    NETWORK_POLICY,
    STORAGE_CLASS,
)

rules = RuleSet()
M, A = Level.MANDATORY, Level.ADVISORY
ENFORCE = "pod-security.kubernetes.io/enforce"
PSS = (*cis("4.2.1"), *bpg("Security > Pod security: Pod Security Standards"))
ARGO_PROJECTS = Source("argocd", "Projects (restrict sources, destinations and cluster resources)")


def _objects(typ: str, props: Mapping[str, Any], kind: str, token: str) -> list[Mapping[str, Any]]:
    if typ == CONFIG_GROUP:
        return [o for o in items(get(props, "objs")) if is_map(o) and get(o, "kind") == kind]
    return [props] if typ == token else []


@rules.resource(
    "k8s-namespace-pod-security",
    types=(CONFIG_GROUP, NAMESPACE),
    description="Every namespace enforces a Pod Security Standard (enforce label).",
    sources=PSS,
    prod=M,
    dev=M,
)
def namespace_pss(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for ns in _objects(typ, props, "Namespace", NAMESPACE):
        if get(ns, ("metadata", "labels", ENFORCE)) not in ("baseline", "restricted", "privileged"):
            yield f"namespace {get(ns, 'metadata.name')} has no {ENFORCE} label"


@rules.resource(
    "k8s-namespace-not-privileged",
    types=(CONFIG_GROUP, NAMESPACE),
    description="Namespaces enforce baseline or restricted; privileged is a justified exception.",
    sources=PSS,
    prod=A,
    dev=A,
)
def namespace_not_privileged(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for ns in _objects(typ, props, "Namespace", NAMESPACE):
        if get(ns, ("metadata", "labels", ENFORCE)) == "privileged":
            yield f"namespace {get(ns, 'metadata.name')} enforces privileged (host access allowed)"


@rules.resource(
    "k8s-storage-class-encrypted",
    types=(CONFIG_GROUP, STORAGE_CLASS),
    description="EBS storage classes create encrypted volumes.",
    sources=bpg("Security > Data encryption and secrets management (encryption at rest)"),
    prod=M,
    dev=M,
)
def storage_encrypted(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for sc in _objects(typ, props, "StorageClass", STORAGE_CLASS):
        if get(sc, "provisioner") == "ebs.csi.aws.com" and not truthy(get(sc, "parameters.encrypted")):
            yield f"storage class {get(sc, 'metadata.name')} does not set parameters.encrypted: 'true'"


@rules.resource(
    "k8s-storage-class-retain",
    types=(CONFIG_GROUP, STORAGE_CLASS),
    description="Production volumes outlive their claims (reclaimPolicy Retain).",
    sources=(Source("platform", "DESIGN.md Environments (prod: PV retain)"),),
    prod=M,
    dev=None,
)
def storage_retain(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for sc in _objects(typ, props, "StorageClass", STORAGE_CLASS):
        if get(sc, "reclaimPolicy", "Delete") != "Retain":
            yield f"storage class {get(sc, 'metadata.name')} deletes volumes with their claims"


@rules.resource(
    "argocd-project-scoped",
    types=(APP_PROJECT, APP_PROJECT_PATCH),
    description="Argo CD projects name their source repos and destinations and grant no cluster-wide kinds.",
    sources=(ARGO_PROJECTS,),
    prod=M,
    dev=M,
)
def project_scoped(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if "*" in items(get(props, "spec.sourceRepos")):
        yield "spec.sourceRepos allows any repository"
    for dest in items(get(props, "spec.destinations")):
        for field in ("namespace", "server", "name"):
            if get(dest, field) == "*":
                yield f"a destination allows any {field}"
    for kind in items(get(props, "spec.clusterResourceWhitelist")):
        if get(kind, "group") == "*" and get(kind, "kind") == "*":
            yield "spec.clusterResourceWhitelist allows every cluster-scoped kind"


@rules.resource(
    "argocd-admin-disabled",
    types=HELM,
    description="Argo CD's local admin account is off in prod; people sign in through SSO.",
    sources=(Source("argocd", "Operator manual: user management (disable the admin user)"),),
    prod=M,
    dev=A,
)
def admin_disabled(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    if chart_name(props) == "argo-cd" and not falsy(get(props, ("values", "configs", "cm", "admin.enabled"))):
        yield "configs.cm.admin.enabled is not false: the local admin password works"


def _locked(spec: Any) -> bool:
    """No source, no destination, no cluster-scoped kind, every namespaced kind denied."""
    return (
        not items(get(spec, "sourceRepos"))
        and not items(get(spec, "destinations"))
        and not items(get(spec, "clusterResourceWhitelist"))
        and any(
            get(k, "group") == "*" and get(k, "kind") == "*"
            for k in items(get(spec, "namespaceResourceBlacklist"))
        )
    )


@rules.stack(
    "argocd-default-project-locked",
    description="Argo CD's `default` project, which it creates with every permission, is stripped of them.",
    sources=(
        Source("argocd", "User guide: projects, The Default Project (remove all its permissions)"),
        Source("argocd", "v3.4.4 server/server.go initializeDefaultProject (created with every permission)"),
    ),
    prod=M,
    dev=M,
)
def default_project_locked(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    argocd = [r for r in resources if r.type in HELM and chart_name(r.props) == "argo-cd"]
    locked = [
        r
        for r in resources
        if r.type in (APP_PROJECT, APP_PROJECT_PATCH)
        and get(r.props, "metadata.name") == "default"
        and _locked(get(r.props, "spec"))
    ]
    if argocd and not locked:
        yield (
            argocd[0].urn,
            "Argo CD's `default` AppProject keeps the permissions it is created with (any repository, "
            "any destination, every cluster-scoped kind): an Application naming `project: default` in "
            "the GitOps tree could deploy anything anywhere; manage it with no source and no destination",
        )


def _is_default_deny(policy: Mapping[str, Any]) -> bool:
    """Selects every pod of its namespace, for ingress and egress, and allows nothing."""
    spec = get(policy, "spec") or {}
    selector = get(spec, "podSelector") or {}
    return (
        not get(selector, "matchLabels")
        and not items(get(selector, "matchExpressions"))
        and {"Ingress", "Egress"} <= set(items(get(spec, "policyTypes")))
        and not items(get(spec, "ingress"))
        and not items(get(spec, "egress"))
    )


@rules.stack(
    "k8s-namespace-default-deny",
    description="Every namespace the platform creates has a default-deny NetworkPolicy (ingress and egress).",
    sources=(
        *bpg("Security > Network security: create a default deny policy"),
        *cis("4.3.2"),
    ),
    prod=M,
    dev=A,
)
def namespace_default_deny(resources: Sequence[Resource], ctx: Context) -> Iterator[tuple[str | None, str]]:
    denied = {
        get(p, "metadata.namespace")
        for r in resources
        for p in _objects(r.type, r.props, "NetworkPolicy", NETWORK_POLICY)
        if _is_default_deny(p)
    }
    for r in resources:
        for ns in _objects(r.type, r.props, "Namespace", NAMESPACE):
            name = get(ns, "metadata.name")
            if name not in denied:
                yield (
                    r.urn,
                    f"namespace {name} has no default-deny NetworkPolicy (all pods, Ingress and Egress)",
                )


# external-secrets v2.9.0 pkg/controllers/secretstore/client_manager.go shouldProcessSecret: no
# conditions admit every namespace; `namespaces` match by name; `namespaceRegexes` by the unanchored
# regexp.MatchString; an empty namespaceSelector selects every namespace.
ESO_CONDITIONS = Source(
    "external-secrets",
    "v2.9.0 pkg/controllers/secretstore/client_manager.go shouldProcessSecret (store conditions)",
)


def _anchored(regex: Any) -> bool:
    text = regex if isinstance(regex, str) else ""
    return text.startswith("^") and text.endswith("$") and not text.endswith("\\$")


@rules.resource(
    "eso-cluster-store-conditions",
    types=(CONFIG_GROUP, CLUSTER_SECRET_STORE),
    description=(
        "Every ClusterSecretStore has conditions that name the namespaces it serves "
        "(no conditions, an empty selector or an unanchored regex admits other namespaces)."
    ),
    sources=(ESO_CONDITIONS, *bpg("Security > Data encryption and secrets management")),
    prod=M,
    dev=M,
)
def cluster_store_conditions(typ: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    for store in _objects(typ, props, "ClusterSecretStore", CLUSTER_SECRET_STORE):
        name = get(store, "metadata.name")
        conditions = items(get(store, "spec.conditions"))
        if not conditions:
            yield (
                f"ClusterSecretStore {name} has no spec.conditions: an ExternalSecret in any namespace "
                "may read every secret its role can"
            )
        for condition in conditions:
            selector = get(condition, "namespaceSelector")
            empty = not get(selector, "matchLabels") and not items(get(selector, "matchExpressions"))
            if is_map(selector) and empty:
                yield f"ClusterSecretStore {name}: an empty namespaceSelector admits every namespace"
            for regex in items(get(condition, "namespaceRegexes")):
                if not _anchored(regex):
                    yield (
                        f"ClusterSecretStore {name}: namespaceRegexes {regex!r} is not anchored (^...$): "
                        "the operator admits any namespace containing a match"
                    )


def _admits(store: Mapping[str, Any], namespace: str) -> bool | None:
    """Whether the store's conditions admit the namespace; None when only labels could tell."""
    conditions = items(get(store, "spec.conditions"))
    if not conditions:
        return True
    unknown = False
    for condition in conditions:
        if namespace in items(get(condition, "namespaces")):
            return True
        for regex in items(get(condition, "namespaceRegexes")):
            if isinstance(regex, str) and re.search(regex, namespace):
                return True
        unknown = unknown or is_map(get(condition, "namespaceSelector"))
    return None if unknown else False


@rules.stack(
    "eso-external-secret-store-admits",
    description="An ExternalSecret uses a ClusterSecretStore whose conditions admit its namespace.",
    sources=(ESO_CONDITIONS,),
    prod=M,
    dev=M,
)
def external_secret_store_admits(
    resources: Sequence[Resource], ctx: Context
) -> Iterator[tuple[str | None, str]]:
    stores = {
        get(s, "metadata.name"): s
        for r in resources
        for s in _objects(r.type, r.props, "ClusterSecretStore", CLUSTER_SECRET_STORE)
    }
    for r in resources:
        for es in _objects(r.type, r.props, "ExternalSecret", EXTERNAL_SECRET):
            ref, namespace = get(es, "spec.secretStoreRef"), get(es, "metadata.namespace")
            store = stores.get(get(ref, "name")) if get(ref, "kind") == "ClusterSecretStore" else None
            if store is not None and isinstance(namespace, str) and _admits(store, namespace) is False:
                yield (
                    r.urn,
                    f"ExternalSecret {namespace}/{get(es, 'metadata.name')} uses ClusterSecretStore "
                    f"{get(ref, 'name')}, whose conditions do not admit its namespace: it never syncs",
                )
