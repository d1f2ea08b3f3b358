"""ArgoCD bootstrap for both stacks under mocks: HA, projects, root app, facts, repo credentials."""

from __future__ import annotations

import json

import yaml

from model.records import PlanResult
from tests.schemas import validate_custom_resource
from tools.mocks import run_program, stack_config

PROJECT_TYPE = "kubernetes:argoproj.io/v1alpha1:AppProject"
APP_TYPE = "kubernetes:argoproj.io/v1alpha1:Application"


def argocd_values(plan: PlanResult) -> dict:
    (release,) = [r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.get("name") == "argocd"]
    return release.get("values")


def project(plan: PlanResult, name: str) -> dict:
    (found,) = [r for r in plan.of_type(PROJECT_TYPE) if r.get("metadata")["name"] == name]
    return found.get("spec")


def test_argocd_is_ha_in_prod_only(plans: dict[str, PlanResult]) -> None:
    for stack, ha in (("dev", False), ("prod", True)):
        values = argocd_values(plans[stack])
        assert values["redis-ha"]["enabled"] is ha
        for part in ("server", "repoServer", "applicationSet"):
            assert values[part]["replicas"] == (2 if ha else 1)
            assert values[part]["pdb"] == ({"enabled": True, "minAvailable": 1} if ha else {"enabled": False})
        # One controller replica: a PDB would block drains or protect nothing.
        assert values["controller"]["pdb"]["enabled"] is False
        assert values["global"]["nodeSelector"] == {"eks-platform.io/node-pool": "system"}


def test_admin_is_disabled_in_prod_and_no_password_is_set(plans: dict[str, PlanResult]) -> None:
    assert argocd_values(plans["prod"])["configs"]["cm"]["admin.enabled"] is False
    assert argocd_values(plans["dev"])["configs"]["cm"]["admin.enabled"] is True
    for plan in plans.values():
        assert "secret" not in argocd_values(plan)["configs"]  # no argocdServerAdminPassword
        assert not any("argocd-initial-admin-secret" in json.dumps(v) for v in plan.outputs.values())


def test_services_project_is_restricted(plan: PlanResult, configs) -> None:
    cfg = configs[plan.stack]
    spec = project(plan, "microservices")
    assert spec["sourceRepos"] == [cfg.delivery.gitops.repo_url]
    assert spec["destinations"] == [
        {"server": "https://kubernetes.default.svc", "namespace": s.name} for s in cfg.delivery.services
    ]
    assert spec["clusterResourceWhitelist"] == []
    # No way around the service's own ClusterSecretStore: a namespaced SecretStore or a generator
    # would use the External Secrets controller's credentials, with no prefix (docs/secrets.md).
    denied = spec["namespaceResourceBlacklist"]
    assert {"group": "external-secrets.io", "kind": "SecretStore"} in denied
    assert {"group": "generators.external-secrets.io", "kind": "*"} in denied


def test_root_project_may_only_create_applications(plan: PlanResult) -> None:
    spec = project(plan, "platform")
    assert spec["namespaceResourceWhitelist"] == [{"group": "argoproj.io", "kind": "Application"}]
    assert spec["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "argocd"}]
    assert spec["clusterResourceWhitelist"] == []


def test_root_application_syncs_this_stacks_folder(plan: PlanResult, configs) -> None:
    (root,) = plan.of_type(APP_TYPE)
    spec = root.get("spec")
    gitops = configs[plan.stack].delivery.gitops
    assert spec["source"] == {
        "repoURL": gitops.repo_url,
        "targetRevision": gitops.revision,
        "path": f"platform/gitops/{plan.stack}",
    }
    assert spec["project"] == "platform"
    policy = spec["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=true" in policy["syncOptions"]
    assert policy["retry"]["limit"] >= 3 and policy["retry"]["backoff"]["factor"] == 2
    projects = {r.get("metadata")["name"]: r for r in plan.of_type(PROJECT_TYPE)}
    assert projects["platform"].urn in root.dependencies


def test_custom_resources_validate(plan: PlanResult) -> None:
    for record in plan.of_type(PROJECT_TYPE) + plan.of_type(APP_TYPE):
        validate_custom_resource({k: record.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})


def test_cluster_secret_carries_the_platform_facts(plan: PlanResult, configs) -> None:
    cfg = configs[plan.stack]
    cluster = argocd_values(plan)["configs"]["clusterCredentials"]["in-cluster"]
    assert cluster["server"] == "https://kubernetes.default.svc"
    assert cluster["labels"] == {
        "eks-platform.io/environment": plan.stack,
        "eks-platform.io/region": cfg.region,
        "eks-platform.io/cluster": cfg.cluster_name,
    }
    annotations = cluster["annotations"]
    assert annotations["eks-platform.io/account-id"] == "123456789012"
    assert annotations["eks-platform.io/ecr-registry"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert set(json.loads(annotations["eks-platform.io/repository-urls"])) == {
        s.name for s in cfg.delivery.services
    }


def test_service_namespaces_are_platform_owned_and_restricted(plan: PlanResult, configs) -> None:
    group = next(
        r for r in plan.of_type("kubernetes:yaml/v2:ConfigGroup") if r.name.endswith("namespaces-group")
    )
    levels = {
        o["metadata"]["name"]: o["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for o in group.get("objs")
    }
    for svc in configs[plan.stack].delivery.services:
        assert levels[svc.name] == "restricted"


def test_private_repo_credentials_come_from_secrets_manager() -> None:
    raw, _ = stack_config("dev")
    delivery = json.loads(raw["eks-platform:delivery"])
    delivery["gitops"]["credentialsSecret"] = "platform/gitops-deploy-key"
    raw["eks-platform:delivery"] = json.dumps(delivery)
    result = run_program("dev", raw)
    (external,) = [
        r
        for r in result.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
        if r.get("metadata")["namespace"] == "argocd"
    ]
    spec = external.get("spec")
    assert spec["dataFrom"] == [{"extract": {"key": "platform/gitops-deploy-key"}}]
    assert spec["target"]["template"]["metadata"]["labels"] == {
        "argocd.argoproj.io/secret-type": "repository"
    }
    (policy,) = [p for p in result.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("secrets-eso")]
    resources = json.loads(policy.get("policy"))["Statement"][0]["Resource"]
    assert "arn:aws:secretsmanager:eu-west-1:123456789012:secret:platform/gitops-deploy-key-*" in resources


def test_public_repo_needs_no_credentials(dev: PlanResult) -> None:
    assert not [
        r
        for r in dev.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
        if r.get("metadata")["namespace"] == "argocd"
    ]


# -- sign-in: OIDC and RBAC from delivery.gitops.sso (docs/argocd-sso.md) --------------------------

EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"


def argocd_external_secrets(plan: PlanResult) -> dict[str, dict]:
    return {
        r.get("metadata")["name"]: r.inputs
        for r in plan.of_type(EXTERNAL_SECRET)
        if r.get("metadata")["namespace"] == "argocd"
    }


def test_prod_signs_in_through_the_configured_oidc_provider(prod: PlanResult, configs) -> None:
    sso = configs["prod"].delivery.gitops.sso
    assert sso is not None
    cm = argocd_values(prod)["configs"]["cm"]
    assert cm["admin.enabled"] is False
    assert cm["url"] == sso.url == "https://localhost:8080"
    oidc = yaml.safe_load(cm["oidc.config"])
    assert oidc["issuer"] == sso.issuer
    assert oidc["clientID"] == sso.client_id
    # A `$<secret>:<key>` reference (Argo CD resolves it at login): the secret is never in the values.
    assert oidc["clientSecret"] == "$argocd-oidc:clientSecret"
    assert oidc["requestedScopes"] == ["openid", "profile", "email", "groups"]
    assert oidc["requestedIDTokenClaims"] == {"groups": {"essential": True}}


def test_prod_roles_come_only_from_the_configured_groups(prod: PlanResult, configs) -> None:
    sso = configs["prod"].delivery.gitops.sso
    rbac = argocd_values(prod)["configs"]["rbac"]
    lines = rbac["policy.csv"].splitlines()
    assert lines == [f"g, {g}, role:admin" for g in sso.admin_groups] + [
        f"g, {g}, role:readonly" for g in sso.read_only_groups
    ]
    assert "g, example-org:platform-admins, role:admin" in lines
    assert rbac["scopes"] == "[groups]"
    assert rbac["policy.default"] == ""  # signed in but in no group: no role


def test_prod_client_secret_comes_from_secrets_manager_with_argocds_label(prod: PlanResult) -> None:
    spec = argocd_external_secrets(prod)["argocd-oidc"]["spec"]
    assert spec["dataFrom"] == [{"extract": {"key": "eks-platform-prod/argocd-oidc"}}]
    assert spec["target"]["name"] == "argocd-oidc"
    assert spec["target"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/part-of": "argocd"}
    (secret,) = [
        s
        for s in prod.of_type("aws:secretsmanager/secret:Secret")
        if s.get("name") == "eks-platform-prod/argocd-oidc"
    ]
    assert secret.protect is True
    # Created empty: the operator puts the value, so Pulumi never holds or overwrites it.
    versions = prod.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert not [v for v in versions if v.name.endswith("argocd-oidc")]
    # The ExternalSecret goes before ArgoCD, which depends on the Secrets component.
    (argocd,) = [r for r in prod.of_type("kubernetes:helm.sh/v3:Release") if r.get("name") == "argocd"]
    assert any("platform:secrets:Secrets" in urn for urn in argocd.dependencies)


def test_argocd_external_secrets_validate(prod: PlanResult) -> None:
    for record in prod.of_type(EXTERNAL_SECRET):
        validate_custom_resource({k: record.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})


def test_dev_without_sso_keeps_the_local_admin(dev: PlanResult, configs) -> None:
    assert configs["dev"].delivery.gitops.sso is None
    values = argocd_values(dev)["configs"]
    assert values["cm"]["admin.enabled"] is True
    assert "oidc.config" not in values["cm"] and "url" not in values["cm"]
    assert "policy.csv" not in values["rbac"]
    assert "argocd-oidc" not in argocd_external_secrets(dev)


def test_sso_in_dev_adds_sign_in_and_keeps_the_admin() -> None:
    raw, _ = stack_config("dev")
    delivery = json.loads(raw["eks-platform:delivery"])
    delivery["gitops"]["sso"] = {
        "issuer": "https://login.acme.io",
        "clientId": "argocd-dev",
        "clientSecretName": "argocd-sso",
        "groupsClaim": "roles",
        "adminGroups": ["platform"],
    }
    raw["eks-platform:delivery"] = json.dumps(delivery)
    result = run_program("dev", raw)
    configs = argocd_values(result)["configs"]
    assert configs["cm"]["admin.enabled"] is True
    oidc = yaml.safe_load(configs["cm"]["oidc.config"])
    assert oidc["clientSecret"] == "$argocd-sso:clientSecret"
    assert oidc["requestedIDTokenClaims"] == {"roles": {"essential": True}}
    assert configs["rbac"]["scopes"] == "[roles]"
    assert configs["rbac"]["policy.csv"] == "g, platform, role:admin\n"
    spec = argocd_external_secrets(result)["argocd-sso"]["spec"]
    assert spec["dataFrom"] == [{"extract": {"key": "eks-platform-dev/argocd-sso"}}]


def test_argocds_default_project_is_stripped_of_every_permission(plan: PlanResult) -> None:
    """Argo CD creates `default` with every permission (argo-cd v3.4.4 server/server.go
    initializeDefaultProject) and keeps an existing one: the platform patches it empty, taking the
    fields over from argocd-server, so no Application of the GitOps tree may use it."""
    (patch,) = [r for r in plan.of_type(PROJECT_TYPE + "Patch") if r.get("metadata")["name"] == "default"]
    assert patch.get("metadata")["namespace"] == "argocd"
    assert patch.get("metadata")["annotations"] == {"pulumi.com/patchForce": "true"}
    spec = patch.get("spec")
    assert spec["sourceRepos"] == spec["destinations"] == spec["clusterResourceWhitelist"] == []
    assert spec["namespaceResourceBlacklist"] == [{"group": "*", "kind": "*"}]
    (root,) = plan.of_type(APP_TYPE)
    assert patch.urn in root.dependencies, "locked before the root Application syncs the tree"
    validate_custom_resource(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            **{k: patch.inputs[k] for k in ("metadata", "spec")},
        }
    )
