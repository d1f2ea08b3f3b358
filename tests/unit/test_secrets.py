"""Secrets Manager, External Secrets and secret config, for both stacks under mocks."""

from __future__ import annotations

import json

import pytest

from components.secrets import PLATFORM_STORE, service_store, store_spec
from model.records import PlanResult
from stacks.config import PROJECT, SECRET_PLACEHOLDER, ConfigError, validate
from tests.schemas import validate_custom_resource
from tests.stackinfo import is_production
from tools.mocks import run_program, stack_config

SECRET = "aws:secretsmanager/secret:Secret"


def test_no_generated_secret_reaches_a_plain_input(plan: PlanResult) -> None:
    passwords = plan.of_type("random:index/randomPassword:RandomPassword")
    assert passwords, "the platform generates its Grafana admin password"
    generated = [f"generated-{p.name}-Zq7v" for p in passwords]
    for record in plan.records:
        text = json.dumps(record.inputs)  # secrets already replaced by "[secret]"
        assert not any(g in text for g in generated), record.urn
    versions = plan.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert versions and all(v.inputs["secretString"] == "[secret]" for v in versions)
    # The real value does reach Secrets Manager, and only there.
    assert any(generated[0] in (v.get("secretString") or "") for v in versions)
    assert not any(g in json.dumps(plan.document()["outputs"]) for g in generated)


def test_secrets_are_encrypted_with_the_platform_key_and_recoverable(plan: PlanResult, configs) -> None:
    key = next(k for k in plan.of_type("aws:kms/key:Key") if "secrets-kms" in k.name)
    assert key.get("enableKeyRotation") is True
    assert key.get("deletionWindowInDays") == (30 if is_production(plan.stack) else 7)
    secrets = [s for s in plan.of_type(SECRET) if "platform:secrets:Secrets$" in s.urn]
    # Grafana's admin login, the Alertmanager receiver, and Argo CD's OIDC client secret with SSO.
    assert len(secrets) == 2 + (configs[plan.stack].delivery.gitops.sso is not None)
    for secret in secrets:
        assert secret.get("name").startswith(f"eks-platform-{plan.stack}/")
        assert secret.get("kmsKeyId") == f"arn:aws:kms:eu-west-1:123456789012:key/{key.name}"
        assert secret.protect is is_production(plan.stack)


@pytest.mark.parametrize(("stack", "window"), [("dev", 0), ("prod", 30)])
def test_dev_secrets_are_deleted_at_once_so_a_rebuild_can_reuse_their_names(
    plans: dict[str, PlanResult], stack: str, window: int
) -> None:
    """Fixed names with a recovery window make the next create fail ("already scheduled for
    deletion"): dev deletes at once (0 = ForceDeleteWithoutRecovery); prod keeps 30 days on the
    secrets it retains, and deletes the agent pool's token (a credential) at once."""
    secrets = [s for s in plans[stack].of_type(SECRET) if not s.get("name").endswith("/deploy-agent-token")]
    assert secrets
    for secret in secrets:
        assert secret.get("recoveryWindowInDays") == window, secret.name


def test_eso_role_is_bound_to_its_service_account_and_reads_only_this_stack(plan: PlanResult) -> None:
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("secrets-eso"))
    (trust,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    cond = trust["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/kubernetes-namespace"] == "external-secrets"
    assert cond["aws:RequestTag/kubernetes-service-account"] == "external-secrets"
    (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("secrets-eso")]
    statements = {s["Sid"]: s for s in json.loads(policy.get("policy"))["Statement"]}
    read = statements["ReadThisStacksSecrets"]
    assert read["Resource"] == [
        f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:eks-platform-{plan.stack}/*"
    ]
    assert sorted(read["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    decrypt = statements["DecryptThroughSecretsManagerOnly"]
    key = next(k for k in plan.of_type("aws:kms/key:Key") if "secrets-kms" in k.name)
    assert decrypt["Resource"] == f"arn:aws:kms:eu-west-1:123456789012:key/{key.name}"
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    }
    association = next(
        a
        for a in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.name.endswith("eso")
    )
    assert (association.get("namespace"), association.get("serviceAccount")) == (
        "external-secrets",
        "external-secrets",
    )


def test_operator_is_ha_in_prod_only(plans: dict[str, PlanResult]) -> None:
    for stack, replicas in (("dev", 1), ("prod", 2)):
        (operator,) = [
            r
            for r in plans[stack].of_type("kubernetes:helm.sh/v3:Release")
            if r.get("name") == "external-secrets"
        ]
        values = operator.get("values")
        assert values["replicaCount"] == replicas and values["webhook"]["replicaCount"] == replicas
        assert values["podDisruptionBudget"]["enabled"] is is_production(stack)
        assert values["leaderElect"] is is_production(stack)
        assert values["serviceAccount"]["name"] == "external-secrets"
        assert values["nodeSelector"] == {"eks-platform.io/node-pool": "system"}


STORE_TYPE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"


def test_store_and_external_secrets_validate_and_use_the_platform_store(plan: PlanResult) -> None:
    stores = plan.of_type(STORE_TYPE)
    (store,) = [s for s in stores if s.get("metadata")["name"] == PLATFORM_STORE]
    externals = plan.of_type(EXTERNAL_SECRET)
    assert externals
    for record in [*stores, *externals]:
        inputs = record.inputs
        validate_custom_resource({k: inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    for record in stores:
        assert "auth" not in record.get("spec")["provider"]["aws"]  # Pod Identity: the default chain
    for record in externals:
        spec = record.get("spec")
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": PLATFORM_STORE}
        assert spec["dataFrom"][0]["extract"]["key"].startswith(f"eks-platform-{plan.stack}/")
        assert store.urn in record.dependencies
    grafana = next(r for r in externals if r.get("metadata")["name"] == "grafana-admin")
    assert grafana.get("metadata")["namespace"] == "monitoring"


def test_every_store_serves_named_namespaces_only(plan: PlanResult, configs) -> None:
    """external-secrets v2.9.0 admits every namespace to a ClusterSecretStore without conditions
    (client_manager.go shouldProcessSecret); each store names its namespaces (no regex, which the
    operator matches unanchored, no label selector, which a namespace's editor could satisfy)."""
    stores = {s.get("metadata")["name"]: s.get("spec") for s in plan.of_type(STORE_TYPE)}
    services = [svc.name for svc in configs[plan.stack].delivery.services]
    assert services, "the stack has a service"
    assert set(stores) == {PLATFORM_STORE, *(service_store(n) for n in services)}
    for name, spec in stores.items():
        (condition,) = spec["conditions"]
        assert set(condition) == {"namespaces"} and condition["namespaces"], name
    # The platform's store serves the namespaces of its own ExternalSecrets, and no service's.
    platform = set(stores[PLATFORM_STORE]["conditions"][0]["namespaces"])
    used = {e.get("metadata")["namespace"] for e in plan.of_type(EXTERNAL_SECRET)}
    assert platform == used and "monitoring" in platform
    assert not platform & set(services)
    assert "prefix" not in stores[PLATFORM_STORE]["provider"]["aws"]


def test_a_services_store_is_confined_to_its_namespace_and_prefix(plan: PlanResult, configs) -> None:
    for svc in configs[plan.stack].delivery.services:
        (store,) = [
            s for s in plan.of_type(STORE_TYPE) if s.get("metadata")["name"] == service_store(svc.name)
        ]
        spec = store.get("spec")
        assert spec["conditions"] == [{"namespaces": [svc.name]}]
        # A trailing `/`: the operator prepends the prefix as a plain string (secretsmanager.go fetch),
        # so without it `catalog` would also read `catalog-admin/...`.
        assert spec["provider"]["aws"] == {
            "service": "SecretsManager",
            "region": "eu-west-1",
            "prefix": f"eks-platform-{plan.stack}/{svc.name}/",
        }
        assert "platform:secrets:Secrets$" in store.urn
        operator = next(
            r for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.get("name") == "external-secrets"
        )
        assert operator.urn in store.dependencies
    assert plan.outputs["serviceSecretStores"] == {
        s.name: service_store(s.name) for s in configs[plan.stack].delivery.services
    }


@pytest.mark.parametrize(
    ("namespaces", "prefix", "message"),
    [([], None, "every namespace"), (["catalog"], "eks-platform-dev/catalog", "must end in '/'")],
)
def test_a_store_spec_without_namespaces_or_with_an_open_prefix_is_refused(
    namespaces: list[str], prefix: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store_spec("eu-west-1", namespaces, prefix=prefix)


def test_namespaces_enforce_pod_security(plan: PlanResult) -> None:
    group = next(
        r for r in plan.of_type("kubernetes:yaml/v2:ConfigGroup") if r.name.endswith("namespaces-group")
    )
    levels = {o["metadata"]["name"]: o["metadata"]["labels"] for o in group.get("objs")}
    assert levels["monitoring"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert levels["external-secrets"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert all(lbl["pod-security.kubernetes.io/warn"] == "restricted" for lbl in levels.values())


def _with_receiver(stack: str, value: str, secret: bool) -> tuple[dict[str, str], frozenset[str]]:
    raw, keys = stack_config(stack)
    raw[f"{PROJECT}:alertReceiverUrl"] = value
    secret_keys = frozenset(keys) | ({f"{PROJECT}:alertReceiverUrl"} if secret else set())
    return raw, secret_keys


def test_receiver_url_must_be_https_and_is_never_shown() -> None:
    raw, keys = _with_receiver("prod", "http://hooks.example.com/T000/B000/XXXX", secret=True)
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, "prod", "Pulumi.prod.yaml", keys)
    (issue,) = info.value.issues
    assert issue.key == f"{PROJECT}:alertReceiverUrl" and "https://" in issue.message
    assert "hooks.example.com" not in str(info.value)


def test_receiver_url_must_be_a_secret() -> None:
    raw, keys = _with_receiver("prod", "https://hooks.example.com/T000/B000/XXXX", secret=False)
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, "prod", "Pulumi.prod.yaml", keys)
    (issue,) = info.value.issues
    assert "must be a secret" in issue.message and "hooks.example.com" not in str(info.value)


def test_receiver_url_from_secret_config_reaches_secrets_manager_only() -> None:
    url = "https://hooks.example.com/services/T000/B000/abcdef"
    raw, keys = _with_receiver("dev", url, secret=True)
    assert validate(raw, PROJECT, "dev", "Pulumi.dev.yaml", keys).secret("alertReceiverUrl") is not None
    result = run_program("dev", raw, secret_keys=sorted(keys))
    assert not any(url in json.dumps(r.inputs) for r in result.records)
    version = next(
        v
        for v in result.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if v.name.endswith("alertmanager-receiver")
    )
    assert json.loads(version.get("secretString")) == {"slack-api-url": url}
    names = [
        r.get("metadata")["name"] for r in result.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")
    ]
    assert "alertmanager-receiver" in names


def test_offline_placeholder_passes_the_format_check() -> None:
    raw, keys = _with_receiver("dev", SECRET_PLACEHOLDER, secret=True)
    assert validate(raw, PROJECT, "dev", "Pulumi.dev.yaml", keys).secret("alertReceiverUrl") is not None
