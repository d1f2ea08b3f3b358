"""Karpenter, pod autoscaling and the IP-capacity check, for both stacks under mocks."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from model.records import PlanResult
from stacks.config import PROJECT, ConfigError, validate
from stacks.scaling import PREFIX_SIZE, WARM_IP_TARGET
from tests.configcheck import assert_section_rejected
from tests.schemas import validate_custom_resource
from tests.stackinfo import is_production
from tools.mocks import ROOT, stack_config

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
VPA = "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler"
RELEASE = "kubernetes:helm.sh/v3:Release"


def named(plan: PlanResult, typ: str, suffix: str):
    (found,) = [r for r in plan.of_type(typ) if r.name.endswith(suffix)]
    return found


def release(plan: PlanResult, release_name: str):
    (found,) = [r for r in plan.of_type(RELEASE) if r.get("name") == release_name]
    return found


def custom_resource(record) -> dict:
    inputs = record.inputs
    return {
        "apiVersion": inputs["apiVersion"],
        "kind": inputs["kind"],
        "metadata": inputs["metadata"],
        "spec": inputs["spec"],
    }


# -- controller identity --------------------------------------------------------------------------


def test_controller_role_trusts_exactly_one_service_account(plan: PlanResult) -> None:
    role = named(plan, "aws:iam/role:Role", "karpenter-controller")
    (statement,) = json.loads(role.get("assumeRolePolicy"))["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    conditions = statement["Condition"]["StringEquals"]
    assert conditions["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    assert conditions["aws:RequestTag/kubernetes-service-account"] == "karpenter"
    assert conditions["aws:RequestTag/eks-cluster-arn"].endswith(f":cluster/eks-platform-{plan.stack}")
    association = named(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "karpenter-controller")
    assert (association.get("namespace"), association.get("serviceAccount")) == ("kube-system", "karpenter")
    assert association.get("roleArn") == f"arn:aws:iam::123456789012:role/{role.get('name')}"
    values = release(plan, "karpenter").get("values")
    assert values["serviceAccount"]["name"] == "karpenter"


def test_controller_policy_is_scoped(plan: PlanResult) -> None:
    (policy,) = [
        r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("karpenter-controller")
    ]
    statements = {s["Sid"]: s for s in json.loads(policy.get("policy"))["Statement"]}
    node_role = named(plan, "aws:iam/role:Role", "karpenter-node")
    assert statements["AllowPassingInstanceRole"]["Resource"] == (
        f"arn:aws:iam::123456789012:role/{node_role.get('name')}"
    )
    assert statements["AllowInterruptionQueueActions"]["Resource"] == queue_arn(plan)
    cluster_tag = f"kubernetes.io/cluster/eks-platform-{plan.stack}"
    for sid in ("AllowScopedEC2InstanceActionsWithTags", "AllowScopedDeletion", "AllowScopedResourceTagging"):
        conditions = json.dumps(statements[sid]["Condition"])
        assert cluster_tag in conditions, sid
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(not a.endswith(":*") and a != "*" for a in actions), statement["Sid"]
        profile_writes = [a for a in actions if "InstanceProfile" in a and a not in READ_INSTANCE_PROFILES]
        assert not profile_writes


READ_INSTANCE_PROFILES = {"iam:GetInstanceProfile", "iam:ListInstanceProfiles"}
KARPENTER_REFERENCE = ROOT.parent / "shared" / "reference" / "karpenter-1.14" / "controller-policy.json"
# Actions of Karpenter's own v1.14 template the platform deliberately does not grant.
NOT_GRANTED = {
    # The platform creates the node instance profile (components/karpenter.py) and names it in the
    # EC2NodeClass, so Karpenter never creates, tags, re-roles or deletes one.
    "iam:CreateInstanceProfile": "profile owned by the platform",
    "iam:TagInstanceProfile": "profile owned by the platform",
    "iam:AddRoleToInstanceProfile": "profile owned by the platform",
    "iam:RemoveRoleFromInstanceProfile": "profile owned by the platform",
    "iam:DeleteInstanceProfile": "profile owned by the platform",
    # ZonalShiftPolicy: only for Karpenter's opt-in zonal shift feature, which is off.
    "arc-zonal-shift:GetManagedResource": "zonal shift not enabled",
}


def reference_actions() -> set[str]:
    if not KARPENTER_REFERENCE.exists():
        pytest.skip(f"Karpenter's reference policy is not available at {KARPENTER_REFERENCE}")
    reference = json.loads(KARPENTER_REFERENCE.read_text())
    return {a for statements in reference["policies"].values() for s in statements for a in s["actions"]}


def granted_actions(policy: str) -> set[str]:
    granted: set[str] = set()
    for statement in json.loads(policy)["Statement"]:
        if statement["Effect"] == "Allow":
            action = statement["Action"]
            granted.update(action if isinstance(action, list) else [action])
    return granted


def missing_actions(policy: str, reference: set[str]) -> set[str]:
    return reference - set(NOT_GRANTED) - granted_actions(policy)


def controller_policy_document(plan: PlanResult) -> str:
    (policy,) = [
        r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("karpenter-controller")
    ]
    return str(policy.get("policy"))


def test_controller_policy_grants_everything_karpenter_1_14_needs(plan: PlanResult) -> None:
    """Karpenter's own template for the pinned version, minus the documented exclusions."""
    reference = reference_actions()
    assert set(NOT_GRANTED) <= reference, "an exclusion no longer exists upstream: drop it"
    policy = controller_policy_document(plan)
    assert missing_actions(policy, reference) == set()
    # The exclusions really are not granted.
    assert not set(NOT_GRANTED) & granted_actions(policy)


@pytest.mark.parametrize("action", ["iam:ListInstanceProfiles", "ec2:DescribeInstanceStatus"])
def test_reference_check_catches_a_dropped_action(plan: PlanResult, action: str) -> None:
    document = json.loads(controller_policy_document(plan))
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != action]
    assert missing_actions(json.dumps(document), reference_actions()) == {action}


def test_launch_statement_names_every_resource_of_the_template(plan: PlanResult) -> None:
    """AllowScopedEC2InstanceAccessActions of the v1.14.1 template (same file as above) names these
    resource kinds; placement-group/* came with 1.14 (an EC2NodeClass placementGroupSelector)."""
    document = json.loads(controller_policy_document(plan))
    (statement,) = [s for s in document["Statement"] if s["Sid"] == "AllowScopedEC2InstanceAccessActions"]
    kinds = sorted(arn.rsplit(":", 1)[-1] for arn in statement["Resource"])
    assert kinds == [
        "capacity-reservation/*",
        "image/*",
        "placement-group/*",
        "security-group/*",
        "snapshot/*",
        "subnet/*",
    ]


def queue_arn(plan: PlanResult) -> str:
    queue = plan.one("aws:sqs/queue:Queue")
    return f"arn:aws:sqs:eu-west-1:123456789012:{queue.name}"


# -- interruption queue ---------------------------------------------------------------------------


def test_interruption_queue_is_encrypted_and_short_lived(plan: PlanResult) -> None:
    queue = plan.one("aws:sqs/queue:Queue")
    assert queue.get("sqsManagedSseEnabled") is True
    assert queue.get("messageRetentionSeconds") == 300


def test_eventbridge_rules_target_the_queue(plan: PlanResult) -> None:
    rules = plan.of_type("aws:cloudwatch/eventRule:EventRule")
    kinds = sorted(json.loads(r.get("eventPattern"))["detail-type"][0] for r in rules)
    # The five rules of Karpenter's template at the pinned tag (aws/karpenter-provider-aws v1.14.1,
    # bde00654, website/content/en/docs/getting-started/getting-started-with-karpenter/
    # cloudformation.yaml), the capacity-reservation one included.
    assert kinds == [
        "AWS Health Event",
        "EC2 Capacity Reservation Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning",
    ]
    targets = plan.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert sorted(t.get("rule") for t in targets) == sorted(r.get("name") for r in rules)
    assert {t.get("arn") for t in targets} == {
        f"arn:aws:sqs:eu-west-1:123456789012:{plan.one('aws:sqs/queue:Queue').name}"
    }


def test_only_eventbridge_may_send_to_the_queue(plan: PlanResult) -> None:
    policy = json.loads(plan.one("aws:sqs/queuePolicy:QueuePolicy").get("policy"))
    allow, deny = policy["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    rule_arns = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    rules = plan.of_type("aws:cloudwatch/eventRule:EventRule")
    assert sorted(rule_arns) == sorted(f"arn:aws:cloudwatch:eu-west-1:123456789012:{r.name}" for r in rules)
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# -- chart wiring ---------------------------------------------------------------------------------


def test_chart_values_are_wired_from_the_resources(plan: PlanResult, configs) -> None:
    values = release(plan, "karpenter").get("values")
    queue = plan.one("aws:sqs/queue:Queue")
    assert values["settings"]["interruptionQueue"] == queue.get("name")
    assert values["settings"]["clusterName"] == configs[plan.stack].cluster_name
    assert values["replicas"] == (2 if is_production(plan.stack) else 1)
    assert values["nodeSelector"] == {"eks-platform.io/node-pool": "system"}
    assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"} in values[
        "tolerations"
    ]
    assert values["podDisruptionBudget"]["maxUnavailable"] == 1
    controller, crds = release(plan, "karpenter"), release(plan, "karpenter-crd")
    assert controller.get("skipCrds") is True and crds.urn in controller.dependencies
    assert controller.get("version") == crds.get("version") == "1.14.1"
    assert controller.get("chart") == "oci://public.ecr.aws/karpenter/karpenter"


def test_nodes_get_an_access_entry_and_only_worker_policies(plan: PlanResult) -> None:
    entry = plan.one("aws:eks/accessEntry:AccessEntry")
    node_role = named(plan, "aws:iam/role:Role", "karpenter-node")
    assert entry.get("type") == "EC2_LINUX"
    assert entry.get("principalArn") == f"arn:aws:iam::123456789012:role/{node_role.get('name')}"
    attached = sorted(
        r.get("policyArn").rsplit("/", 1)[-1]
        for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith(node_role.name)
    )
    assert attached == ["AmazonEC2ContainerRegistryPullOnly", "AmazonEKSWorkerNodePolicy"]


# -- NodePools and EC2NodeClass -------------------------------------------------------------------


def test_custom_resources_validate_against_upstream_schemas(plan: PlanResult) -> None:
    objects = plan.of_type(NODEPOOL) + plan.of_type(NODECLASS) + plan.of_type(VPA)
    assert len(objects) >= 6
    for record in objects:
        validate_custom_resource(custom_resource(record))


def test_schema_check_catches_a_bad_nodepool(plan: PlanResult) -> None:
    bad = custom_resource(plan.of_type(NODEPOOL)[0])
    bad["spec"]["disruption"]["consolidationPolicy"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(bad)


def test_node_class_security(plan: PlanResult, configs) -> None:
    spec = plan.one(NODECLASS).get("spec")
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert all(
        d["ebs"]["encrypted"] is True and d["ebs"]["volumeType"] == "gp3" for d in spec["blockDeviceMappings"]
    )
    cluster = configs[plan.stack].cluster_name
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": cluster}}]
    assert spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": cluster}}]
    profile = named(plan, "aws:iam/instanceProfile:InstanceProfile", "karpenter-node")
    assert spec["instanceProfile"] == profile.get("name") and "role" not in spec
    assert re.fullmatch(r"al2023@v\d{8}", spec["amiSelectorTerms"][0]["alias"])
    assert spec["tags"]["platform:stack"] == plan.stack
    (tag,) = [t for t in plan.of_type("aws:ec2/tag:Tag") if t.get("key") == "karpenter.sh/discovery"]
    assert (tag.get("key"), tag.get("value")) == ("karpenter.sh/discovery", cluster)


def pools(plan: PlanResult) -> dict[str, dict]:
    return {r.get("metadata")["name"]: r.get("spec") for r in plan.of_type(NODEPOOL)}


def requirement(spec: dict, key: str) -> list[str]:
    (req,) = [r for r in spec["template"]["spec"]["requirements"] if r["key"] == key]
    return req["values"]


def test_dev_is_spot_first(dev: PlanResult) -> None:
    (spec,) = pools(dev).values()
    assert requirement(spec, "karpenter.sh/capacity-type") == ["spot", "on-demand"]
    assert spec["limits"] == {"cpu": "64", "memory": "256Gi"}
    assert spec["disruption"]["budgets"] == [{"nodes": "20%"}]


def test_prod_is_on_demand_with_a_tainted_spot_pool(prod: PlanResult) -> None:
    specs = pools(prod)
    assert set(specs) == {"default", "spot"}
    assert requirement(specs["default"], "karpenter.sh/capacity-type") == ["on-demand"]
    assert requirement(specs["spot"], "karpenter.sh/capacity-type") == ["spot"]
    assert specs["spot"]["template"]["spec"]["taints"] == [
        {"key": "eks-platform.io/spot", "value": "true", "effect": "NoSchedule"}
    ]
    assert "taints" not in specs["default"]["template"]["spec"]
    assert specs["default"]["limits"] == {"cpu": "6000", "memory": "24000Gi"}
    for spec in specs.values():
        budgets = spec["disruption"]["budgets"]
        assert budgets[0] == {"nodes": "10%"}
        assert requirement(spec, "karpenter.k8s.aws/instance-cpu") == ["7"]
    assert specs["default"]["disruption"]["budgets"][1] == {
        "nodes": "0",
        "schedule": "0 7 * * mon-fri",
        "duration": "11h",
    }


def test_nodepools_go_after_the_controller_and_before_it_on_destroy(plan: PlanResult) -> None:
    controller = release(plan, "karpenter")
    for record in plan.of_type(NODEPOOL) + plan.of_type(NODECLASS):
        assert controller.urn in record.dependencies


# -- pod autoscaling ------------------------------------------------------------------------------


def test_metrics_server_and_vpa_are_ha_in_prod_only(plans: dict[str, PlanResult]) -> None:
    for stack, replicas in (("dev", 1), ("prod", 2)):
        metrics = release(plans[stack], "metrics-server").get("values")
        vpa = release(plans[stack], "vertical-pod-autoscaler").get("values")
        assert metrics["replicas"] == replicas
        assert metrics["podDisruptionBudget"]["enabled"] is is_production(stack)
        for part in ("recommender", "updater", "admissionController"):
            assert vpa[part]["replicas"] == replicas
            assert vpa[part]["podDisruptionBudget"]["enabled"] is is_production(stack)
            assert vpa[part]["nodeSelector"] == {"eks-platform.io/node-pool": "system"}
        assert vpa["admissionController"]["mutatingWebhookConfiguration"]["failurePolicy"] == "Ignore"
    assert "topologySpreadConstraints" in release(plans["prod"], "metrics-server").get("values")


def test_platform_controllers_get_recommendation_only_vpas(plan: PlanResult) -> None:
    vpas = {r.get("spec")["targetRef"]["name"]: r for r in plan.of_type(VPA)}
    assert set(vpas) == {"karpenter", "coredns", "ebs-csi-controller", "metrics-server"}
    vpa_release = release(plan, "vertical-pod-autoscaler")
    for record in vpas.values():
        assert record.get("spec")["updatePolicy"] == {"updateMode": "Off"}
        assert vpa_release.urn in record.dependencies


# -- IP capacity ----------------------------------------------------------------------------------


def test_plan_reports_capacity_and_prod_is_sized_for_1000_nodes(plan_documents) -> None:
    capacity = plan_documents["prod"]["capacity"]
    assert capacity["maxNodes"] >= 1000 and capacity["plannedPods"] >= 10_000
    assert capacity["maxPods"] >= capacity["plannedPods"]
    assert capacity["requiredIps"] <= capacity["usableIps"]
    assert list(capacity["freeIpsPerAz"]) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert all(v == 2**14 - 5 for v in capacity["freeIpsPerAz"].values())
    per_node = 1 + WARM_IP_TARGET + PREFIX_SIZE - 1
    assert capacity["requiredIps"] == capacity["maxNodes"] * per_node + capacity["plannedPods"]


# -- bad config -----------------------------------------------------------------------------------


def _pool(**changes):
    base = {"name": "default", "cpuLimit": 64, "memoryLimitGiB": 256}
    return {**base, **changes}


BAD_KARPENTER = [
    (
        "capacity-type",
        {"nodePools": [_pool(capacityTypes=["preemptible"])]},
        "nodePools.0.capacityTypes.0",
        "'spot' or 'on-demand'",
    ),
    ("negative-cpu", {"nodePools": [_pool(cpuLimit=-4)]}, "nodePools.0.cpuLimit", "positive"),
    ("negative-memory", {"nodePools": [_pool(memoryLimitGiB=-1)]}, "nodePools.0.memoryLimitGiB", "positive"),
    (
        "budget-150",
        {"nodePools": [_pool(disruptionBudgetPercent=150)]},
        "nodePools.0.disruptionBudgetPercent",
        "0 to 100",
    ),
    (
        "arm-without-graviton",
        {"nodePools": [_pool(architectures=["arm64"], instanceCategories=["p", "z"])]},
        "nodePools.0.architectures",
        "no instance family",
    ),
    (
        "category",
        {"nodePools": [_pool(instanceCategories=["q"])]},
        "nodePools.0.instanceCategories",
        "use categories",
    ),
    ("pool-name", {"nodePools": [_pool(name="Spot_Pool")]}, "nodePools.0.name", "DNS label"),
    ("same-names", {"nodePools": [_pool(), _pool()]}, "karpenter.nodePools", "share a name"),
    ("expire", {"nodePools": [_pool(expireAfter="30 days")]}, "nodePools.0.expireAfter", "duration"),
    (
        "grace",
        {"nodePools": [_pool(terminationGracePeriod="2 days")]},
        "nodePools.0.terminationGracePeriod",
        "duration",
    ),
    (
        "cron",
        {"nodePools": [_pool(businessHours={"schedule": "weekdays", "duration": "8h"})]},
        "nodePools.0.businessHours.schedule",
        "cron",
    ),
    ("ami-unpinned-typo", {"amiAlias": "al2023"}, "karpenter.amiAlias", "pin an alias"),
    ("pool-typo", {"nodePools": [_pool(cpuLimt=8)]}, "nodePools.0.cpuLimt", "unknown key"),
    (
        "exhausts-subnets",
        {"nodePools": [_pool(cpuLimit=40000, memoryLimitGiB=160000)]},
        "karpenter.nodePools",
        r"could exhaust the private subnets: up to \d+ nodes",
    ),
]


@pytest.mark.parametrize(
    ("karpenter", "key", "message"), [c[1:] for c in BAD_KARPENTER], ids=[c[0] for c in BAD_KARPENTER]
)
def test_bad_karpenter_config_is_rejected(karpenter, key, message) -> None:
    assert_section_rejected("dev", "karpenter", karpenter, key, message)


def test_capacity_error_shows_the_numbers() -> None:
    raw, _ = stack_config("prod")
    raw[f"{PROJECT}:capacity"] = json.dumps({"plannedPods": 40_000})
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, "prod", "Pulumi.prod.yaml")
    (issue,) = info.value.issues
    # 1,050 Karpenter nodes (the pools' cpuLimit / minCpu) + 4 system nodes (maxSize).
    assert re.search(r"1054 nodes and 40000 planned pods need 62134 pod IPs", issue.message)
    assert "offer 44223 after 10% headroom" in issue.message


def test_every_nodepool_bounds_how_long_a_node_may_drain(plan: PlanResult, configs) -> None:
    pools = {p.name: p for p in configs[plan.stack].karpenter.node_pools}
    for nodepool in plan.of_type("kubernetes:karpenter.sh/v1:NodePool"):
        name = nodepool.get("metadata.name")
        grace = nodepool.get("spec.template.spec.terminationGracePeriod")
        assert grace == pools[name].termination_grace_period == "48h", name
