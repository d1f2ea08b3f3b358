"""Platform secrets: AWS Secrets Manager as the source, External Secrets to bring them in-cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.helm import ChartSpec, merge, release
from components.iam import document, pod_identity_role
from components.identity import AwsIdentity, existing
from components.kms import EncryptionKey, EncryptionKeyArgs
from components.settle import pod_identity_settled

NAMESPACE, SERVICE_ACCOUNT = "external-secrets", "external-secrets"
# The platform's own ClusterSecretStore, usable only from the namespaces of its targets.
PLATFORM_STORE = "platform-secrets"
REFRESH = "1h"

# How the pinned operator (external-secrets v2.9.0, chart 2.9.0) confines a ClusterSecretStore; the
# stores below rely on exactly this, read at tag v2.9.0 of external-secrets/external-secrets:
# - `spec.conditions` is enforced by the controller alone, when it resolves the store for an
#   ExternalSecret (or PushSecret) of a namespace: pkg/controllers/secretstore/client_manager.go,
#   Manager.Get (l. 114-142) calls shouldProcessSecret (l. 227-279), which admits every namespace
#   when `conditions` is empty and otherwise fails the sync with "using cluster store %q is not
#   allowed from namespace %q: denied by spec.condition". The store of a `sourceRef` goes through
#   the same Get. The webhook does not look at stores (apis/externalsecrets/v1/
#   externalsecret_validator.go): a mismatched ExternalSecret is admitted and never syncs.
# - `conditions[].namespaces` is matched as the label kubernetes.io/metadata.name, which the API
#   server sets to the namespace's name; `namespaceRegexes` go through regexp.MatchString, which is
#   unanchored ("catalog" admits "my-catalog-2"), so the stores name namespaces, never patterns.
# - `provider.aws.prefix` is prepended as a plain string to remoteRef.key, for GetSecret and
#   GetSecretMap (dataFrom.extract) alike: providers/v1/aws/secretsmanager/secretsmanager.go, fetch
#   (l. 144-171, `key := sm.prefix + ref.Key`). An ARN or a `..` in the key stays a name below the
#   prefix (Secrets Manager names are flat; `:` is not a name character), so with a prefix that
#   ends in `/` the key cannot leave it. `dataFrom.find` does not apply the prefix (findByName,
#   fetchWithBatch, l. 369-416 and 729-758): it needs secretsmanager:ListSecrets or
#   BatchGetSecretValue, which the operator's role does not have (eso_policy).


@dataclass(frozen=True, kw_only=True)
class SecretTarget:
    """A Secrets Manager secret materialised as a Kubernetes Secret by an ExternalSecret."""

    namespace: str
    name: str
    # Secrets Manager secret name; keys of its JSON value become the Secret's keys.
    remote: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SecretsArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    prefix: str
    # The cluster's name as its Output, so the Pod Identity association follows the cluster.
    cluster_name: pulumi.Input[str]
    cluster_arn: str
    # Days a deleted secret stays recoverable: 30 in prod; 0 (delete at once) in a stack that is
    # rebuilt, since a fixed name cannot be reused while it is scheduled for deletion.
    recovery_window_days: int
    # Days before a deleted KMS key is gone (7-30).
    key_deletion_window_days: int
    chart: ChartSpec
    base_values: dict[str, Any]
    high_availability: bool
    protect: bool
    # Alertmanager receiver URL from Pulumi secret config (None: no receiver), and the key it is
    # stored under (the file name Alertmanager reads: `slack-api-url` or `webhook-url`).
    alert_receiver_url: pulumi.Output[str] | None
    alert_receiver_key: str
    # Extra secrets the platform reads but does not own (e.g. the GitOps repo credentials).
    external_secret_names: tuple[str, ...]
    # Secrets the stack creates empty, as `<prefix>/<name>`, and an operator fills (a value no
    # config may hold, e.g. the Argo CD OIDC client secret): (name, description) pairs.
    operator_secrets: tuple[tuple[str, str], ...] = ()
    targets: tuple[SecretTarget, ...]
    # The services (delivery.services; each runs in the namespace of its name): one ClusterSecretStore
    # each, `service-<name>`, usable from that namespace only and reading only `<prefix>/<name>/`.
    services: tuple[str, ...] = ()
    # Namespaces (and system nodes) that must exist first.
    depends_on: list[pulumi.Resource]


def _placement(ha: bool, app: str) -> dict[str, Any]:
    """Prod: the replicas of one Deployment on different nodes (required) and zones (spread)."""
    if not ha:
        return {}
    selector = {
        "matchLabels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": "external-secrets"}
    }
    return {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": selector,
            }
        ],
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"}
                ]
            }
        },
    }


class Secrets(pulumi.ComponentResource):
    """The platform's secrets in AWS Secrets Manager, and External Secrets to use them in-cluster.

    Guarantees: a customer-managed KMS key (rotation on, 30-day window and `protect` in prod)
    encrypts every secret; values are generated (pulumi-random), come from Pulumi secret config or
    are put by an operator into a secret the stack created empty, never from plain config, and
    never appear in plain inputs, Helm values or outputs; secrets keep a 30-day recovery window
    in prod, and a prod destroy leaves them (`retain_on_delete`). The External Secrets Operator
    runs on the system nodes with a Pod Identity role bound to its service account alone, allowed
    to read only this stack's secrets (by name prefix, plus the named external ones) and to
    decrypt only through Secrets Manager with this key. One ExternalSecret per target brings the
    values into Kubernetes Secrets, refreshed hourly.

    Every ClusterSecretStore has `conditions`: the platform's (`platform-secrets`) serves only the
    namespaces of the targets; each service gets its own (`service-<name>`), usable from the
    service's namespace alone and reading only `<prefix>/<name>/<key>`. The confinement is the
    operator's (conditions and prefix, see the notes above), not IAM's: the role reads the whole
    prefix, and does not get ListSecrets or BatchGetSecretValue, which `dataFrom.find` would need.
    """

    store_name: pulumi.Output[str]
    service_stores: pulumi.Output[dict[str, str]]
    key_arn: pulumi.Output[str]
    secret_arns: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:secrets:Secrets", name, None, opts)
        ident = args.identity
        child = pulumi.ResourceOptions(parent=self)
        window = args.recovery_window_days

        key = EncryptionKey(
            f"{name}-kms",
            EncryptionKeyArgs(
                identity=ident,
                description=f"{args.prefix}: Secrets Manager secrets of the platform",
                log_group_patterns=(),
                deletion_window_days=args.key_deletion_window_days,
                protect=args.protect,
            ),
            opts=child,
        )

        def secret(short: str, description: str) -> aws.secretsmanager.Secret:
            secret_name = f"{args.prefix}/{short}"
            # Prod retains the secret, so the next stack of the same name adopts it (the create would
            # fail with ResourceExistsException) and keeps its value; declaring the new key re-encrypts
            # the AWSCURRENT, AWSPENDING and AWSPREVIOUS versions under it (UpdateSecret; AWS Secrets
            # Manager User Guide, "Change the encryption key for a secret").
            held = (
                existing("aws:secretsmanager/secret:Secret", secret_name, pulumi.InvokeOptions(parent=self))
                if args.protect
                else None
            )
            return aws.secretsmanager.Secret(
                f"{name}-{short}",
                name=secret_name,
                description=description,
                kms_key_id=key.key_arn,
                recovery_window_in_days=window,
                # Prod: a destroy leaves the secret in the account, like the key that encrypts it
                # (docs/retiring-a-stack.md). Its value survives the versions' delete: the provider
                # cannot remove the AWSCURRENT label (pulumi_aws 7.51.1 secretsmanager.SecretVersion).
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=args.protect,
                    retain_on_delete=args.protect,
                    import_=held.import_id if held else None,
                ),
            )

        password = random.RandomPassword(
            f"{name}-grafana-admin", length=32, special=True, override_special="-_.~", opts=child
        )
        grafana = secret("grafana-admin", "Grafana admin login (generated)")
        aws.secretsmanager.SecretVersion(
            f"{name}-grafana-admin",
            secret_id=grafana.id,
            secret_string=secret_json({"admin-user": "admin", "admin-password": password.result}),
            opts=child,
        )
        receiver = secret("alertmanager-receiver", "Alertmanager receiver URL (Slack or webhook)")
        if args.alert_receiver_url is not None:
            aws.secretsmanager.SecretVersion(
                f"{name}-alertmanager-receiver",
                secret_id=receiver.id,
                secret_string=secret_json({args.alert_receiver_key: args.alert_receiver_url}),
                opts=child,
            )

        for short, description in args.operator_secrets:
            # No SecretVersion: the value is put with `aws secretsmanager put-secret-value`, so
            # Pulumi never holds it and never overwrites it.
            secret(short, description)

        readable = [ident.arn("secretsmanager", f"secret:{args.prefix}/*")] + [
            ident.arn("secretsmanager", f"secret:{n}-*") for n in args.external_secret_names
        ]
        _, association = pod_identity_role(
            f"{name}-eso",
            account_id=ident.account_id,
            cluster_name=args.cluster_name,
            cluster_arn=args.cluster_arn,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy=key.key_arn.apply(lambda key_arn: eso_policy(ident, readable, key_arn)),
            parent=self,
            permissions_boundary=args.permissions_boundary,
        )
        # The operator's namespace, then the association, then a pause before its pods start.
        settled = pod_identity_settled(
            f"{name}-pod-identity-settle",
            "external-secrets-pod-identity-settle",
            association,
            association.association_id,
            parent=self,
            after=args.depends_on,
        )

        ha = args.high_availability
        operator = release(
            f"{name}-operator",
            release_name="external-secrets",
            namespace=NAMESPACE,
            spec=args.chart,
            values=merge(
                args.base_values,
                {
                    "replicaCount": 2 if ha else 1,
                    "leaderElect": ha,
                    "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
                    **_placement(ha, "external-secrets"),
                    "webhook": {
                        "replicaCount": 2 if ha else 1,
                        "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
                        **_placement(ha, "external-secrets-webhook"),
                    },
                    "certController": {"podDisruptionBudget": {"enabled": False}},
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[settled, *args.depends_on]),
        )
        store = k8s.apiextensions.CustomResource(
            f"{name}-store",
            api_version="external-secrets.io/v1",
            kind="ClusterSecretStore",
            metadata={"name": PLATFORM_STORE},
            # No prefix: a target may name a secret outside the stack's (delivery.gitops.credentialsSecret).
            spec=store_spec(ident.region, sorted({t.namespace for t in args.targets})),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[operator]),
        )
        for service in args.services:
            k8s.apiextensions.CustomResource(
                f"{name}-store-{service}",
                api_version="external-secrets.io/v1",
                kind="ClusterSecretStore",
                metadata={"name": service_store(service)},
                spec=store_spec(ident.region, [service], prefix=f"{args.prefix}/{service}/"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[operator]),
            )
        for target in args.targets:
            k8s.apiextensions.CustomResource(
                f"{name}-{target.namespace}-{target.name}",
                api_version="external-secrets.io/v1",
                kind="ExternalSecret",
                metadata={"name": target.name, "namespace": target.namespace},
                spec=external_secret_spec(target),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[store]),
            )

        self.store_name = pulumi.Output.from_input(PLATFORM_STORE)
        self.service_stores = pulumi.Output.from_input({s: service_store(s) for s in args.services})
        self.key_arn = key.key_arn
        self.secret_arns = pulumi.Output.all(grafana=grafana.arn, receiver=receiver.arn)
        self.register_outputs(
            {
                "store_name": self.store_name,
                "service_stores": self.service_stores,
                "key_arn": self.key_arn,
                "secret_arns": self.secret_arns,
            }
        )


def service_store(service: str) -> str:
    """The ClusterSecretStore of a service (charts/microservice templates/externalsecret.yaml
    derives the same name from its release, which is the service's name)."""
    return f"service-{service}"


def store_spec(region: str, namespaces: list[str], prefix: str | None = None) -> dict[str, Any]:
    """A Secrets Manager ClusterSecretStore usable only from `namespaces` (by name: see the notes at
    the top), reading names below `prefix` when given (which must end in `/`, or `<prefix>` would
    also reach `<prefix>-other/...`)."""
    if not namespaces:
        raise ValueError("a ClusterSecretStore without namespaces would serve every namespace")
    if prefix is not None and not prefix.endswith("/"):
        raise ValueError(f"store prefix {prefix!r} must end in '/'")
    # No `auth`: the controller uses its Pod Identity credentials (the default chain).
    aws_provider: dict[str, Any] = {"service": "SecretsManager", "region": region}
    if prefix is not None:
        aws_provider["prefix"] = prefix
    return {"provider": {"aws": aws_provider}, "conditions": [{"namespaces": list(namespaces)}]}


def eso_policy(ident: AwsIdentity, readable: list[str], key_arn: str) -> str:
    """Read this stack's secrets (and the named external ones); decrypt only through Secrets Manager.

    Never add secretsmanager:ListSecrets or BatchGetSecretValue: `dataFrom.find` would then read
    past a store's prefix (external-secrets v2.9.0 secretsmanager.go fetchWithBatch, l. 729-758)."""
    via = f"secretsmanager.{ident.region}.{ident.dns_suffix}"
    return document(
        {
            "Sid": "ReadThisStacksSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": readable,
        },
        {
            "Sid": "DecryptThroughSecretsManagerOnly",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": via}},
        },
    )


def secret_json(value: dict[str, Any]) -> pulumi.Output[str]:
    """A JSON document marked secret, whatever its parts are marked."""
    payload: Any = pulumi.Output.json_dumps(value)
    return cast(pulumi.Output[str], pulumi.Output.secret(payload))


def external_secret_spec(target: SecretTarget) -> dict[str, Any]:
    template: dict[str, Any] = {"type": "Opaque"}
    if target.labels:
        template["metadata"] = {"labels": target.labels}
    return {
        "refreshInterval": REFRESH,
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": PLATFORM_STORE},
        "target": {"name": target.name, "creationPolicy": "Owner", "template": template},
        # Every key of the Secrets Manager JSON value becomes a key of the Kubernetes Secret.
        "dataFrom": [{"extract": {"key": target.remote}}],
    }
