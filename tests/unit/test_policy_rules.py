"""The policy pack's rules, one passing and one failing resource each, and their CrossGuard wiring.

Every case runs twice: on plain dicts (the offline plan's inputs) and on what CrossGuard hands a
policy (a protobuf Struct round trip, so numbers are floats, wrapped in pulumi_policy's
unknown-checking proxy, which is a Mapping, not a dict).
"""

from __future__ import annotations

import copy
import json
import os
import re
import select
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from policy import resource_types as t
from policy.crossguard import policies, stack_is_production
from policy.model import Context, Level, Resource, ResourceRule, StackRule
from policy.rules import RULES
from tools.mocks import ROOT

KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"
OIDC = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
SYSTEM = {"eks-platform.io/node-pool": "system"}
REQ = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}


def put(base: dict[str, Any], path: str | tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `base` with `path` set (`...` deletes it)."""
    out = copy.deepcopy(base)
    parts = path.split(".") if isinstance(path, str) else path
    node: Any = out
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is ...:
        del node[parts[-1]]
    elif isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return out


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(
    principal: dict[str, Any] | str, action: str = "sts:AssumeRole", **condition: Any
) -> dict[str, Any]:
    return {
        "assumeRolePolicy": doc({"Effect": "Allow", "Principal": principal, "Action": action, **condition})
    }


CLUSTER = {
    "name": "c",
    "version": "1.35",
    "endpointPrivateAccess": True,
    "endpointPublicAccess": False,
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "encryptionConfigKeyArn": KEY,
    "authenticationMode": "API",
    "deletionProtection": True,
    "upgradePolicy": {"supportType": "STANDARD"},
    "skipDefaultNodeGroup": True,
    "nodeAssociatePublicIpAddress": False,
}
PUBLIC = {**CLUSTER, "endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
AWS_CLUSTER = {
    "version": "1.35",
    "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": False},
    "enabledClusterLogTypes": CLUSTER["enabledClusterLogTypes"],
    "encryptionConfig": {"provider": {"keyArn": KEY}, "resources": ["secrets"]},
    "accessConfig": {"authenticationMode": "API"},
}
CNI = {
    "addonName": "vpc-cni",
    "addonVersion": "v1.21.1",
    "configurationValues": '{"enableNetworkPolicy": "true"}',
}
LT = {
    "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1, "httpEndpoint": "enabled"},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "volumeType": "gp3"}}],
}
MNG = {"launchTemplate": {"id": "lt", "version": "1"}, "scalingConfig": {"minSize": 3, "maxSize": 6}}
# The Deployments agent group (components/agent.py): launch before terminate, every replacement.
ASG = {
    "desiredCapacity": 1,
    "instanceRefresh": {
        "strategy": "Rolling",
        "preferences": {"minHealthyPercentage": 100, "maxHealthyPercentage": 200},
    },
    "instanceMaintenancePolicy": {"minHealthyPercentage": 100, "maxHealthyPercentage": 200},
}
NODECLASS = {
    "spec": {
        "amiSelectorTerms": [{"alias": "al2023@v20261110"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "c"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "c"}}],
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": True}}],
    }
}
NODEPOOL = {
    "spec": {
        "limits": {"cpu": "64", "memory": "256Gi"},
        "disruption": {
            "budgets": [{"nodes": "10%"}, {"nodes": "0", "schedule": "0 7 * * mon-fri", "duration": "11h"}]
        },
        "template": {"spec": {"expireAfter": "720h", "terminationGracePeriod": "48h"}},
    }
}


def release(chart: str, values: dict[str, Any], version: str = "1.2.3") -> dict[str, Any]:
    return {"chart": chart, "version": version, "values": values}


KARPENTER = release(
    "oci://public.ecr.aws/karpenter/karpenter",
    {
        "replicas": 2,
        "settings": {"interruptionQueue": "q"},
        "controller": {"resources": REQ},
        "nodeSelector": SYSTEM,
    },
)
METRICS = release(
    "metrics-server",
    {"replicas": 2, "podDisruptionBudget": {"enabled": True}, "resources": REQ, "nodeSelector": SYSTEM},
)
ARGOCD = release(
    "argo-cd",
    {
        "configs": {"cm": {"admin.enabled": False}},
        "global": {"nodeSelector": SYSTEM},
        **{
            key: {"resources": REQ} for key in ("controller", "repoServer", "applicationSet", "notifications")
        },
        "server": {"replicas": 2, "pdb": {"enabled": True}, "resources": REQ},
        "redis": {"resources": REQ},
    },
)
KEY_RES = {
    "enableKeyRotation": True,
    "deletionWindowInDays": 30,
    "policy": doc(allow("kms:*", Principal={"AWS": "root"})),
}
REPO = {
    "name": "r",
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
    "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY}],
}
SECRET = {"name": "s", "kmsKeyId": KEY, "recoveryWindowInDays": 30}
TLS_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "sqs:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
LOG = {"retentionInDays": 365, "kmsKeyId": KEY}
KARPENTER_POLICY = doc(
    allow(
        ["ec2:DescribeInstances", "ec2:DescribeSubnets"],
        Condition={"StringEquals": {"aws:RequestedRegion": "x"}},
    ),
    allow("ecr:GetAuthorizationToken"),
    allow("pricing:GetProducts"),
    allow(
        "ec2:TerminateInstances", Condition={"StringEquals": {"aws:ResourceTag/karpenter.sh/nodepool": "x"}}
    ),
    allow("iam:PassRole", "arn:aws:iam::1:role/node"),
)
IRSA = trust(
    {"Federated": f"arn:aws:iam::1:oidc-provider/{OIDC}"},
    "sts:AssumeRoleWithWebIdentity",
    Condition={
        "StringEquals": {f"{OIDC}:sub": "system:serviceaccount:kube-system:aws-node", f"{OIDC}:aud": "sts"}
    },
)
PULUMI_OIDC = trust(
    {"Federated": "arn:aws:iam::1:oidc-provider/api.pulumi.com/oidc"},
    "sts:AssumeRoleWithWebIdentity",
    Condition={
        "StringEquals": {"api.pulumi.com/oidc:aud": "org"},
        "StringLike": {"api.pulumi.com/oidc:sub": "pulumi:deploy:org:org:project:p:stack:prod:*"},
    },
)
GITHUB = "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"
GH = "token.actions.githubusercontent.com"


def ci_role(name: str, *workflows: str, operator: str = "StringEquals") -> dict[str, Any]:
    """A service's CI role as components/registry.py writes it: repository, branch, workflow files."""
    pinned = {f"{GH}:aud": "sts.amazonaws.com", f"{GH}:sub": "repo:o/r:ref:refs/heads/main"}
    condition: dict[str, Any] = {"StringEquals": pinned}
    if workflows:
        refs = [f"o/r/.github/workflows/{w}@refs/heads/main" for w in workflows]
        condition = {**condition, operator: {**condition.get(operator, {}), f"{GH}:job_workflow_ref": refs}}
    return {
        "name": name,
        **trust({"Federated": GITHUB}, "sts:AssumeRoleWithWebIdentity", Condition=condition),
    }


CATALOG_CI = ci_role("catalog-ci", "catalog.yml", "catalog-promote.yml")
POD_TAGS = {
    "aws:RequestTag/eks-cluster-arn": "arn:aws:eks:eu-west-1:1:cluster/c",
    "aws:RequestTag/kubernetes-namespace": "kube-system",
    "aws:RequestTag/kubernetes-service-account": "karpenter",
}
POD_ROLE = {
    "name": "pod-role",
    **trust({"Service": "pods.eks.amazonaws.com"}, Condition={"StringEquals": POD_TAGS}),
}
FLOW_ROLE = trust(
    {"Service": "vpc-flow-logs.amazonaws.com"}, Condition={"StringEquals": {"aws:SourceAccount": "1"}}
)
VPC = {
    "natGateways": {"strategy": "OnePerAz"},
    "availabilityZoneNames": ["a", "b", "c"],
    "subnetSpecs": [
        {"name": "private", "type": "Private", "tags": {"karpenter.sh/discovery": "c"}},
        {"name": "public", "type": "Public", "tags": {"kubernetes.io/role/elb": "1"}},
    ],
}
SG = {"ingress": [{"description": "HTTPS", "cidrBlocks": ["10.0.0.0/16"], "fromPort": 443, "toPort": 443}]}


def group(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"objs": [{"kind": kind, "apiVersion": "v1", **obj}]}


NS = {"metadata": {"name": "apps", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
SC = {
    "metadata": {"name": "gp3"},
    "provisioner": "ebs.csi.aws.com",
    "parameters": {"encrypted": "true"},
    "reclaimPolicy": "Retain",
}
PROJECT = {
    "spec": {
        "sourceRepos": ["https://github.com/o/r.git"],
        "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "apps"}],
        "clusterResourceWhitelist": [],
    }
}


COREDNS = {
    "addonName": "coredns",
    "addonVersion": "v1.12.4-eksbuild.1",
    "configurationValues": json.dumps(
        {
            "autoScaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 32},
            "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone"}],
        }
    ),
}


@dataclass(frozen=True)
class Case:
    rule: str
    typ: str
    good: dict[str, Any]
    bad: dict[str, Any]
    production: bool = True
    expect: str = ""  # a fragment of the failing message


@dataclass(frozen=True)
class StackCase:
    """Resources as (type, props), (type, props, protect) or (type, props, protect, retain_on_delete)."""

    rule: str
    good: list[tuple[Any, ...]]
    bad: list[tuple[Any, ...]]
    production: bool = True
    expect: str = ""


EKS, ADDON, ROLE, RP = t.EKS_CLUSTER, t.EKS_ADDON, t.IAM_ROLE, t.IAM_ROLE_POLICY
OWN = "arn:aws:iam::123456789012:role/eks-platform-dev-*"


def boundary(*statements: dict[str, Any]) -> dict[str, Any]:
    """The stack's permissions boundary (a managed policy named `<prefix>-boundary`)."""
    return {"name": "eks-platform-dev-boundary", "policy": doc(*statements)}


# The boundary's condition on its EC2 grants on "*": the stack's region only.
IN_REGION: dict[str, Any] = {"Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}


def deploy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "platform-deploy",
        "role": "eks-platform-dev-deployments-deploy",
        "policy": doc(*statements),
    }


BOUNDARY_ARN = "arn:aws:iam::123456789012:policy/eks-platform-dev-boundary"
BOUNDED = {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}}
STACK_TAG = {"StringEquals": {"aws:ResourceTag/platform:stack": "dev"}}
DEPLOY = deploy(
    allow(["ec2:Describe*", "eks:DescribeAddonVersions"]),
    allow("ec2:*", "*", Condition=STACK_TAG),
    allow("eks:*", "arn:aws:eks:eu-west-1:123456789012:cluster/eks-platform-dev"),
    allow("iam:GetRole", OWN),
    allow("iam:CreateRole", OWN, Condition=BOUNDED),
    allow("iam:PassRole", OWN, Condition={"StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}}),
    allow(
        "iam:CreateServiceLinkedRole",
        "arn:aws:iam::123456789012:role/aws-service-role/*",
        Condition={"StringEquals": {"iam:AWSServiceName": "eks.amazonaws.com"}},
    ),
    {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
)
STORE = {
    "metadata": {"name": "service-catalog"},
    "spec": {
        "provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1", "prefix": "p/catalog/"}},
        "conditions": [{"namespaces": ["catalog"]}],
    },
}
CATALOG_SECRET = {
    "metadata": {"name": "db", "namespace": "catalog"},
    "spec": {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "service-catalog"}},
}

CASES = [
    Case("eks-endpoint-private-access", EKS, CLUSTER, put(CLUSTER, "endpointPrivateAccess", False)),
    Case("eks-endpoint-private-access", t.AWS_EKS_CLUSTER, AWS_CLUSTER, put(AWS_CLUSTER, "vpcConfig", {})),
    Case(
        "eks-public-endpoint-restricted",
        EKS,
        PUBLIC,
        put(PUBLIC, "publicAccessCidrs", ["0.0.0.0/0"]),
        expect="0.0.0.0/0",
    ),
    Case(
        "eks-public-endpoint-restricted",
        EKS,
        CLUSTER,
        put(PUBLIC, "publicAccessCidrs", ...),
        expect="no publicAccess",
    ),
    Case("eks-public-endpoint-disabled", EKS, CLUSTER, PUBLIC, expect="203.0.113.0/24"),
    Case("eks-audit-logging", EKS, CLUSTER, put(CLUSTER, "enabledClusterLogTypes", ["api"]), expect="audit"),
    Case(
        "eks-control-plane-logs-all", EKS, CLUSTER, put(CLUSTER, "enabledClusterLogTypes", ["api", "audit"])
    ),
    Case("eks-secrets-encryption", EKS, CLUSTER, put(CLUSTER, "encryptionConfigKeyArn", ...)),
    Case(
        "eks-secrets-encryption",
        t.AWS_EKS_CLUSTER,
        AWS_CLUSTER,
        put(AWS_CLUSTER, "encryptionConfig.resources", []),
    ),
    Case(
        "eks-authentication-mode-api", EKS, CLUSTER, put(CLUSTER, "authenticationMode", "API_AND_CONFIG_MAP")
    ),
    Case("eks-deletion-protection", EKS, CLUSTER, put(CLUSTER, "deletionProtection", False)),
    Case("eks-upgrade-policy-standard", EKS, CLUSTER, put(CLUSTER, "upgradePolicy", ...), expect="EXTENDED"),
    Case("eks-version-pinned", EKS, CLUSTER, put(CLUSTER, "version", "latest")),
    Case("eks-default-node-group-disabled", EKS, CLUSTER, put(CLUSTER, "skipDefaultNodeGroup", False)),
    Case("eks-addon-version-pinned", ADDON, CNI, put(CNI, "addonVersion", ...)),
    Case("eks-vpc-cni-network-policy", ADDON, CNI, put(CNI, "configurationValues", "{}")),
    Case(
        "node-imdsv2-required",
        t.LAUNCH_TEMPLATE,
        LT,
        put(LT, "metadataOptions.httpTokens", ...),
        expect="optional",
    ),
    Case(
        "node-imdsv2-required",
        t.NODE_CLASS,
        NODECLASS,
        put(NODECLASS, "spec.metadataOptions.httpTokens", "optional"),
    ),
    Case("node-imds-hop-limit", t.LAUNCH_TEMPLATE, LT, put(LT, "metadataOptions.httpPutResponseHopLimit", 2)),
    Case(
        "node-imds-hop-limit",
        t.NODE_CLASS,
        put(NODECLASS, "spec.metadataOptions", ...),
        put(NODECLASS, "spec.metadataOptions.httpPutResponseHopLimit", 2),
    ),
    Case(
        "node-volumes-encrypted",
        t.LAUNCH_TEMPLATE,
        LT,
        put(LT, "blockDeviceMappings.0.ebs.encrypted", "false"),
    ),
    Case("node-volumes-encrypted", t.NODE_CLASS, NODECLASS, put(NODECLASS, "spec.blockDeviceMappings", ...)),
    Case(
        "node-no-public-ip",
        t.LAUNCH_TEMPLATE,
        LT,
        put(LT, "networkInterfaces", [{"associatePublicIpAddress": "true"}]),
    ),
    Case("node-no-public-ip", EKS, CLUSTER, put(CLUSTER, "nodeAssociatePublicIpAddress", ...)),
    Case("node-no-public-ip", t.NODE_CLASS, NODECLASS, put(NODECLASS, "spec.associatePublicIPAddress", True)),
    Case("node-no-ssh-access", t.EKS_MNG, MNG, put(MNG, "remoteAccess", {"ec2SshKey": "k"})),
    Case("node-no-ssh-access", t.LAUNCH_TEMPLATE, LT, put(LT, "keyName", "k")),
    Case("nodegroup-launch-template", t.EKS_MNG, MNG, put(MNG, "launchTemplate", ...)),
    Case(
        "asg-replaces-launch-first",
        t.AUTOSCALING_GROUP,
        ASG,
        put(ASG, "instanceRefresh.preferences.minHealthyPercentage", 0),  # the agent group until now
        expect="instanceRefresh.preferences minHealthyPercentage=0",
    ),
    Case(
        "asg-replaces-launch-first",
        t.AUTOSCALING_GROUP,
        ASG,
        put(ASG, "instanceMaintenancePolicy", ...),
        expect="instanceMaintenancePolicy minHealthyPercentage=None",
    ),
    Case("nodegroup-min-size", t.EKS_MNG, MNG, put(MNG, "scalingConfig.minSize", 2), expect="below 3"),
    Case(
        "nodegroup-min-size",
        t.EKS_MNG,
        put(MNG, "scalingConfig.minSize", 2),
        put(MNG, "scalingConfig.minSize", 1),
        production=False,
    ),
    Case(
        "nodegroup-ami-release-pinned",
        t.EKS_MNG,
        put(MNG, "releaseVersion", "1.35.6-20260714"),
        MNG,
        expect="no releaseVersion",
    ),
    Case(
        "nodegroup-ami-release-pinned",
        t.AWS_NODE_GROUP,
        put(MNG, "releaseVersion", "1.35.6-20260714"),
        put(MNG, "releaseVersion", ""),
    ),
    Case(
        "karpenter-ami-pinned",
        t.NODE_CLASS,
        NODECLASS,
        put(NODECLASS, "spec.amiSelectorTerms.0.alias", "al2023@latest"),
    ),
    Case(
        "karpenter-ami-pinned",
        t.NODE_CLASS,
        put(NODECLASS, "spec.amiSelectorTerms", [{"id": "ami-1"}]),
        put(NODECLASS, "spec.amiSelectorTerms", [{"tags": {"a": "b"}}]),
    ),
    Case(
        "karpenter-selectors-scoped",
        t.NODE_CLASS,
        NODECLASS,
        put(NODECLASS, ("spec", "subnetSelectorTerms", "0", "tags", "karpenter.sh/discovery"), "*"),
    ),
    Case("karpenter-nodepool-limits", t.NODE_POOL, NODEPOOL, put(NODEPOOL, "spec.limits", ...)),
    Case(
        "karpenter-nodepool-termination-grace",
        t.NODE_POOL,
        put(NODEPOOL, "spec.template.spec", {"expireAfter": "Never"}),
        put(NODEPOOL, "spec.template.spec.terminationGracePeriod", ...),
        expect="keeps an expired node",
    ),
    Case(
        "karpenter-disruption-budgets",
        t.NODE_POOL,
        NODEPOOL,
        put(NODEPOOL, "spec.disruption.budgets", [{"nodes": "100%"}]),
    ),
    Case(
        "karpenter-disruption-budgets",
        t.NODE_POOL,
        NODEPOOL,
        put(NODEPOOL, "spec.disruption", {}),
        expect="not set",
    ),
    Case(
        "karpenter-node-expiry",
        t.NODE_POOL,
        NODEPOOL,
        put(NODEPOOL, "spec.template.spec.expireAfter", "Never"),
    ),
    Case(
        "karpenter-interruption-handling",
        t.HELM_RELEASE,
        KARPENTER,
        put(KARPENTER, "values.settings.interruptionQueue", ""),
    ),
    Case("kms-key-rotation", t.KMS_KEY, KEY_RES, put(KEY_RES, "enableKeyRotation", False)),
    Case(
        "kms-deletion-window",
        t.KMS_KEY,
        put(KEY_RES, "deletionWindowInDays", ...),
        put(KEY_RES, "deletionWindowInDays", 7),
    ),
    Case(
        "kms-policy-no-public-principal",
        t.KMS_KEY,
        KEY_RES,
        put(KEY_RES, "policy", doc(allow("kms:Decrypt", Principal="*"))),
    ),
    Case(
        "ecr-immutable-tags", t.ECR_REPOSITORY, REPO, put(REPO, "imageTagMutability", ...), expect="MUTABLE"
    ),
    Case(
        "ecr-scan-on-push", t.ECR_REPOSITORY, REPO, put(REPO, "imageScanningConfiguration.scanOnPush", False)
    ),
    Case(
        "ecr-kms-encryption",
        t.ECR_REPOSITORY,
        REPO,
        put(REPO, "encryptionConfigurations", ...),
        expect="AES256",
    ),
    Case("secret-kms-cmk", t.SM_SECRET, SECRET, put(SECRET, "kmsKeyId", "alias/aws/secretsmanager")),
    Case("secret-recovery-window", t.SM_SECRET, SECRET, put(SECRET, "recoveryWindowInDays", 0)),
    Case("sqs-encryption", t.SQS_QUEUE, {"sqsManagedSseEnabled": True}, {"sqsManagedSseEnabled": False}),
    Case(
        "sqs-tls-only",
        t.SQS_QUEUE_POLICY,
        {"policy": doc(TLS_DENY)},
        {"policy": doc(allow("sqs:SendMessage"))},
    ),
    Case("log-group-retention", t.LOG_GROUP, LOG, put(LOG, "retentionInDays", ...)),
    Case("log-group-retention-one-year", t.LOG_GROUP, LOG, put(LOG, "retentionInDays", 30)),
    Case("log-group-kms", t.LOG_GROUP, LOG, put(LOG, "kmsKeyId", ...)),
    Case("iam-no-wildcard-action", RP, {"policy": KARPENTER_POLICY}, {"policy": doc(allow("*"))}),
    Case(
        "iam-no-wildcard-action",
        ROLE,
        {"inlinePolicies": [{"policy": KARPENTER_POLICY}]},
        {"inlinePolicies": [{"policy": doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}]},
    ),
    Case(
        "iam-no-service-wildcard",
        RP,
        {"policy": doc(allow("iam:Get*"))},
        {"policy": doc(allow("iam:*", "arn:x"))},
    ),
    Case(
        "iam-no-service-wildcard",
        RP,
        {"policy": KARPENTER_POLICY},
        {"policy": doc(allow("secretsmanager:Get*", "arn:x"))},
    ),
    Case(
        "iam-no-unscoped-write",
        RP,
        {"policy": KARPENTER_POLICY},
        {"policy": doc(allow(["ec2:DescribeImages", "ec2:TerminateInstances"]))},
        expect="ec2:TerminateInstances on",
    ),
    Case(
        "iam-no-unscoped-write",
        t.IAM_POLICY,
        {"policy": KARPENTER_POLICY},
        {"policy": doc(allow("secretsmanager:GetSecretValue"))},
    ),
    Case(
        "iam-no-admin-managed-policy",
        t.IAM_ATTACHMENTS[0],
        {"policyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"},
        {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess", "role": "deploy"},
    ),
    # The deploy role's policy (named platform-deploy) is judged by deploy-role-least-privilege,
    # not by the workload rules; any other name still is.
    Case("iam-no-service-wildcard", RP, DEPLOY, {**DEPLOY, "name": "other"}),
    Case("iam-no-unscoped-write", RP, DEPLOY, {**deploy(allow("ec2:*")), "name": "other"}),
    Case("deploy-role-least-privilege", RP, DEPLOY, deploy(allow("*")), expect="allows *"),
    Case("deploy-role-least-privilege", RP, DEPLOY, deploy(allow("iam:*")), expect="by wildcard"),
    Case("deploy-role-least-privilege", RP, DEPLOY, deploy(allow("iam:CreateRole")), expect="on *"),
    Case(
        "deploy-role-least-privilege",
        RP,
        DEPLOY,
        deploy(allow("iam:PutRolePolicy", OWN)),
        expect="without an iam:PermissionsBoundary condition",
    ),
    Case(
        "deploy-role-least-privilege",
        RP,
        DEPLOY,
        deploy(allow("secretsmanager:GetSecretValue")),
        expect='grants secretsmanager:GetSecretValue on "*"',
    ),
    Case("deploy-role-least-privilege", RP, DEPLOY, deploy(allow("eks:*")), expect='grants eks:* on "*"'),
    # EC2 IDs are generated: a write on "*" must be conditioned on the stack's tag.
    Case(
        "deploy-role-least-privilege",
        RP,
        DEPLOY,
        deploy(allow("ec2:ModifyInstanceAttribute")),
        expect='grants ec2:ModifyInstanceAttribute on "*" with no tag condition',
    ),
    # The boundary (a managed policy named <prefix>-boundary): no IAM writes, reads are fine.
    Case(
        "deploy-role-least-privilege",
        t.IAM_POLICY,
        boundary(allow(["ec2:RunInstances", "ecr:BatchGetImage", "iam:ListInstanceProfiles"], **IN_REGION)),
        boundary(allow("iam:PutRolePolicy", OWN, Condition=BOUNDED)),
        expect="the permissions boundary allows iam:PutRolePolicy",
    ),
    # An EC2 write on "*" in the boundary: only in the stack's region (review 19, round 2).
    Case(
        "deploy-role-least-privilege",
        t.IAM_POLICY,
        boundary(allow("ec2:TerminateInstances", **IN_REGION)),
        boundary(allow("ec2:TerminateInstances")),
        expect='allows ec2:TerminateInstances on "*" in every region',
    ),
    # A service wildcard on "*" in the boundary hands every role of the stack the whole service
    # (review 19, round 4: ec2:* let them replace another team's root volume).
    Case(
        "deploy-role-least-privilege",
        t.IAM_POLICY,
        boundary(allow("ec2:RunInstances", **IN_REGION)),
        boundary(allow("ec2:*", **IN_REGION)),
        expect='allows ec2:* on "*": list the actions',
    ),
    Case(
        "deploy-role-least-privilege", RP, DEPLOY, deploy(allow("iam:CreateAccessKey", OWN)), expect="account"
    ),
    Case(
        "deploy-role-least-privilege",
        RP,
        DEPLOY,
        deploy(allow("organizations:ListAccounts")),
        expect="account",
    ),
    Case(
        "deploy-role-least-privilege",
        RP,
        DEPLOY,
        deploy(allow("iam:PassRole", OWN)),
        expect="PassedToService",
    ),
    Case(
        "deploy-role-least-privilege",
        RP,
        DEPLOY,
        deploy(allow("iam:CreateServiceLinkedRole", "arn:aws:iam::123456789012:role/aws-service-role/x")),
        expect="AWSServiceName",
    ),
    Case(
        "deploy-role-least-privilege",
        RP,
        DEPLOY,
        deploy(*[allow(f"ec2:Describe{'X' * 60}{i}") for i in range(120)]),
        expect="characters",
    ),
    Case("iam-trust-no-public-principal", ROLE, FLOW_ROLE, trust({"AWS": "*"})),
    Case(
        "iam-trust-web-identity-scoped",
        ROLE,
        IRSA,
        put(
            IRSA,
            "assumeRolePolicy",
            IRSA["assumeRolePolicy"].replace("StringEquals", "StringLike").replace("aws-node", "*"),
        ),
        expect="wildcard",
    ),
    Case(
        "iam-trust-web-identity-scoped",
        ROLE,
        PULUMI_OIDC,
        trust(
            {"Federated": GITHUB},
            "sts:AssumeRoleWithWebIdentity",
            Condition={"StringEquals": {"token.actions.githubusercontent.com:aud": "sts"}},
        ),
        expect=":sub condition",
    ),
    Case(
        "iam-trust-web-identity-scoped",
        ROLE,
        PULUMI_OIDC,
        put(PULUMI_OIDC, "assumeRolePolicy", PULUMI_OIDC["assumeRolePolicy"].replace("stack:prod:*", "*")),
        expect="wildcard",
    ),
    # Every workflow of a branch shares the `sub`: a GitHub trust names its workflow files too.
    Case(
        "iam-trust-web-identity-scoped", ROLE, CATALOG_CI, ci_role("x"), expect="job_workflow_ref condition"
    ),
    Case(
        "iam-trust-web-identity-scoped",
        ROLE,
        CATALOG_CI,
        ci_role("x", "*.yml", operator="StringLike"),
        expect="matched with StringLike",
    ),
    Case(
        "iam-trust-web-identity-scoped",
        ROLE,
        CATALOG_CI,
        ci_role("x", "build-service.yml@refs/heads/*"),
        expect="is not <owner>/<repo>/.github/workflows/<file>@<ref>",
    ),
    Case(
        "iam-trust-pod-identity-scoped",
        ROLE,
        POD_ROLE,
        trust({"Service": "pods.eks.amazonaws.com"}),
        expect="kubernetes-namespace",
    ),
    Case("iam-trust-confused-deputy", ROLE, FLOW_ROLE, trust({"Service": "vpc-flow-logs.amazonaws.com"})),
    Case("vpc-flow-log-all-traffic", t.FLOW_LOG, {"trafficType": "ALL"}, {"trafficType": "REJECT"}),
    Case("vpc-nat-per-az", t.AWSX_VPC, VPC, put(VPC, "natGateways.strategy", "Single")),
    Case("vpc-multi-az", t.AWSX_VPC, VPC, put(VPC, "availabilityZoneNames", ["a", "b"])),
    Case(
        "vpc-multi-az",
        t.AWSX_VPC,
        put(VPC, "availabilityZoneNames", ["a", "b"]),
        put(VPC, "availabilityZoneNames", ["a"]),
        production=False,
    ),
    Case(
        "vpc-public-subnets-not-for-nodes",
        t.AWSX_VPC,
        VPC,
        put(VPC, ("subnetSpecs", "1", "tags", "karpenter.sh/discovery"), "c"),
    ),
    Case(
        "sg-no-public-ingress",
        t.SECURITY_GROUP,
        SG,
        put(SG, "ingress.0.cidrBlocks", ["0.0.0.0/0"]),
        expect="0.0.0.0/0",
    ),
    Case(
        "sg-no-public-ingress",
        t.SG_INGRESS_RULE,
        {"cidrIpv4": "10.0.0.0/8"},
        {"cidrIpv6": "::/0", "fromPort": 22, "toPort": 22},
    ),
    Case("sg-rule-descriptions", t.SECURITY_GROUP, SG, put(SG, "ingress.0.description", ...)),
    Case("helm-chart-version-pinned", t.HELM_RELEASE, METRICS, put(METRICS, "version", "^3.13")),
    Case(
        "helm-no-secret-values",
        t.HELM_RELEASE,
        METRICS,
        put(METRICS, "values", "[secret]"),
        expect="as a whole",
    ),
    Case(
        "helm-no-secret-values",
        t.HELM_CHART,
        METRICS,
        put(METRICS, "values.grafana", {"adminPassword": "hunter2"}),
        expect="literal",
    ),
    Case(
        "helm-no-secret-values",
        t.HELM_RELEASE,
        METRICS,
        put(METRICS, "values.env", ["[secret]"]),
        expect="values.env.0",
    ),
    Case("helm-ha-replicas", t.HELM_RELEASE, METRICS, put(METRICS, "values.replicas", ...), expect="below 2"),
    Case(
        "helm-pdb-enabled", t.HELM_RELEASE, METRICS, put(METRICS, "values.podDisruptionBudget.enabled", False)
    ),
    Case("helm-pdb-enabled", t.HELM_RELEASE, KARPENTER, put(KARPENTER, "values.podDisruptionBudget", {})),
    Case(
        "helm-resource-requests",
        t.HELM_RELEASE,
        METRICS,
        put(METRICS, "values.resources.requests", {"cpu": "1"}),
        expect="memory",
    ),
    Case(
        "helm-resource-requests",
        t.HELM_RELEASE,
        ARGOCD,
        put(ARGOCD, "values.notifications.resources", ...),
        expect="notifications",
    ),
    Case("helm-memory-limits", t.HELM_RELEASE, METRICS, put(METRICS, "values.resources.limits", ...)),
    Case("helm-system-node-placement", t.HELM_RELEASE, KARPENTER, put(KARPENTER, "values.nodeSelector", ...)),
    Case("helm-chart-profile-known", t.HELM_RELEASE, METRICS, put(METRICS, "chart", "ingress-nginx")),
    Case(
        "k8s-namespace-pod-security",
        t.CONFIG_GROUP,
        group("Namespace", NS),
        group("Namespace", put(NS, "metadata.labels", {})),
    ),
    Case(
        "k8s-namespace-not-privileged",
        t.NAMESPACE,
        NS,
        put(NS, ("metadata", "labels", "pod-security.kubernetes.io/enforce"), "privileged"),
    ),
    Case(
        "k8s-storage-class-encrypted",
        t.CONFIG_GROUP,
        group("StorageClass", SC),
        group("StorageClass", put(SC, "parameters", {})),
    ),
    Case("k8s-storage-class-retain", t.STORAGE_CLASS, SC, put(SC, "reclaimPolicy", "Delete")),
    Case(
        "eso-cluster-store-conditions",
        t.CLUSTER_SECRET_STORE,
        STORE,
        put(STORE, "spec.conditions", []),
        expect="service-catalog has no spec.conditions",
    ),
    Case(
        "eso-cluster-store-conditions",
        t.CLUSTER_SECRET_STORE,
        put(STORE, "spec.conditions", [{"namespaceRegexes": ["^catalog$"]}]),
        put(STORE, "spec.conditions", [{"namespaceRegexes": ["catalog"]}]),
        expect="not anchored",
    ),
    Case(
        "eso-cluster-store-conditions",
        t.CLUSTER_SECRET_STORE,
        put(STORE, "spec.conditions", [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]),
        put(STORE, "spec.conditions", [{"namespaceSelector": {}}]),
        expect="admits every namespace",
    ),
    Case(
        "eso-cluster-store-conditions",
        t.CONFIG_GROUP,
        group("ClusterSecretStore", STORE),
        group("ClusterSecretStore", put(STORE, "spec.conditions", None)),
    ),
    Case("argocd-project-scoped", t.APP_PROJECT, PROJECT, put(PROJECT, "spec.sourceRepos", ["*"])),
    Case(
        "eks-coredns-scales-and-survives",
        ADDON,
        COREDNS,
        put(COREDNS, "configurationValues", json.dumps({"replicaCount": 3})),
        expect="fixed replica count",
    ),
    Case(
        "eks-coredns-scales-and-survives",
        ADDON,
        COREDNS,
        put(COREDNS, "configurationValues", json.dumps({"autoScaling": {"enabled": True}})),
        expect="PodDisruptionBudget",
    ),
    Case(
        "ecr-customer-managed-key",
        t.ECR_REPOSITORY,
        REPO,
        put(REPO, "encryptionConfigurations.0.kmsKey", ...),
        expect="aws/ecr",
    ),
    Case(
        "argocd-project-scoped",
        t.APP_PROJECT,
        PROJECT,
        put(PROJECT, "spec.clusterResourceWhitelist", [{"group": "*", "kind": "*"}]),
    ),
    Case(
        "argocd-admin-disabled",
        t.HELM_RELEASE,
        ARGOCD,
        put(ARGOCD, ("values", "configs", "cm", "admin.enabled"), True),
    ),
]

PIA = {
    "clusterName": "c",
    "roleArn": "arn:aws:iam::1:role/pod-role",
    "namespace": "kube-system",
    "serviceAccount": "karpenter",
}
NS_X = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
DENY_X = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny", "namespace": "x"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}
DEPLOY_ROLE = {
    "name": "eks-platform-dev-deployments-deploy",
    "assumeRolePolicy": doc(
        {
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/api.pulumi.com/oidc"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    ),
}
NODE_ROLE = {"name": "eks-platform-dev-node", "permissionsBoundary": BOUNDARY_ARN}
EKS_OWN_ROLES = {"serviceRole": "r", "skipDefaultNodeGroup": True}
LOCKED_DEFAULT = {
    "metadata": {"name": "default", "namespace": "argocd"},
    "spec": {
        "sourceRepos": [],
        "destinations": [],
        "clusterResourceWhitelist": [],
        "namespaceResourceBlacklist": [{"group": "*", "kind": "*"}],
    },
}
STACK_CASES = [
    StackCase(
        "deploy-role-bounded-roles",
        [(ROLE, DEPLOY_ROLE), (RP, DEPLOY), (ROLE, NODE_ROLE), (EKS, EKS_OWN_ROLES)],
        [(ROLE, DEPLOY_ROLE), (RP, DEPLOY), (ROLE, {"name": "eks-platform-dev-node"})],
        expect="role eks-platform-dev-node has no permissionsBoundary",
    ),
    StackCase(
        "deploy-role-bounded-roles",
        # No deploy role in the plan and no bounded role: an admin applies it, nothing to carry.
        [(ROLE, {"name": "x"}), (EKS, {})],
        [(RP, DEPLOY), (ROLE, NODE_ROLE), (EKS, {"serviceRole": "r"})],
        expect="pulumi-eks creates an instance role without the boundary",
    ),
    StackCase(
        "ecr-lifecycle-policy",
        [(t.ECR_REPOSITORY, REPO), (t.ECR_LIFECYCLE, {"repository": "r", "policy": "{}"})],
        [(t.ECR_REPOSITORY, REPO), (t.ECR_LIFECYCLE, {"repository": "other", "policy": "{}"})],
    ),
    StackCase(
        "iam-trust-github-workflow-one-role",
        [(ROLE, CATALOG_CI), (ROLE, ci_role("orders-ci", "orders.yml", "orders-promote.yml"))],
        # The shared-subject mistake: a second service's role trusting the first one's files.
        [(ROLE, CATALOG_CI), (ROLE, ci_role("orders-ci", "orders.yml", "catalog-promote.yml"))],
        expect="o/r/.github/workflows/catalog-promote.yml@refs/heads/main can assume 2 roles",
    ),
    StackCase(
        "iam-pod-identity-matches-trust",
        [(ROLE, POD_ROLE), (t.POD_IDENTITY, PIA)],
        [(ROLE, POD_ROLE), (t.POD_IDENTITY, put(PIA, "serviceAccount", "default"))],
        expect="default",
    ),
    StackCase(
        "iam-pod-identity-matches-trust",
        [
            (ROLE, POD_ROLE),
            (
                ADDON,
                {"podIdentityAssociations": [{"roleArn": PIA["roleArn"], "serviceAccount": "karpenter"}]},
            ),
        ],
        [
            (ROLE, POD_ROLE),
            (ADDON, {"podIdentityAssociations": [{"roleArn": PIA["roleArn"], "serviceAccount": "ebs"}]}),
        ],
    ),
    StackCase(
        "vpc-default-sg-no-rules",
        [(t.AWSX_VPC, VPC), (t.DEFAULT_SECURITY_GROUP, {"vpcId": "vpc-1"})],
        [(t.AWSX_VPC, VPC)],
        expect="allow-all",
    ),
    StackCase(
        "vpc-default-sg-no-rules",
        [(t.AWSX_VPC, VPC), (t.DEFAULT_SECURITY_GROUP, {"vpcId": "vpc-1", "ingress": []})],
        [(t.AWSX_VPC, VPC), (t.DEFAULT_SECURITY_GROUP, {"vpcId": "vpc-1", "egress": SG["ingress"]})],
        expect="egress",
    ),
    StackCase(
        "prod-state-protected",
        [(t.AWSX_VPC, VPC, True), (t.ECR_REPOSITORY, REPO, True), (t.FLOW_LOG, {"vpcId": "v"}, False)],
        [(t.AWSX_VPC, VPC, True), (t.ECR_REPOSITORY, REPO, False)],
        expect="not protected",
    ),
    StackCase(
        "prod-state-retained",
        # Retained; a credential that goes with the stack; unknown under CrossGuard (silent).
        [
            (t.KMS_KEY, {}, True, True),
            (t.SM_SECRET, {"name": "eks-platform-prod/deploy-agent-token"}, True, False),
            (t.ECR_REPOSITORY, REPO, True, None),
        ],
        [(t.KMS_KEY, {}, True, True), (t.LOG_GROUP, {"name": "/aws/eks/c/cluster"}, True, False)],
        expect="retain_on_delete",
    ),
    StackCase(
        "k8s-namespace-default-deny",
        [(t.CONFIG_GROUP, {"objs": [NS_X]}), (t.CONFIG_GROUP, {"objs": [DENY_X]})],
        [
            (t.CONFIG_GROUP, {"objs": [NS_X]}),
            (t.CONFIG_GROUP, {"objs": [put(DENY_X, "spec.policyTypes", ["Ingress"])]}),
        ],
        expect="namespace x has no default-deny",
    ),
    StackCase(
        "k8s-namespace-default-deny",
        [(t.NAMESPACE, NS_X), (t.NETWORK_POLICY, DENY_X)],
        [(t.NAMESPACE, NS_X), (t.NETWORK_POLICY, put(DENY_X, "spec.ingress", [{}]))],
        expect="namespace x",
    ),
    StackCase(
        "argocd-default-project-locked",
        [(t.HELM_RELEASE, {"chart": "argo-cd"}), (t.APP_PROJECT_PATCH, LOCKED_DEFAULT)],
        [
            (t.HELM_RELEASE, {"chart": "argo-cd"}),
            (
                t.APP_PROJECT_PATCH,
                put(LOCKED_DEFAULT, "spec.destinations", [{"server": "*", "namespace": "*"}]),
            ),
        ],
        expect="`default` AppProject keeps the permissions",
    ),
    StackCase(
        "argocd-default-project-locked",
        [(t.HELM_RELEASE, {"chart": "argo-cd"}), (t.APP_PROJECT, LOCKED_DEFAULT)],
        [(t.HELM_RELEASE, {"chart": "argo-cd"})],
        expect="project: default",
    ),
    StackCase(
        "eso-external-secret-store-admits",
        [(t.CLUSTER_SECRET_STORE, STORE), (t.EXTERNAL_SECRET, CATALOG_SECRET)],
        [
            (t.CLUSTER_SECRET_STORE, STORE),
            (t.EXTERNAL_SECRET, put(CATALOG_SECRET, "metadata.namespace", "billing")),
        ],
        expect="do not admit its namespace",
    ),
    StackCase(
        "vpc-flow-logs-enabled",
        [(t.AWSX_VPC, VPC), (t.FLOW_LOG, {"vpcId": "vpc-1", "trafficType": "ALL"})],
        [(t.AWSX_VPC, VPC)],
    ),
]


def engine(props: dict[str, Any]) -> Any:
    """`props` as CrossGuard's Analyze hands them to a policy (pulumi_policy/policy.py)."""
    struct = struct_pb2.Struct()
    struct.update(props)
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(struct)))


def resource_rule(name: str) -> ResourceRule:
    return next(r for r in RULES if r.name == name and isinstance(r, ResourceRule))


def stack_rule(name: str) -> StackRule:
    return next(r for r in RULES if r.name == name and isinstance(r, StackRule))


def resources(pairs: list[tuple[Any, ...]], wrap: Any) -> list[Resource]:
    return [
        Resource(
            typ,
            f"urn:pulumi:s::p::{typ}::r{i}",
            f"r{i}",
            wrap(p),
            protect=bool(rest and rest[0]),
            retain_on_delete=rest[1] if len(rest) > 1 else None,
        )
        for i, (typ, p, *rest) in enumerate(pairs)
    ]


@pytest.mark.parametrize("wrap", [copy.deepcopy, engine], ids=["plain", "engine"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}-{c.typ.rsplit(':', 1)[-1]}")
def test_resource_rule_passes_the_good_and_fails_the_bad(case: Case, wrap: Any) -> None:
    rule, ctx = resource_rule(case.rule), Context(production=case.production)
    assert rule.evaluate(case.typ, wrap(case.good), ctx) == []
    messages = rule.evaluate(case.typ, wrap(case.bad), ctx)
    assert messages, f"{case.rule} accepted {case.bad}"
    assert any(case.expect in m for m in messages), messages


@pytest.mark.parametrize("wrap", [copy.deepcopy, engine], ids=["plain", "engine"])
@pytest.mark.parametrize("case", STACK_CASES, ids=lambda c: c.rule)
def test_stack_rule_passes_the_good_and_fails_the_bad(case: StackCase, wrap: Any) -> None:
    rule, ctx = stack_rule(case.rule), Context(production=case.production)
    assert rule.evaluate(resources(case.good, wrap), ctx) == []
    bad = rule.evaluate(resources(case.bad, wrap), ctx)
    assert bad and all(urn and urn.startswith("urn:pulumi:") for urn, _ in bad)
    assert any(case.expect in message for _, message in bad), bad


def test_every_rule_has_a_passing_and_a_failing_case() -> None:
    covered = {c.rule for c in CASES} | {c.rule for c in STACK_CASES}
    assert covered == {r.name for r in RULES}


def test_rules_are_named_described_leveled_and_sourced() -> None:
    names = [r.name for r in RULES]
    assert len(names) >= 40 and len(set(names)) == len(names)
    for rule in RULES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", rule.name), rule.name
        assert rule.description.endswith(".") and len(rule.description) > 20, rule.name
        assert rule.prod in Level and (rule.dev is None or rule.dev in Level), rule.name
        # Prod is never laxer than dev.
        assert not (rule.prod is Level.ADVISORY and rule.dev is Level.MANDATORY), rule.name
        assert rule.sources, rule.name
        for source in rule.sources:
            if source.kind == "checkov":
                assert re.fullmatch(r"CKV2?_(AWS|K8S)_\d+", source.ref), source
            if source.kind == "cis-eks":
                assert re.fullmatch(r"[1-5](\.\d+){1,2}", source.ref), source
        if isinstance(rule, ResourceRule):
            assert rule.types and all(":" in typ for typ in rule.types), rule.name


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def _policy(name: str, production: bool) -> Any:
    return next(p for p in policies(production) if p.name == name)


def _violations(policy: Any, typ: str, props: dict[str, Any], config: Any = None) -> list[str]:
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    args = ResourceValidationArgs(
        typ, engine(props), f"urn:pulumi:s::p::{typ}::r", "r", _opts(), None, config
    )
    policy.validate(args, report)
    return found


@pytest.mark.parametrize(
    ("name", "typ", "good", "bad"),
    [
        ("kms-key-rotation", t.KMS_KEY, KEY_RES, put(KEY_RES, "enableKeyRotation", False)),
        ("eks-public-endpoint-restricted", EKS, PUBLIC, put(PUBLIC, "publicAccessCidrs", ["0.0.0.0/0"])),
        (
            "iam-trust-web-identity-scoped",
            ROLE,
            IRSA,
            trust({"Federated": GITHUB}, "sts:AssumeRoleWithWebIdentity"),
        ),
        ("helm-resource-requests", t.HELM_RELEASE, METRICS, put(METRICS, "values.resources", {})),
    ],
)
def test_crossguard_resource_policies_report_through_pulumi_policy(
    name: str, typ: str, good: Any, bad: Any
) -> None:
    policy = _policy(name, production=True)
    assert isinstance(policy, ResourceValidationPolicy)
    assert policy.enforcement_level is EnforcementLevel.MANDATORY
    assert _violations(policy, typ, good) == []
    assert _violations(policy, typ, bad)
    assert _violations(policy, "aws:s3/bucket:Bucket", bad) == []  # other types are not its business


def test_crossguard_levels_follow_the_stack_and_config_overrides_the_flag() -> None:
    prod, dev = {p.name: p for p in policies(True)}, {p.name: p for p in policies(False)}
    assert prod["eks-deletion-protection"].enforcement_level is EnforcementLevel.MANDATORY
    assert dev["eks-deletion-protection"].enforcement_level is EnforcementLevel.DISABLED
    assert dev["vpc-nat-per-az"].enforcement_level is EnforcementLevel.ADVISORY
    assert dev["kms-key-rotation"].enforcement_level is EnforcementLevel.MANDATORY
    small = put(MNG, "scalingConfig.minSize", 2)
    assert _violations(prod["nodegroup-min-size"], t.EKS_MNG, small)
    assert _violations(prod["nodegroup-min-size"], t.EKS_MNG, small, {"production": False}) == []


def test_crossguard_stack_policy_reports_the_resource() -> None:
    policy = _policy("ecr-lifecycle-policy", production=True)
    assert isinstance(policy, StackValidationPolicy)
    found: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append((message, urn))

    repo = PolicyResource(t.ECR_REPOSITORY, engine(REPO), "urn:repo", "r", _opts(), None, None, [], {})
    policy.validate(StackValidationArgs([repo]), report)
    assert found == [("repository r has no lifecycle policy", "urn:repo")]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"PULUMI_CONFIG": '{"eks-platform:production": "true"}'}, True),
        ({"PULUMI_CONFIG": '{"eks-platform:production": "false"}'}, False),
        ({"PULUMI_CONFIG": '{"aws:region": "eu-west-1"}'}, False),
        ({"PULUMI_CONFIG": "not json"}, False),
        ({}, False),
    ],
)
def test_the_pack_reads_production_from_the_stack_config(config: dict[str, str], expected: bool) -> None:
    assert stack_is_production(config) is expected


def test_pack_requirements_match_the_project_pins() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    normal = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    for line in (ROOT / "policy" / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            assert normal.get(name.lower().replace("_", "-")) == version, line


def test_the_pack_serves_the_engine_like_the_cli_runs_it() -> None:
    """Start policy/ as `pulumi preview --policy-pack policy` does and talk to it over gRPC."""
    import grpc  # type: ignore[import-untyped]

    env = {**os.environ, "PULUMI_CONFIG": json.dumps({"eks-platform:production": "true"})}
    proc = subprocess.Popen(  # the CLI's analyzer: python -m pulumi.policy <engine> <pack dir>
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=ROOT / "policy",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "the pack printed no port"
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "eks-platform" and len(info.policies) == len(RULES)
            properties = struct_pb2.Struct()
            properties.update({"enableKeyRotation": False, "deletionWindowInDays": 7})
            request = analyzer_pb2.AnalyzeRequest(
                type=t.KMS_KEY, properties=properties, urn="urn:k", name="k"
            )
            diagnostics = stub.Analyze(request, timeout=30).diagnostics
    finally:
        proc.kill()
        proc.wait(timeout=10)
    found = {(d.policyName, d.enforcementLevel) for d in diagnostics}
    mandatory = analyzer_pb2.EnforcementLevel.Value("MANDATORY")
    assert found == {("kms-key-rotation", mandatory), ("kms-deletion-window", mandatory)}
