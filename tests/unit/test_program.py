"""Whole-program tests: both committed stacks run under mocks; assert what a reviewer cares about."""

from __future__ import annotations

import ipaddress
import json

import pytest

from components.cluster import CONTROL_PLANE_LOG_TYPES
from model.records import PlanResult
from stacks.data import addon_versions
from tests.stackinfo import is_production
from tools.mocks import stack_names

AWS_PROVIDER = "pulumi:providers:aws"
K8S_PROVIDER = "pulumi:providers:kubernetes"


def cluster_key(plan: PlanResult):
    """The KMS key of the control plane (EKS secrets, log groups)."""
    (key,) = [k for k in plan.of_type("aws:kms/key:Key") if k.name.endswith("logs-secrets-key")]
    return key


def provider_ref(plan: PlanResult, typ: str) -> str:
    provider = plan.one(typ)
    return f"{provider.urn}::{provider.name}-id"


# -- providers, names, parentage ---------------------------------------------------------------


def test_every_resource_uses_the_explicit_providers(plan: PlanResult) -> None:
    aws_ref, k8s_ref = provider_ref(plan, AWS_PROVIDER), provider_ref(plan, K8S_PROVIDER)
    for r in plan.records:
        if r.type.startswith("aws:"):
            assert r.provider == aws_ref, r.urn
        elif r.type.startswith("kubernetes:"):
            assert r.provider == k8s_ref, r.urn
        elif r.type.startswith("random:"):
            assert r.provider == provider_ref(plan, "pulumi:providers:random"), r.urn
        elif r.type.startswith(("eks:", "awsx:")):
            assert r.providers.get("aws") == aws_ref, r.urn
    assert len(plan.of_type(AWS_PROVIDER)) == 1
    assert len(plan.of_type(K8S_PROVIDER)) == 1
    # Nothing may fall back to a default provider (they are disabled in Pulumi.yaml).
    assert all(r.provider for r in plan.records if r.custom and not r.type.startswith("pulumi:providers:"))


def test_aws_provider_region_and_default_tags(plan: PlanResult, configs) -> None:
    cfg = configs[plan.stack]
    provider = plan.one(AWS_PROVIDER)
    assert provider.get("region") == cfg.region
    # Provider config arrives JSON-encoded, as the engine sends it.
    tags = json.loads(provider.get("defaultTags"))["tags"]
    assert tags["platform:stack"] == plan.stack
    assert tags["managed-by"] == "pulumi"
    assert tags["environment"] == plan.stack


def test_names_derive_from_the_stack_prefix(plan: PlanResult) -> None:
    prefix = f"eks-platform-{plan.stack}"
    assert all(r.name.startswith(prefix) for r in plan.records)
    roles = plan.of_type("aws:iam/role:Role")
    assert roles and all(len(r.get("name")) <= 64 and r.get("name").startswith(prefix) for r in roles)


def test_children_are_parented_to_their_component(plan: PlanResult) -> None:
    by_type = {r.type: r for r in plan.records}
    assert "platform:cluster:Cluster$eks:index:Cluster" in by_type["eks:index:Cluster"].urn
    assert "platform:network:Network$awsx:ec2:Vpc" in by_type["awsx:ec2:Vpc"].urn
    assert "platform:nodegroups:SystemNodeGroup$eks:index:ManagedNodeGroup" in (
        by_type["eks:index:ManagedNodeGroup"].urn
    )
    assert "platform:kms:EncryptionKey$aws:kms/key:Key" in by_type["aws:kms/key:Key"].urn


# -- encryption, logging, protection --------------------------------------------------------------


def test_kms_key_rotates_and_has_a_stack_sized_deletion_window(plan: PlanResult) -> None:
    key = cluster_key(plan)
    assert key.get("enableKeyRotation") is True
    assert key.get("deletionWindowInDays") == (30 if is_production(plan.stack) else 7)
    policy = json.loads(key.get("policy"))
    logs = next(s for s in policy["Statement"] if s["Sid"] == "CloudWatchLogsForThePlatformLogGroups")
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert all(":log-group:/aws/" in p for p in patterns)


def test_log_groups_are_encrypted_with_bounded_retention(plan: PlanResult, configs) -> None:
    cfg = configs[plan.stack]
    groups = {r.get("name"): r for r in plan.of_type("aws:cloudwatch/logGroup:LogGroup")}
    control_plane = groups[f"/aws/eks/{cfg.cluster_name}/cluster"]
    flow = groups[f"/aws/vpc/{cfg.prefix}-network/flow-logs"]
    assert control_plane.get("retentionInDays") == cfg.cluster.log_retention_days
    assert flow.get("retentionInDays") == cfg.network.flow_log_retention_days
    for group in groups.values():
        assert group.get("kmsKeyId", "").startswith("arn:aws:kms:")


def test_prod_protects_its_state_and_dev_does_not(plans: dict[str, PlanResult]) -> None:
    for stack, protected in (("prod", True), ("dev", False)):
        assert cluster_key(plans[stack]).protect is protected
        assert plans[stack].one("eks:index:Cluster").protect is protected
    prod_groups = plans["prod"].of_type("aws:cloudwatch/logGroup:LogGroup")
    assert any(g.protect and "/aws/eks/" in g.get("name") for g in prod_groups)
    assert not any(r.protect for r in plans["dev"].records)


@pytest.mark.parametrize(
    "typ",
    [
        "awsx:ec2:Vpc",
        "aws:kms/key:Key",
        "aws:ecr/repository:Repository",
        "aws:cloudwatch/logGroup:LogGroup",
    ],
)
def test_prod_protects_network_and_stateful_resources(plans: dict[str, PlanResult], typ: str) -> None:
    prod = plans["prod"].of_type(typ)
    assert prod and all(r.protect for r in prod), [r.name for r in prod if not r.protect]
    assert not any(r.protect or r.retain_on_delete for r in plans["dev"].of_type(typ))


@pytest.mark.parametrize("typ", ["aws:kms/key:Key", "aws:ecr/repository:Repository"])
def test_prod_keeps_keys_and_registries_when_the_stack_is_destroyed(
    plans: dict[str, PlanResult], typ
) -> None:
    assert all(r.retain_on_delete for r in plans["prod"].of_type(typ))


@pytest.mark.parametrize("name", ["flow-logs", "/aws/eks/eks-platform-prod/cluster"])
def test_prod_keeps_its_log_groups_when_the_stack_is_destroyed(prod: PlanResult, name: str) -> None:
    (group,) = [g for g in prod.of_type("aws:cloudwatch/logGroup:LogGroup") if name in g.get("name")]
    assert group.retain_on_delete and group.protect


def test_prod_keeps_the_platform_secrets_and_dev_force_deletes_them(plans: dict[str, PlanResult]) -> None:
    # Grafana's admin, Alertmanager's receiver; prod adds Argo CD's OIDC client secret (SSO).
    for stack, kept, window, count in (("prod", True, 30, 3), ("dev", False, 0, 2)):
        plan = plans[stack]
        owner = plan.one("platform:secrets:Secrets").urn
        secrets = [s for s in plan.of_type("aws:secretsmanager/secret:Secret") if s.parent == owner]
        assert len(secrets) == count, [s.name for s in secrets]
        for s in secrets:
            options = (s.retain_on_delete, s.protect, s.get("recoveryWindowInDays"))
            assert options == (kept, kept, window), s.name
    # The agent pool's token is the identity project's (tests/unit/test_deployments.py): not here.
    assert not [s for s in plans["prod"].of_type("aws:secretsmanager/secret:Secret") if "agent" in s.name]


# -- network ------------------------------------------------------------------------------------


def test_default_security_group_is_adopted_without_rules(plan: PlanResult) -> None:
    (sg,) = plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert sg.get("vpcId") == plan.document()["outputs"]["vpcId"]
    assert not sg.get("ingress") and not sg.get("egress")
    assert sg.parent == plan.one("platform:network:Network").urn


def test_vpc_layout_matches_the_config(plan: PlanResult, configs) -> None:
    cfg = configs[plan.stack]
    vpc = plan.one("awsx:ec2:Vpc")
    assert vpc.get("cidrBlock") == str(cfg.network.cidr)
    assert vpc.get("availabilityZoneNames") == [f"{cfg.region}{s}" for s in "abc"][: cfg.network.az_count]
    private, public = vpc.get("subnetSpecs")
    assert private["type"] == "Private" and public["type"] == "Public"
    assert private["cidrBlocks"] == [str(p) for p, _ in cfg.network.subnets()]
    assert private["tags"]["karpenter.sh/discovery"] == cfg.cluster_name
    assert private["tags"]["kubernetes.io/role/internal-elb"] == "1"
    assert public["tags"]["kubernetes.io/role/elb"] == "1"
    blocks = [ipaddress.ip_network(c) for c in private["cidrBlocks"] + public["cidrBlocks"]]
    assert all(b.subnet_of(cfg.network.cidr) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])


def test_nat_strategy_per_stack(plans: dict[str, PlanResult]) -> None:
    assert plans["dev"].one("awsx:ec2:Vpc").get("natGateways.strategy") == "Single"
    assert plans["prod"].one("awsx:ec2:Vpc").get("natGateways.strategy") == "OnePerAz"


def test_flow_logs_capture_all_traffic(plan: PlanResult) -> None:
    flow = plan.one("aws:ec2/flowLog:FlowLog")
    assert flow.get("trafficType") == "ALL"
    assert flow.get("logDestination").endswith("flow-logs")
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("flow-logs"))
    trust = json.loads(role.get("assumeRolePolicy"))["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_the_flow_log_starts_after_its_roles_policy(plan: PlanResult) -> None:
    """The service publishes with the role's permissions: a flow log created before the role's policy
    reports "Access error" (EC2 API reference, FlowLog.deliverLogsErrorMessage)."""
    flow = plan.one("aws:ec2/flowLog:FlowLog")
    (policy,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("flow-logs")]
    assert policy.urn in flow.dependencies


def test_s3_gateway_endpoint_is_always_there(plan: PlanResult) -> None:
    (spec,) = plan.one("awsx:ec2:Vpc").get("vpcEndpointSpecs")
    assert spec["serviceName"].endswith(".s3") and spec["vpcEndpointType"] == "Gateway"


def test_interface_endpoints_only_where_configured(plans: dict[str, PlanResult], configs) -> None:
    assert plans["dev"].of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    endpoints = plans["prod"].of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    services = sorted(e.get("serviceName").rsplit(".", 1)[-1] for e in endpoints)
    wanted = sorted(s.rsplit(".", 1)[-1] for s in configs["prod"].network.interface_endpoints)
    assert services == wanted
    assert all(e.get("privateDnsEnabled") is True for e in endpoints)


def test_no_security_group_is_open_to_the_internet(plan: PlanResult) -> None:
    for sg in plan.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in sg.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), sg.urn


# -- cluster ------------------------------------------------------------------------------------


def test_cluster_security_settings(plan: PlanResult, configs) -> None:
    cfg = configs[plan.stack]
    eks = plan.one("eks:index:Cluster")
    assert eks.get("name") == cfg.cluster_name
    assert eks.get("version") == cfg.cluster.kubernetes_version
    assert eks.get("endpointPrivateAccess") is True
    assert eks.get("endpointPublicAccess") is cfg.cluster.endpoint_public_access
    assert eks.get("publicAccessCidrs") == ([str(c) for c in cfg.cluster.public_access_cidrs] or None)
    assert eks.get("enabledClusterLogTypes") == list(CONTROL_PLANE_LOG_TYPES)
    assert eks.get("authenticationMode") == "API"
    key = cluster_key(plan)
    assert eks.get("encryptionConfigKeyArn") == f"arn:aws:kms:{cfg.region}:123456789012:key/{key.name}"
    assert eks.get("skipDefaultNodeGroup") is True
    assert eks.get("createOidcProvider") is True
    assert eks.get("upgradePolicy.supportType") == "STANDARD"
    assert eks.get("deletionProtection") is is_production(plan.stack)
    assert eks.get("nodeAssociatePublicIpAddress") is False
    azs = plan.one("awsx:ec2:Vpc").get("availabilityZoneNames")
    assert eks.get("privateSubnetIds") == [f"subnet-private-{az}" for az in azs]
    assert "publicSubnetIds" not in eks.raw_inputs and "subnetIds" not in eks.raw_inputs


def test_control_plane_role_trusts_eks_and_holds_only_its_policies(plan: PlanResult) -> None:
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("control-plane"))
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Principal"] == {"Service": "eks.amazonaws.com"}
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    attached = [
        r.get("policyArn")
        for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith(f"{role.name}-")
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]
    (inline,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == f"{role.name}-kms"]
    (kms,) = json.loads(inline.get("policy"))["Statement"]
    assert kms["Resource"].startswith("arn:aws:kms:") and "kms:*" not in kms["Action"]
    assert eks_role_is_the_service_role(plan, role)


def eks_role_is_the_service_role(plan: PlanResult, role) -> bool:
    return plan.one("eks:index:Cluster").get("serviceRole") == f"{role.name}-id"


def test_cluster_waits_for_its_log_group_and_role_policies(plan: PlanResult) -> None:
    eks = plan.one("eks:index:Cluster")
    control_plane_log = next(
        r for r in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if "/aws/eks/" in r.get("name")
    )
    assert control_plane_log.urn in eks.dependencies
    attachment = next(r for r in plan.records if r.name.endswith("control-plane-AmazonEKSClusterPolicy"))
    assert attachment.urn in eks.dependencies


def test_access_entries_only_for_the_admin_roles_and_the_deploy_role(plan: PlanResult, configs) -> None:
    entries = plan.one("eks:index:Cluster").get("accessEntries")
    wanted = configs[plan.stack].cluster.admin_role_arns
    # Keyed by role name, so reordering the config list replaces nothing.
    assert {k: e["principalArn"] for k, e in entries.items()} == {
        f"admin-{arn.split(':role/')[1].replace('/', '-')}": arn for arn in wanted
    } | {"deploy": plan.outputs["deployRoleArn"]}
    for entry in entries.values():
        assert entry["type"] == "STANDARD"
        (policy,) = entry["accessPolicies"].values()
        assert policy["policyArn"].endswith("cluster-access-policy/AmazonEKSClusterAdminPolicy")
        assert policy["accessScope"] == {"type": "cluster"}


def test_addons_are_pinned(plan: PlanResult, configs) -> None:
    pins = addon_versions(configs[plan.stack].cluster.kubernetes_version)
    addons = {a.get("addonName"): a.get("addonVersion") for a in plan.of_type("aws:eks/addon:Addon")}
    assert addons == {k: v for k, v in pins.items() if k != "kube-proxy"}
    assert plan.one("eks:index:Cluster").get("kubeProxyAddonOptions.version") == pins["kube-proxy"]


def test_vpc_cni_uses_prefix_delegation_and_its_own_irsa_role(plan: PlanResult) -> None:
    cni = next(a for a in plan.of_type("aws:eks/addon:Addon") if a.get("addonName") == "vpc-cni")
    values = json.loads(cni.get("configurationValues"))
    assert values["env"]["ENABLE_PREFIX_DELEGATION"] == "true"
    assert values["enableNetworkPolicy"] == "true"
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("vpc-cni"))
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    conditions = statement["Condition"]["StringEquals"]
    subs = [v for k, v in conditions.items() if k.endswith(":sub")]
    assert subs == ["system:serviceaccount:kube-system:aws-node"]


def test_ebs_csi_role_is_bound_to_its_service_account_only(plan: PlanResult) -> None:
    role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("ebs-csi"))
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    cond = statement["Condition"]["StringEquals"]
    assert cond["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    assert cond["aws:RequestTag/kubernetes-service-account"] == "ebs-csi-controller-sa"
    assert cond["aws:RequestTag/eks-cluster-arn"].endswith(f":cluster/eks-platform-{plan.stack}")
    addon = next(a for a in plan.of_type("aws:eks/addon:Addon") if a.get("addonName") == "aws-ebs-csi-driver")
    assert addon.get("podIdentityAssociations.0.serviceAccount") == "ebs-csi-controller-sa"


def test_default_storage_class_is_encrypted_gp3(plan: PlanResult) -> None:
    group = next(r for r in plan.of_type("kubernetes:yaml/v2:ConfigGroup") if r.name.endswith("-gp3"))
    (sc,) = group.get("objs")
    assert (sc["apiVersion"], sc["kind"]) == ("storage.k8s.io/v1", "StorageClass")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["provisioner"] == "ebs.csi.aws.com"
    assert sc["parameters"] == {"type": "gp3", "encrypted": "true", "fsType": "ext4"}
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["allowVolumeExpansion"] is True
    assert sc["reclaimPolicy"] == ("Retain" if is_production(plan.stack) else "Delete")
    ebs = next(a for a in plan.of_type("aws:eks/addon:Addon") if a.get("addonName") == "aws-ebs-csi-driver")
    assert ebs.urn in group.dependencies


# -- system nodes -------------------------------------------------------------------------------


def test_system_nodes_require_imdsv2_and_encrypt_their_disks(plan: PlanResult) -> None:
    (lt,) = [r for r in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate") if r.name.endswith("system-lt")]
    assert lt.get("metadataOptions.httpTokens") == "required"
    assert lt.get("metadataOptions.httpPutResponseHopLimit") == 1
    devices = lt.get("blockDeviceMappings")
    assert devices and all(
        d["ebs"]["encrypted"] == "true" and d["ebs"]["volumeType"] == "gp3" for d in devices
    )
    assert "keyName" not in lt.raw_inputs
    mng = plan.one("eks:index:ManagedNodeGroup")
    assert mng.get("launchTemplate.id") == f"{lt.name}-id"
    assert "remoteAccess" not in mng.raw_inputs and "diskSize" not in mng.raw_inputs


def test_system_nodes_are_private_tainted_and_sized_per_stack(plan: PlanResult, configs) -> None:
    cfg = configs[plan.stack].system_node_group
    mng = plan.one("eks:index:ManagedNodeGroup")
    vpc_private = [f"subnet-private-{configs[plan.stack].region}{s}" for s in "abc"]
    assert mng.get("subnetIds") == vpc_private
    assert mng.get("amiType") == "AL2023_ARM_64_STANDARD"
    assert mng.get("capacityType") == "ON_DEMAND"
    assert mng.get("instanceTypes") == list(cfg.instance_types)
    assert mng.get("scalingConfig") == {
        "minSize": cfg.min_size,
        "desiredSize": cfg.desired_size,
        "maxSize": cfg.max_size,
    }
    assert mng.get("taints") == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    cni = next(a for a in plan.of_type("aws:eks/addon:Addon") if a.get("addonName") == "vpc-cni")
    assert cni.urn in mng.dependencies


def test_prod_runs_a_system_node_in_every_az(prod: PlanResult, configs) -> None:
    assert prod.one("eks:index:ManagedNodeGroup").get("scalingConfig.minSize") >= 3
    assert configs["prod"].network.az_count == 3


def test_node_role_has_no_cni_or_admin_permissions(plan: PlanResult) -> None:
    node_role = next(r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith("system-node"))
    attached = sorted(
        r.get("policyArn").rsplit("/", 1)[-1]
        for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith(node_role.name)
    )
    assert attached == ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy"]


def test_coredns_is_highly_available_in_prod_only(plans: dict[str, PlanResult]) -> None:
    def coredns(plan: PlanResult) -> dict:
        addon = next(a for a in plan.of_type("aws:eks/addon:Addon") if a.get("addonName") == "coredns")
        return json.loads(addon.get("configurationValues"))

    assert coredns(plans["prod"])["autoScaling"] == {"enabled": True, "minReplicas": 3, "maxReplicas": 32}
    assert coredns(plans["dev"])["autoScaling"]["enabled"] is True
    assert coredns(plans["prod"])["podDisruptionBudget"]["enabled"] is True
    assert "topologySpreadConstraints" in coredns(plans["prod"])
    assert "podDisruptionBudget" not in coredns(plans["dev"])


# -- outputs ------------------------------------------------------------------------------------


def test_stack_outputs(plan: PlanResult) -> None:
    assert set(plan.outputs) == {
        "clusterName",
        "clusterEndpoint",
        "kubeconfig",
        "vpcId",
        "privateSubnetIds",
        "publicSubnetIds",
        "oidcProviderArn",
        "nodeRoleArn",
        "karpenterNodeRoleArn",
        "karpenterInterruptionQueue",
        "repositoryUrls",
        "ciRoleArns",
        "secretStore",
        "serviceSecretStores",
        "deployRoleArn",
    }
    assert plan.secret_outputs == {"kubeconfig"}
    assert plan.outputs["clusterName"] == f"eks-platform-{plan.stack}"
    assert plan.outputs["nodeRoleArn"].endswith(f"role/eks-platform-{plan.stack}-system-node")
    assert plan.document()["outputs"]["kubeconfig"] == "[secret]"


@pytest.mark.parametrize("stack", stack_names())
def test_kubeconfig_never_reaches_a_plain_input(plans: dict[str, PlanResult], stack: str) -> None:
    provider = plans[stack].one(K8S_PROVIDER)
    assert provider.inputs["kubeconfig"] == "[secret]"
