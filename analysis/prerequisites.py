"""Deploy prerequisites: one rule per real-world constraint that mocks cannot see.

    findings = check(graph)              # graph = analysis.graph.build(records)

Each rule reads the engine's graph (analysis/graph.py) and the facts of platform/rehearsal.yaml, and
reports `Finding`s (model/findings.py) with rule ids `rehearsal-<name>`. Every rule here is
`mandatory`: when it fires, a real first deploy, destroy or rebuild fails or leaves resources behind.
Each docstring names the source of the constraint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from analysis import internals
from analysis.graph import Graph
from model.findings import Finding
from model.records import Registration, reveal
from policy.model import Level
from stacks.data import load_yaml

RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"


@cache
def facts() -> dict[str, Any]:
    """platform/rehearsal.yaml, read once."""
    data: dict[str, Any] = load_yaml("rehearsal.yaml")
    return data


def top(r: Registration, key: str) -> Any:
    """A top-level input, revealed alone (`Registration.get` reveals every input first: slow on
    a release's whole values)."""
    return reveal(r.raw_inputs.get(key))


def chart(r: Registration) -> str:
    """A release's chart name: the last segment of its `chart` input (an OCI URL or a bare name)."""
    return str(top(r, "chart") or "").rstrip("/").rsplit("/", 1)[-1]


def releases(graph: Graph, *charts: str) -> list[Registration]:
    return [r for r in graph.of_type(RELEASE) if not charts or chart(r) in charts]


def objects(r: Registration) -> list[dict[str, Any]]:
    """The Kubernetes objects a resource creates directly: a ConfigGroup's `objs`, or itself."""
    if r.type == CONFIG_GROUP:
        return [o for o in top(r, "objs") or [] if isinstance(o, dict)]
    if r.type.startswith("kubernetes:") and r.type != RELEASE:
        _, api, kind = r.type.split(":", 2)
        fields = {k: top(r, k) for k in ("metadata", "provisioner") if top(r, k) is not None}
        return [{"apiVersion": api.removeprefix("core/"), "kind": kind, **fields}]
    return []


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _label(r: Registration) -> str:
    return f"{r.type.rsplit(':', 1)[-1]} {r.name}"


def _finding(rule: str, r: Registration, message: str) -> Finding:
    return Finding(f"rehearsal-{rule}", Level.MANDATORY, r.urn, message)


def cluster_order(graph: Graph) -> Iterator[Finding]:
    """Everything scoped to an EKS cluster waits for the cluster.

    Until the cluster is ACTIVE (about 10 minutes) the EKS API answers "cluster not found", and the
    provider retries only IAM-propagation errors (hashicorp/terraform-provider-aws
    internal/service/eks/access_entry.go, pod_identity_association.go, addon.go @00a35305dc1b). A plain
    string cluster name orders nothing: pass the cluster's output (terraform-aws-modules/terraform-aws-eks
    main.tf passes `aws_eks_cluster.this[0].id`).
    """
    clusters = {r.urn for r in graph.of_type(*facts()["clusterTypes"])}
    for r in graph.of_type(*facts()["clusterScopedTypes"]):
        if not clusters & graph.ancestors(r.urn):
            yield _finding(
                "cluster-order",
                r,
                f"{_label(r)} (cluster {r.get('clusterName', '?')}) is not ordered after the EKS cluster: "
                "it starts while EKS still creates the cluster and fails with 'cluster not found'. "
                "Pass the cluster's name output (cluster.eks_cluster.name), not a string.",
            )


def crd_order(graph: Graph) -> Iterator[Finding]:
    """Custom resources wait for the release that installs their CRDs.

    The API server rejects an object whose kind it does not serve yet, and the Kubernetes provider fails
    the create after a few retries: "the apiVersion for this resource does not exist. Verify that any
    required CRDs have been created" (github.com/pulumi/pulumi-kubernetes/pull/530 and /issues/1446).
    """
    groups = facts()["apiGroups"]
    for r in sorted(graph.nodes.values(), key=lambda x: x.urn):
        for obj in objects(r):
            group = _group(str(obj.get("apiVersion", "")))
            if group not in groups:
                continue
            providers = {x.urn for x in releases(graph, groups[group]["crds"])}
            if not providers & graph.ancestors(r.urn):
                yield _finding(
                    "crd-order",
                    r,
                    f"{_label(r)} ({obj.get('kind')}) is not ordered after the {groups[group]['crds']} "
                    f"release that installs the {group} CRDs: 'no matches for kind {obj.get('kind')}'.",
                )


def controller_on_delete(graph: Graph) -> Iterator[Finding]:
    """Objects whose deletion a controller finishes are deleted while that controller still runs.

    Deleting a NodePool or EC2NodeClass makes Karpenter drain and terminate its nodes; with Karpenter
    gone first, the `karpenter.sh/termination` finalizer blocks and instances stay
    (aws/karpenter-provider-aws website/content/en/docs/troubleshooting.md @5e28effa4). Argo CD's
    `resources-finalizer.argocd.argoproj.io` likewise needs the Argo CD controller. Destroy runs the
    graph backwards, so the object must depend on the controller's release.
    """
    groups = facts()["apiGroups"]
    for r in sorted(graph.nodes.values(), key=lambda x: x.urn):
        for obj in objects(r):
            entry = groups.get(_group(str(obj.get("apiVersion", ""))), {})
            finalizers = (obj.get("metadata") or {}).get("finalizers")
            if not entry.get("controller") or not (entry.get("controllerOnDelete") or finalizers):
                continue
            controllers = {x.urn for x in releases(graph, entry["controller"])}
            if not controllers & graph.ancestors(r.urn):
                yield _finding(
                    "controller-on-delete",
                    r,
                    f"{_label(r)} ({obj.get('kind')}) does not depend on the {entry['controller']} "
                    "release: on destroy the controller may go first, and its finalizer then blocks "
                    "the delete and leaves what it manages (nodes, synced resources) behind.",
                )


def _needs_nodes(r: Registration) -> bool:
    if r.type == RELEASE:
        return chart(r) not in facts()["crdsOnly"]
    return r.type == "aws:eks/addon:Addon" and r.get("addonName") in facts()["addonsWithPods"]


def nodes_first(graph: Graph) -> Iterator[Finding]:
    """Workloads that schedule pods wait for the node group that runs them.

    Without nodes, an EKS add-on stays DEGRADED, which the provider's create waiter treats as pending
    until its 20 m timeout (hashicorp/terraform-provider-aws internal/service/eks/addon.go @00a35305dc1b;
    github.com/eksctl-io/eksctl/issues/3748); an atomic Helm release times out and rolls back.
    """
    groups = {r.urn for r in graph.of_type(*facts()["nodeGroupTypes"])}
    for r in sorted(graph.nodes.values(), key=lambda x: x.urn):
        if _needs_nodes(r) and not groups & graph.ancestors(r.urn):
            yield _finding(
                "nodes-first",
                r,
                f"{_label(r)} schedules pods but is not ordered after any node group: its pods stay "
                "Pending and the create times out.",
            )


def _uses_service_account(release: Registration, namespace: str, account: str) -> bool:
    if top(release, "namespace") != namespace:
        return False
    return bool((release.get("values.serviceAccount.name") or top(release, "name")) == account)


def pod_identity_settle(graph: Graph) -> Iterator[Finding]:
    """Pods that use Pod Identity start after their association has settled.

    "EKS Pod Identity associations are eventually consistent, and may take several seconds to be
    effective" (docs.aws.amazon.com/eks/latest/APIReference/API_CreatePodIdentityAssociation.html); a pod
    admitted before that gets no credentials and keeps none (github.com/aws/eks-pod-identity-agent
    /issues/52). A settle wait (a `settleTypes` resource) must lie between the association and the release.
    """
    settles = {r.urn for r in graph.of_type(*facts()["settleTypes"])}
    for assoc in graph.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        namespace, account = assoc.get("namespace"), assoc.get("serviceAccount")
        for user in releases(graph):
            if not _uses_service_account(user, namespace, account):
                continue
            ancestors = graph.ancestors(user.urn)
            waits = {s for s in settles & ancestors if assoc.urn in graph.ancestors(s)}
            if assoc.urn not in ancestors:
                problem = "is not ordered after its Pod Identity association at all"
            elif not waits:
                problem = "starts right after its Pod Identity association, with no settle wait between"
            else:
                continue
            yield _finding(
                "pod-identity-settle",
                user,
                f"{_label(user)} (service account {namespace}/{account}) {problem}: its pods may be "
                "admitted before the association is effective and then run without AWS credentials.",
            )


def _claims_volumes(r: Registration) -> bool:
    for rule in facts()["volumeClaims"].get(chart(r), []):
        on = bool(r.get(f"values.{rule['path']}", rule["default"]))
        if on and "also" in rule:
            on = bool(r.get(f"values.{rule['also']}", rule["alsoDefault"]))
        if on:
            return True
    return False


def _storage_classes(graph: Graph) -> set[str]:
    provisioner = facts()["csiProvisioner"]
    return {
        r.urn
        for r in graph.nodes.values()
        for obj in objects(r)
        if obj.get("kind") == "StorageClass" and obj.get("provisioner") == provisioner
    }


def volumes(graph: Graph) -> Iterator[Finding]:
    """Releases that claim volumes come after the EBS CSI driver and its StorageClass, and go before them.

    Create: a PVC with no provisioner stays Pending and Helm's wait times out. Destroy runs the graph
    backwards: without the dependency the driver may go first, so dynamically provisioned EBS volumes
    are never deleted (awsdocs/amazon-eks-user-guide latest/ug/clusters/delete-cluster.adoc
    @4d52b4d05e3: delete workloads before the cluster's add-ons).
    """
    csi = {r.urn for r in graph.of_type("aws:eks/addon:Addon") if r.get("addonName") == facts()["csiAddon"]}
    classes = _storage_classes(graph)
    for r in releases(graph):
        if not _claims_volumes(r):
            continue
        ancestors = graph.ancestors(r.urn)
        missing = [
            what
            for what, urns in (("the EBS CSI add-on", csi), ("its StorageClass", classes))
            if not urns & ancestors
        ]
        if missing:
            yield _finding(
                "volumes",
                r,
                f"{_label(r)} creates PersistentVolumeClaims but does not depend on {' and '.join(missing)}: "
                "on create its volumes may wait for a provisioner that is not there yet; on destroy the "
                "driver may be deleted first and the EBS volumes are left behind.",
            )


def _covers(arg: Any, name: str) -> bool:
    """Whether an existence lookup's argument asks for exactly this name (a prefix, or a list of
    `{name, values}` filters); a lookup with no argument lists every name."""
    if arg is None:
        return True
    if isinstance(arg, list):
        return any(name in (f.get("values") or []) for f in arg if isinstance(f, dict))
    return bool(arg == name)


def _existence(graph: Graph, typ: str, name: str) -> tuple[bool, bool]:
    """(the program looks the name up before it creates it, the lookup found it taken)."""
    spec = internals.data()["imports"][typ]["exists"]
    asked, found = False, False
    for call in graph.lookups:
        if call.get("token") != spec["token"]:
            continue
        if spec["arg"] is not None and not _covers((call.get("args") or {}).get(spec["arg"]), name):
            continue
        asked = True
        result = call.get("result") or {}
        found = found or any(name in (v or []) for k, v in result.items() if k.endswith(("names", "Names")))
    return asked, found


def reserved_names(graph: Graph) -> Iterator[Finding]:
    """A fixed name that outlives a destroy must be adopted by the next `up` of the same stack.

    Outlives: the resource is `retain_on_delete` (destroy forgets it, AWS keeps it), or AWS recreates
    it (EKS recreates `/aws/eks/<cluster>/cluster` with its service role after the group is deleted:
    aws-ia/terraform-aws-eks-blueprints docs/faq.md @be4455257046), or AWS keeps its name taken after
    the delete (a Secrets Manager secret's recovery window, 7-30 days, default 30, 0 forces deletion:
    docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html). `protect` saves
    nothing: a stack is retired by lifting it first (docs/retiring-a-stack.md). The next create of the
    name fails (ResourceAlreadyExistsException, RepositoryAlreadyExistsException,
    ResourceExistsException), unless the program looks the name up and imports what it finds
    (components/identity.py `existing`). A secret scheduled for deletion cannot be imported: the
    provider reads it as not found (hashicorp/terraform-provider-aws internal/service/secretsmanager/
    secret.go @00c21cedec06, findSecretByID), so only a person can free or restore its name.
    """
    specs = internals.data()["imports"]
    recreated = re.compile(facts()["eksLogGroupPattern"])
    for r in sorted(graph.nodes.values(), key=lambda x: x.urn):
        name = r.get("name") if r.custom else None
        if not isinstance(name, str) or not name:
            continue
        label = f"{r.type.rsplit(':', 1)[-1]} {name}"
        if r.type not in specs:
            if r.retain_on_delete:
                yield _finding(
                    "reserved-names",
                    r,
                    f"{label} is retained on destroy under a fixed name, and the program has no way to "
                    "adopt its type (analysis/internals.py data `imports`): the next up fails on the name.",
                )
            continue
        days = internals.reserved_after_delete(r)
        if days and not r.retain_on_delete:
            yield _finding(
                "reserved-names",
                r,
                f"{label} has a fixed name and a {days}-day recovery window: a destroy schedules it for "
                f"deletion, it cannot be adopted (a secret scheduled for deletion reads as not found), and "
                f"the next up fails for {days} days ('already scheduled for deletion'). Before a rebuild a "
                f"person runs `aws secretsmanager restore-secret --secret-id {name}` (the up then "
                f"adopts it) or `aws secretsmanager delete-secret --secret-id {name} "
                "--force-delete-without-recovery`; "
                "or use recovery_window_in_days=0 or a name_prefix where the stack is rebuilt.",
            )
            continue
        why = (
            "is retained on destroy"
            if r.retain_on_delete
            else "is recreated by EKS after a destroy"
            if r.type == "aws:cloudwatch/logGroup:LogGroup" and recreated.match(name)
            else None
        )
        if why is None:
            continue
        asked, found = _existence(graph, r.type, name)
        if not asked:
            yield _finding(
                "reserved-names",
                r,
                f"{label} {why}, but the program does not look the name up before it creates it: the next "
                "up of this stack fails with ResourceAlreadyExistsException. Adopt it: "
                "components/identity.py `existing`, then `import_`.",
            )
        elif found and not r.import_id:
            yield _finding(
                "reserved-names",
                r,
                f"{label} {why}; the program found it in the account but does not import it: the create "
                "fails on the name.",
            )


RULES: tuple[Callable[[Graph], Iterator[Finding]], ...] = (
    cluster_order,
    crd_order,
    controller_on_delete,
    nodes_first,
    pod_identity_settle,
    volumes,
    reserved_names,
)


def check(graph: Graph) -> list[Finding]:
    """Every rule's findings, sorted by rule, resource and message."""
    found = [f for rule in RULES for f in rule(graph)]
    return sorted(set(found), key=lambda f: (f.rule, f.urn or "", f.message))
