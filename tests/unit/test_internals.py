"""What packaged components create inside themselves, and what an import adopts (analysis/internals.py).

The children come from platform/component-internals.yaml (pulumi/pulumi-eks nodejs/eks/cluster/
cluster.ts and authenticationMode.ts at 7bf0c1b1, pinned pulumi_eks 4.4.0); the offline engine runs
the program's transforms over them (tools/mocks.py), so the plan shows the transform's effect.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

import pulumi
import pytest

import components.cluster
import components.identity
import components.network
from analysis.graph import build, from_document
from analysis.internals import after_destroy, check, children, destroyed, holds
from analysis.rehearsal import section
from components.cluster import CREATOR_ADMIN, creator_admin_off
from model.findings import Finding
from model.records import Account, PlanResult, Registration, reveal
from tests.unit.rehearsal_plans import mutate, reg
from tools.mocks import ACCOUNT_ID, ROOT, run_stack
from tools.plan import run_identity

CLUSTER = "eks:index:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@cache
def identity_records(stack: str) -> tuple[Registration, ...]:
    """The stack's identity project (identity/): its Deployments settings are the platform's deploy
    path, so the rehearsal judges the platform plan with them, as `make plan` does."""
    return tuple(run_identity(stack).records)


_REBUILT: dict[tuple[str, str], PlanResult] = {}


def rebuilt_plan(stack: str, account: Account) -> PlanResult:
    """`run_stack(stack, account)`, run once per worker for one stack and account: several tests
    judge the same rebuild (prod after one destroy, dev with its control-plane group adopted), none
    changes it (`mutate` copies). Not for a test that patches the program: it calls run_stack."""
    key = (stack, json.dumps(dataclasses.asdict(account), sort_keys=True))
    if key not in _REBUILT:
        _REBUILT[key] = run_stack(stack, account)
    return _REBUILT[key]


def rules(plan: PlanResult, level: str | None = None) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in section(plan.records, plan.lookups, identity_records(plan.stack))[1]:
        if level is None or f.level == level:
            out.setdefault(f.rule, []).append(f)
    return out


def eks_child(r: Registration, typ: str) -> dict[str, Any]:
    (child,) = [c for c in r.children if c["type"] == typ]
    return child


# -- the transform -----------------------------------------------------------------------------


def transformed(typ: str, props: dict[str, Any], ignore: list[str]) -> pulumi.ResourceTransformResult | None:
    args = pulumi.ResourceTransformArgs(
        custom=True, type_=typ, name="c", props=props, opts=pulumi.ResourceOptions(ignore_changes=ignore)
    )
    return creator_admin_off(args)


def test_transform_turns_the_creator_bootstrap_off_and_keeps_it_ignored() -> None:
    props = {
        "name": "c",
        "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
    }
    result = transformed("aws:eks/cluster:Cluster", props, ["bootstrapSelfManagedAddons"])
    assert result is not None
    assert result.props["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert result.props["name"] == "c"
    # ForceNew in terraform-provider-aws: an existing cluster must keep its value, not be replaced.
    assert result.opts.ignore_changes == ["bootstrapSelfManagedAddons", CREATOR_ADMIN]
    assert transformed("aws:eks/addon:Addon", {"addonName": "kube-proxy"}, []) is None
    with pytest.raises(ValueError, match="accessConfig as an object"):
        transformed("aws:eks/cluster:Cluster", {"name": "c"}, [])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_plan_records_what_the_transform_does_to_the_component_cluster(
    plans: dict[str, PlanResult], stack: str
) -> None:
    eks = plans[stack].one(CLUSTER)
    # What pulumi-eks builds from these inputs (the data) asks EKS for the creator's admin entry ...
    built = children(CLUSTER, eks.name, reveal(eks.raw_inputs))
    (raw,) = [c for c in built if c["type"] == "aws:eks/cluster:Cluster"]
    assert raw["props"]["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is True
    # ... and the engine ran the program's transform over it: off, and still ignored on update.
    child = eks_child(eks, "aws:eks/cluster:Cluster")
    assert child["props"]["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert CREATOR_ADMIN in child["ignoreChanges"]
    # Every admin entry is an explicit child the program asked for.
    entries = {
        c["props"]["principalArn"] for c in eks.children if c["type"] == "aws:eks/accessEntry:AccessEntry"
    }
    assert entries == {e["principalArn"] for e in eks.get("accessEntries").values()}
    assert not rules(plans[stack]).get("rehearsal-component-creator-admin")


def test_without_the_transform_the_first_up_collides_with_the_creator_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug reintroduced in the program itself: the whole dev program, run with a no-op transform."""
    monkeypatch.setattr(components.cluster, "creator_admin_off", lambda args: None)
    dev = run_stack("dev")
    (finding,) = rules(dev, "mandatory")["rehearsal-component-creator-admin"]
    assert "ResourceInUseException" in finding.message and "platform-admins" in finding.message


def test_a_saved_plan_without_recorded_children_is_judged_from_the_data(dev: PlanResult) -> None:
    document = {"resources": [r.document() for r in dev.records]}
    records = from_document(document)
    assert next(r for r in records if r.type == CLUSTER).children  # the document carries them
    stripped = [dataclasses.replace(r, children=[]) for r in records]
    found = [f.rule for f in check(build(stripped, dev.lookups))]
    assert found == ["rehearsal-component-creator-admin"]


# -- duplicates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "duplicated"),
    [
        ({"corednsAddonOptions": {"enabled": True}}, "coredns"),
        ({"useDefaultVpcCni": False}, "vpc-cni"),
    ],
)
def test_an_addon_the_component_creates_too_is_a_duplicate(
    dev: PlanResult, change: dict[str, Any], duplicated: str
) -> None:
    def enable(r: Registration) -> Registration:
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, **change}, children=[])

    broken = mutate(dev, enable, lambda r: r.type == CLUSTER)
    (finding,) = rules(broken, "mandatory")["rehearsal-component-duplicate"]
    addon = next(r for r in dev.of_type("aws:eks/addon:Addon") if r.get("addonName") == duplicated)
    assert finding.urn == addon.urn


def test_the_clusters_oidc_provider_created_twice_is_a_duplicate_and_github_s_is_not(dev: PlanResult) -> None:
    assert dev.one(CLUSTER).get("createOidcProvider") is True
    github = [r for r in dev.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")]
    assert all("oidc.eks." not in str(r.get("url")) for r in github)
    twice = reg(
        "cluster-oidc",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        inputs={"url": "https://oidc.eks.eu-west-1.amazonaws.com/id/0123"},
    )
    broken = dataclasses.replace(dev, records=[*dev.records, twice])
    assert [f.urn for f in rules(broken, "mandatory")["rehearsal-component-duplicate"]] == [twice.urn]


@pytest.mark.parametrize(
    ("when", "inputs", "expected"),
    [
        ({"input": "a.b", "equals": True, "default": True}, {}, True),
        ({"input": "a.b", "equals": True, "default": True}, {"a": {"b": False}}, False),
        ({"input": "a", "present": True}, {"a": "API"}, True),
        ({"any": [{"input": "a", "present": True}, {"input": "b", "equals": 1, "default": 1}]}, {}, True),
        ({"all": [{"input": "a", "present": True}, {"input": "b", "equals": 1, "default": 1}]}, {}, False),
    ],
)
def test_conditions(when: dict[str, Any], inputs: dict[str, Any], expected: bool) -> None:
    assert holds(when, inputs) is expected


# -- destroy -> up -> destroy -> up, replayed on the plan --------------------------------------


def control_plane_logs(plan: PlanResult) -> Registration:
    cluster_name = plan.one(CLUSTER).get("name")
    (group,) = [r for r in plan.of_type(LOG_GROUP) if r.get("name") == f"/aws/eks/{cluster_name}/cluster"]
    return group


def test_dev_survives_destroy_up_destroy_up(dev: PlanResult) -> None:
    group = control_plane_logs(dev)
    name = group.get("name")
    assert group.import_id is None and not group.retain_on_delete  # a fresh account: created
    assert "rehearsal-import-updates" not in rules(dev)

    held: dict[str, dict[str, Any]] = {}
    plan = dev
    for generation in (1, 2):
        held = after_destroy(plan.records, held)
        # EKS recreated the group after the cluster went: no retention, no key, no tags.
        assert held[name] == {"retentionInDays": 0, "kmsKeyId": "", "logGroupClass": "STANDARD", "tags": {}}
        plan = rebuilt_plan("dev", Account(held, generation))
        adopted = control_plane_logs(plan)
        assert adopted.import_id == name
        found = rules(plan)
        assert "mandatory" not in {f.level for fs in found.values() for f in fs}, found
        (update,) = found["rehearsal-import-updates"]
        assert "kmsKeyId, retentionInDays" in update.message


def test_prod_rebuild_adopts_its_retained_group_under_a_new_key(prod: PlanResult) -> None:
    group = control_plane_logs(prod)
    assert group.retain_on_delete and group.protect
    held = after_destroy(prod.records, {})
    old_key = held[group.get("name")]["kmsKeyId"]
    assert old_key == group.get("kmsKeyId")  # kept as declared
    rebuilt = rebuilt_plan("prod", Account(held, 1))
    adopted = control_plane_logs(rebuilt)
    assert adopted.import_id == group.get("name") and adopted.get("kmsKeyId") != old_key
    found = rules(rebuilt)
    assert not [f for fs in found.values() for f in fs if f.level == "mandatory" and f.urn == adopted.urn]
    (update,) = [f for f in found["rehearsal-import-updates"] if f.urn == adopted.urn]
    assert "updates kmsKeyId " in update.message


def test_an_import_whose_inputs_force_a_replacement_is_mandatory(dev: PlanResult) -> None:
    """The kind reintroduced: the program declares what the adopted group cannot become in place."""
    held = after_destroy(dev.records, {})
    rebuilt = rebuilt_plan("dev", Account(held, 1))

    def infrequent(r: Registration) -> Registration:
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, "logGroupClass": "INFREQUENT_ACCESS"})

    broken = mutate(rebuilt, infrequent, lambda r: r.urn == control_plane_logs(rebuilt).urn)
    (finding,) = rules(broken, "mandatory")["rehearsal-import-replaces"]
    assert "logGroupClass" in finding.message
    # And an import the plan cannot compare (no recorded lookup of it) is said, not silently passed.
    blind = dataclasses.replace(
        rebuilt, lookups=[c for c in rebuilt.lookups if "getLogGroup:" not in c["token"]]
    )
    assert "cannot say" in rules(blind)["rehearsal-import-updates"][0].message


# -- prod: every retained fixed name adopted, destroy -> up -> destroy -> up ---------------------

FLOW_LOGS = "/aws/vpc/eks-platform-prod-network/flow-logs"
REPOSITORY = "aws:ecr/repository:Repository"
SECRET = "aws:secretsmanager/secret:Secret"
# The registry of the first service prod lists, whichever services the checkout has.
SERVICE_REPOSITORY = (
    "eks-platform-prod/" + sorted(p.parent.parent.name for p in ROOT.glob("services/*/deploy/prod.yaml"))[0]
)


def retained_names(plan: PlanResult) -> dict[str, Registration]:
    return {r.get("name"): r for r in plan.records if r.retain_on_delete and r.get("name")}


def mandatory(plan: PlanResult) -> list[Finding]:
    return [f for fs in rules(plan, "mandatory").values() for f in fs]


def test_prod_survives_destroy_up_destroy_up(prod: PlanResult) -> None:
    """Every name prod retains is looked up and, once a destroy left it, imported by the next `up`
    (the flow-log group, the control-plane group, the ECR repositories, the secrets), with no
    mandatory finding in either generation; the ECR repository keeps the key its images are
    encrypted with (encryption_configuration is ForceNew: terraform-provider-aws
    internal/service/ecr/repository.go @0072eea2d604), the rest take the new stack's keys in place."""
    names = retained_names(prod)
    # KMS aliases are not retained: a destroy deletes them (DeleteAlias: terraform-provider-aws
    # internal/service/kms/alias.go @01c08000ddb1), so the rebuilt stack's new keys take the names.
    assert prod.of_type("aws:kms/alias:Alias")
    assert not [a for a in prod.of_type("aws:kms/alias:Alias") if a.retain_on_delete]
    repository = SERVICE_REPOSITORY  # a service's registry (whichever services the checkout has)
    assert {
        FLOW_LOGS,
        "/aws/eks/eks-platform-prod/cluster",
        repository,
        "eks-platform-prod/argocd-oidc",
    } <= set(names)
    assert not [r for r in names.values() if r.import_id]  # a fresh account: created
    first_key = names[repository].get("encryptionConfigurations.0.kmsKey")

    account, plan = Account(), prod
    for generation in (1, 2):
        account = destroyed(plan.records, account)
        assert account.generation == generation
        assert set(names) <= {*account.log_groups, *account.repositories, *account.secrets}
        plan = rebuilt_plan("prod", account)
        assert not mandatory(plan), mandatory(plan)
        rebuilt = retained_names(plan)
        assert set(rebuilt) == set(names)
        for name, r in rebuilt.items():
            expected = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT_ID}:secret:{name}-AbCdEf"
            assert r.import_id == (expected if r.type == SECRET else name), name
        assert rebuilt[repository].get("encryptionConfigurations.0.kmsKey") == first_key
        assert rebuilt[FLOW_LOGS].get("kmsKeyId") != names[FLOW_LOGS].get("kmsKeyId")  # the new key
        assert not [a for a in plan.of_type("aws:kms/alias:Alias") if a.import_id]  # created again
        found = rules(plan)
        updates = {f.urn for f in found.get("rehearsal-import-updates", [])}
        assert rebuilt[FLOW_LOGS].urn in updates and rebuilt["eks-platform-prod/argocd-oidc"].urn in updates


def without_adoption(monkeypatch: pytest.MonkeyPatch, *, look: bool) -> None:
    """The flow-log group as it was: never looked up (look=False), or looked up and not imported."""
    real = components.identity.existing

    def forget(type_: str, name: str, opts: pulumi.InvokeOptions) -> None:
        if look:
            real(type_, name, opts)

    monkeypatch.setattr(components.network, "existing", forget)


@pytest.mark.parametrize("look", [False, True])
def test_a_retained_name_not_adopted_is_mandatory(
    monkeypatch: pytest.MonkeyPatch, prod: PlanResult, look: bool
) -> None:
    account = destroyed(prod.records, Account())
    without_adoption(monkeypatch, look=look)
    plan = run_stack("prod", Account() if not look else account)
    (finding,) = mandatory(plan)
    assert finding.rule == "rehearsal-reserved-names" and FLOW_LOGS in finding.message
    assert ("does not look the name up" if not look else "does not import it") in finding.message


@pytest.mark.parametrize(
    ("typ", "name"), [(REPOSITORY, SERVICE_REPOSITORY), (SECRET, "eks-platform-prod/grafana-admin")]
)
def test_an_adopted_name_found_but_not_imported_is_mandatory(prod: PlanResult, typ: str, name: str) -> None:
    rebuilt = rebuilt_plan("prod", destroyed(prod.records, Account()))
    broken = mutate(
        rebuilt, lambda r: dataclasses.replace(r, import_id=None), lambda r: r.get("name") == name
    )
    (finding,) = mandatory(broken)
    assert finding.urn == next(r.urn for r in rebuilt.of_type(typ) if r.get("name") == name)
    assert "does not import it" in finding.message


def test_ecr_adopted_under_a_new_key_would_be_replaced(prod: PlanResult) -> None:
    """Declaring the new registry key on the adopted repository is a replacement (mandatory)."""
    rebuilt = rebuilt_plan("prod", destroyed(prod.records, Account()))
    new_key = f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/the-rebuilt-stacks-key"

    def rekey(r: Registration) -> Registration:
        configs = [{"encryptionType": "KMS", "kmsKey": new_key}]
        return dataclasses.replace(r, raw_inputs={**r.raw_inputs, "encryptionConfigurations": configs})

    broken = mutate(rebuilt, rekey, lambda r: r.type == REPOSITORY)
    # One finding per repository, whatever the number of services: no test assumes it (a second
    # service from `make new-service` must pass the suite).
    findings = rules(broken, "mandatory")["rehearsal-import-replaces"]
    repositories = [r.urn for r in broken.of_type(REPOSITORY)]
    assert repositories and sorted(str(f.urn) for f in findings) == sorted(repositories)
    assert all("encryptionConfigurations" in f.message for f in findings)


def test_a_secret_in_its_recovery_window_cannot_be_adopted(prod: PlanResult) -> None:
    """A destroy that deletes a fixed-name secret with a window leaves its name taken; the lookup does
    not see it (ListSecrets omits it; secret.go findSecretByID reads it as not found), so the plan
    names it and what a person does."""
    # The agent pool's token (identity/) is a credential: force-deleted, its name free at once.
    (agent_token,) = [r for r in run_identity("prod").of_type(SECRET) if "agent-token" in r.name]
    assert agent_token.get("recoveryWindowInDays") == 0
    # Any other fixed-name secret that a destroy deletes with a window keeps its name taken.
    token = next(r for r in prod.of_type(SECRET) if r.get("name") == "eks-platform-prod/grafana-admin")
    windowed = mutate(
        prod,
        lambda r: dataclasses.replace(
            r, raw_inputs={**r.raw_inputs, "recoveryWindowInDays": 30}, retain_on_delete=False
        ),
        lambda r: r.urn == token.urn,
    )
    account = destroyed(windowed.records, Account())
    assert account.secrets[token.get("name")] == {"scheduledForDeletion": True}
    (finding,) = mandatory(windowed)
    assert finding.urn == token.urn
    assert "restore-secret" in finding.message and "--force-delete-without-recovery" in finding.message
