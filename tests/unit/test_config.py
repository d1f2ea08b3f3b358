"""Stack config: the committed stack files validate, and every kind of mistake is reported clearly."""

import ipaddress
import json
import re
from collections.abc import Callable
from itertools import combinations
from typing import Any

import pulumi_aws
import pytest

import stacks.delivery
import tools.mocks
from stacks import placeholders
from stacks.config import OFFLINE_KEY, PROJECT, ConfigError, PlatformConfig, validate
from stacks.errors import translate
from stacks.fields import INSTANCE_TYPES, KUBERNETES_VERSIONS, REGIONS, did_you_mean, instance_architecture
from stacks.sections import subnet_layout
from tools.mocks import ROOT, StackFileError, stack_config

Raw = dict[str, str]
Mutation = Callable[[Raw], None]


def _raw(stack: str) -> Raw:
    raw, _ = stack_config(stack)
    return raw


def _validate(stack: str, raw: Raw) -> PlatformConfig:
    return validate(raw, PROJECT, stack, f"Pulumi.{stack}.yaml")


def test_dev_stack_file_validates():
    raw, secret_keys = stack_config("dev")
    cfg = _validate("dev", raw)
    assert secret_keys == []
    assert (cfg.project, cfg.stack, cfg.region) == (PROJECT, "dev", "eu-west-1")
    assert cfg.cluster_name == "eks-platform-dev"
    assert cfg.production is False
    assert cfg.protect is False
    assert cfg.network.cidr == ipaddress.IPv4Network("10.10.0.0/16")
    assert cfg.network.nat_strategy == "single"
    assert cfg.network.az_count == 3
    assert cfg.network.flow_log_retention_days == 14
    assert cfg.cluster.endpoint_public_access is True
    # The team's range only: Pulumi publishes no egress addresses for its hosted runners, so dev's
    # push-to-deploy runs on agents in the VPC (platform/rehearsal.yaml hostedRunnerEgress).
    assert cfg.cluster.public_access_cidrs == (ipaddress.IPv4Network("203.0.113.0/24"),)
    assert cfg.deployments.agent.enabled is True
    assert cfg.cluster.log_retention_days == 30
    assert cfg.system_node_group.instance_types == ("t4g.large",)
    assert cfg.system_node_group.architecture == "arm64"
    ng_ = cfg.system_node_group
    assert (ng_.min_size, ng_.desired_size, ng_.max_size) == (2, 2, 3)
    assert cfg.all_tags["platform:stack"] == "dev"
    assert cfg.all_tags["environment"] == "dev"


def test_prod_stack_file_validates_with_production_invariants():
    raw, secret_keys = stack_config("prod")
    cfg = _validate("prod", raw)
    assert secret_keys == []
    assert (cfg.stack, cfg.region, cfg.cluster_name) == ("prod", "eu-west-1", "eks-platform-prod")
    assert cfg.production is True
    assert cfg.protect is True
    assert cfg.network.nat_strategy == "onePerAz"
    assert cfg.network.az_count == 3
    assert len(cfg.network.subnets()) == 3
    assert cfg.network.flow_log_retention_days == 365
    assert set(cfg.network.interface_endpoints) == {"ecr.api", "ecr.dkr", "sts", "ec2", "sqs", "logs"}
    assert cfg.cluster.endpoint_public_access is False
    assert cfg.cluster.public_access_cidrs == ()
    assert KUBERNETES_VERSIONS[cfg.cluster.kubernetes_version] == "standard"
    assert cfg.cluster.upgrade_support_type == "STANDARD"
    assert len(cfg.cluster.admin_role_arns) == 2
    assert cfg.cluster.log_retention_days == 365
    ng_ = cfg.system_node_group
    assert ng_.min_size >= cfg.network.az_count  # at least one system node per AZ
    assert ng_.min_size <= ng_.desired_size <= ng_.max_size
    assert {instance_architecture(t) for t in ng_.instance_types} == {ng_.architecture}
    assert ng_.disk_size_gib == 100
    assert cfg.all_tags["environment"] == "prod"


# -- one realistic mistake per case ------------------------------------------------------------


def nested(section: str, **changes: Any) -> Mutation:
    """Change fields inside one JSON object key (network, cluster, systemNodeGroup, tags)."""

    def mutate(raw: Raw) -> None:
        key = f"{PROJECT}:{section}"
        raw[key] = json.dumps({**json.loads(raw[key]), **changes})

    return mutate


def net(**changes: Any) -> Mutation:
    return nested("network", **changes)


def clu(**changes: Any) -> Mutation:
    return nested("cluster", **changes)


def ng(**changes: Any) -> Mutation:
    return nested("systemNodeGroup", **changes)


def top(key: str, value: str | None) -> Mutation:
    """Set a top-level engine key to a raw string; None removes it."""

    def mutate(raw: Raw) -> None:
        if value is None:
            del raw[key]
        else:
            raw[key] = value

    return mutate


def rename(section: str | None, old: str, new: str) -> Mutation:
    """A typo in a key: top-level when `section` is None, else inside that JSON object."""

    def mutate(raw: Raw) -> None:
        if section is None:
            raw[f"{PROJECT}:{new}"] = raw.pop(f"{PROJECT}:{old}")
        else:
            obj = json.loads(raw[f"{PROJECT}:{section}"])
            obj[new] = obj.pop(old)
            raw[f"{PROJECT}:{section}"] = json.dumps(obj)

    return mutate


ROLE = "arn:aws:iam::123456789012:role/platform-admins"
USER_ARN = "arn:aws:iam::123456789012:user/alice"
SHORT_ID = "arn:aws:iam::12345678901:role/platform-admins"  # an 11-digit account
OFFICE, HALF = "203.0.113.0/24", "203.0.113.0/25"
PREFIX_SWAP = net(privateSubnetPrefix=21, publicSubnetPrefix=20)
OPEN_WORLD = clu(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/0"])


def move(old: str, new: str) -> Mutation:
    """Move an engine key to another full name (a typo in its namespace)."""

    def mutate(raw: Raw) -> None:
        raw[new] = raw.pop(old)

    return mutate


def pool(**changes: Any) -> Mutation:
    """Change fields of the first Karpenter NodePool."""

    def mutate(raw: Raw) -> None:
        karpenter = json.loads(raw[f"{PROJECT}:karpenter"])
        karpenter["nodePools"][0] = {**karpenter["nodePools"][0], **changes}
        raw[f"{PROJECT}:karpenter"] = json.dumps(karpenter)

    return mutate


NAT_HINT = r"unknown key \(did you mean 'natStrategy'\?\)"
TOP_HINT = r"unknown key \(did you mean 'network'\?\)"
T4G_SIZES = r"'t4g.huge' is not an EC2 instance type \(t4g comes in nano, micro, .*, xlarge, 2xlarge\)"
M7G_SIZES = r"not an EC2 instance type \(m7g comes in medium, large, .*, metal\)"
NAMESPACE_HINT = r"unknown namespace 'eks_platform' \(did you mean 'eks-platform:network'\?\)"

# (id, stack, mutation of the committed file, key path, message regex)
BAD = [
    ("type-size", "dev", ng(instanceTypes=["t4g.huge"]), "systemNodeGroup.instanceTypes.0", T4G_SIZES),
    (
        "type-family",
        "prod",
        ng(instanceTypes=["z9g.large"]),
        "systemNodeGroup.instanceTypes.0",
        "mean 'm9g.large'",
    ),
    (
        "type-gigantic",
        "prod",
        ng(instanceTypes=["m7g.gigantic"]),
        "systemNodeGroup.instanceTypes.0",
        M7G_SIZES,
    ),
    (
        "type-case",
        "dev",
        ng(instanceTypes=["T4G.large"]),
        "systemNodeGroup.instanceTypes.0",
        "mean 't4g.large'",
    ),
    (
        "type-mac",
        "dev",
        ng(instanceTypes=["mac2.metal"]),
        "systemNodeGroup.instanceTypes.0",
        "EKS cannot use",
    ),
    (
        "types-as-string",
        "dev",
        ng(instanceTypes="t4g.large"),
        "systemNodeGroup.instanceTypes",
        "must be a list",
    ),
    ("region-near-miss", "dev", top("aws:region", "eu-wst-1"), "aws:region", "did you mean 'eu-west-1'"),
    (
        "namespace-typo",
        "dev",
        move("eks-platform:network", "eks_platform:network"),
        "eks_platform:network",
        NAMESPACE_HINT,
    ),
    ("namespace-other", "dev", top("kubernetes:context", "dev"), "kubernetes:context", "unknown namespace"),
    ("pool-key-typo", "prod", pool(cpuLimits=10), "karpenter.nodePools.0.cpuLimits", "mean 'cpuLimit'"),
    ("k8s-float", "dev", clu(kubernetesVersion=1.3), "cluster.kubernetesVersion", r'read 1.3 as .*"1.30"\)'),
    (
        "k8s-float-35",
        "dev",
        clu(kubernetesVersion=1.35),
        "cluster.kubernetesVersion",
        r'read 1.35 as .*"1.35"\)$',
    ),
    ("k8s-no-hint", "dev", nested("cluster", zzzz=1), "cluster.zzzz", "known keys: adminRoleArns, "),
    ("cidr-malformed", "dev", net(cidr="10.0.0.300/16"), "network.cidr", "not an IPv4 CIDR"),
    (
        "cidr-host-bits",
        "dev",
        net(cidr="10.0.0.1/16"),
        "network.cidr",
        "host bits set; the network is 10.0.0.0/16",
    ),
    ("cidr-public", "prod", net(cidr="11.0.0.0/16"), "network.cidr", r"private \(RFC 1918\)"),
    ("cidr-too-wide", "dev", net(cidr="10.0.0.0/8"), "network.cidr", "between /16 and /24"),
    ("cidr-too-small", "prod", net(cidr="10.20.0.0/22"), "network.cidr", "too small for 3 AZs of a /18"),
    ("az-count-1", "dev", net(azCount=1), "network.azCount", "must be at least 2, got 1$"),
    ("az-count-7", "dev", net(azCount=7), "network.azCount", "must be at most 6, got 7$"),
    (
        "nat-value",
        "dev",
        net(natStrategy="perAz"),
        "network.natStrategy",
        "^must be 'single' or 'onePerAz', got 'perAz'$",
    ),
    ("nat-typo", "dev", rename("network", "natStrategy", "natStrategi"), "network.natStrategi", NAT_HINT),
    ("retention-31", "dev", net(flowLogRetentionDays=31), "network.flowLogRetentionDays", "31 days is not"),
    ("prefix-swap", "dev", PREFIX_SWAP, "network.publicSubnetPrefix", "smaller than the /21 private"),
    ("endpoint-twice", "prod", net(interfaceEndpoints=["sts", "sts"]), "network.interfaceEndpoints", "twice"),
    ("network-str", "dev", top("eks-platform:network", "10.10.0.0/16"), "network", "must be a YAML object"),
    (
        "network-list",
        "dev",
        top("eks-platform:network", '["10.10.0.0/16"]'),
        "network",
        "must be a YAML object",
    ),
    ("cidrs-overlap", "dev", clu(publicAccessCidrs=[OFFICE, HALF]), "cluster.publicAccessCidrs", "overlap"),
    ("no-cidrs", "dev", clu(publicAccessCidrs=[]), "cluster.publicAccessCidrs", "Access is true, so list"),
    ("cidrs-no-effect", "dev", clu(endpointPublicAccess=False), "cluster.publicAccessCidrs", "no effect"),
    ("k8s-1.29", "dev", clu(kubernetesVersion="1.29"), "cluster.kubernetesVersion", "not an EKS version"),
    ("k8s-extended", "prod", clu(kubernetesVersion="1.33"), "cluster.kubernetesVersion", "only in EKS ext"),
    ("support", "dev", clu(upgradeSupportType="extended"), "cluster.upgradeSupportType", "got 'extended'$"),
    ("service-in-vpc", "dev", clu(serviceCidr="10.10.128.0/17"), "cluster.serviceCidr", "overlaps the VPC"),
    ("arn-user", "dev", clu(adminRoleArns=[USER_ARN]), "cluster.adminRoleArns.0", "not an IAM role ARN"),
    ("arn-account", "prod", clu(adminRoleArns=[SHORT_ID]), "cluster.adminRoleArns.0", "not an IAM role"),
    ("arn-twice", "prod", clu(adminRoleArns=[ROLE, ROLE]), "cluster.adminRoleArns", "lists a role twice"),
    ("min>desired", "dev", ng(minSize=3), "systemNodeGroup.desiredSize", r"minSize \(3\) <= desired"),
    ("desired>max", "dev", ng(desiredSize=4), "systemNodeGroup.desiredSize", r"\(4\) <= maxSize \(3\)"),
    ("type-no-dot", "dev", ng(instanceTypes=["m7glarge"]), "systemNodeGroup.instanceTypes.0", "not an EC2"),
    ("arm-on-x86", "prod", ng(architecture="x86_64"), "systemNodeGroup.instanceTypes", "arm64, but architec"),
    ("x86-on-arm", "prod", ng(instanceTypes=["c7i.large"]), "systemNodeGroup.instanceTypes", "x86_64, but"),
    ("no-types", "dev", ng(instanceTypes=[]), "systemNodeGroup.instanceTypes", "at least one instance type"),
    ("disk-10", "dev", ng(diskSizeGiB=10), "systemNodeGroup.diskSizeGiB", "at least 20, got 10$"),
    ("tag-aws-prefix", "dev", nested("tags", **{"aws:owner": "me"}), "tags", "'aws:' prefix is reserved"),
    ("tag-bad-char", "dev", nested("tags", **{"team#1": "me"}), "tags", "1-128 characters"),
    ("production-yes", "dev", top("eks-platform:production", "yes"), "production", "must be true or false"),
    ("top-key-typo", "dev", rename(None, "network", "netwrok"), "eks-platform:netwrok", TOP_HINT),
    ("no-region", "dev", top("aws:region", None), "aws:region", "sets no `aws:region` under `config:`"),
    ("region-typo", "prod", top("aws:region", "eu-west"), "aws:region", "not an AWS region"),
    # Production-only rules, each broken alone in the prod file.
    ("prod-open-world", "prod", OPEN_WORLD, "cluster.publicAccessCidrs", "to 4,294,967,296 addresses"),
    ("prod-unprotected", "prod", top("eks-platform:protect", "false"), "protect", "must protect its state"),
    ("prod-single-nat", "prod", net(natStrategy="single"), "network.natStrategy", "one NAT gateway per AZ"),
    ("prod-min-per-az", "prod", ng(minSize=2), "systemNodeGroup.minSize", "each of its 3 AZs"),
    (
        "prod-half-world",
        "prod",
        clu(endpointPublicAccess=True, publicAccessCidrs=["0.0.0.0/1"]),
        "cluster.publicAccessCidrs",
        "/16 or narrower",
    ),
    ("cidr-loopback", "dev", net(cidr="127.0.0.0/16"), "network.cidr", r"RFC 1918"),
    ("service-public", "dev", clu(serviceCidr="8.8.0.0/16"), "cluster.serviceCidr", "private .* /12 and /24"),
    (
        "region-in-project",
        "dev",
        top("eks-platform:region", "us-east-1"),
        "eks-platform:region",
        "aws:region",
    ),
    ("tag-reserved", "dev", nested("tags", **{"managed-by": "terraform"}), "tags", "set by the platform"),
    (
        "min-as-string",
        "dev",
        ng(minSize="2"),
        "systemNodeGroup.minSize",
        "whole number, got '2': remove the quotes",
    ),
    ("max-abc", "dev", ng(maxSize="abc"), "systemNodeGroup.maxSize", "^must be a whole number, got 'abc'$"),
    (
        "public-as-string",
        "dev",
        clu(endpointPublicAccess="on"),
        "cluster.endpointPublicAccess",
        "^must be true or false, got 'on'$",
    ),
    (
        "type-newline",
        "dev",
        ng(instanceTypes=["t4g.large\n"]),
        "systemNodeGroup.instanceTypes.0",
        "not an EC2",
    ),
    (
        "arn-unicode-digits",
        "dev",
        clu(adminRoleArns=["arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/x"]),
        "cluster.adminRoleArns.0",
        "not an IAM role ARN",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "key", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_is_rejected(stack, mutate, key, message):
    raw = _raw(stack)
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        _validate(stack, raw)
    err = info.value
    key = key if ":" in key else f"{PROJECT}:{key}"
    assert any(key in i.key and re.search(message, i.message) for i in err.issues), str(err)
    assert f"Pulumi.{stack}.yaml" in str(err)
    # One mistake is reported against the key that holds it, not as noise elsewhere.
    assert all(i.key.startswith(key.split(".")[0]) for i in err.issues), str(err)


def test_independent_errors_are_all_reported_at_once():
    raw = _raw("dev")
    for mutate in (
        net(cidr="10.0.0.300/16"),
        ng(instanceTypes=["m7glarge"]),
        clu(kubernetesVersion="1.29"),
        rename(None, "tags", "tag"),
        top("eks-platform:production", "yes"),
        top("aws:region", None),
    ):
        mutate(raw)
    with pytest.raises(ConfigError) as info:
        _validate("dev", raw)
    issues = info.value.issues
    assert {
        "eks-platform:network.cidr",
        "eks-platform:systemNodeGroup.instanceTypes.0",
        "eks-platform:cluster.kubernetesVersion",
        "eks-platform:tag",
        "eks-platform:production",
        "aws:region",
    } <= {i.key for i in issues}
    text = str(info.value)
    assert text.startswith(f"Pulumi.dev.yaml: {len(issues)} invalid configuration value(s):")
    assert all(str(i) in text for i in issues)


# (id, stack, mutations, the keys every one of which is reported)
INDEPENDENT = [
    (
        "type-and-max",
        "dev",
        [ng(maxSize=1, instanceTypes=["t4g.larg"])],
        {"systemNodeGroup.instanceTypes.0", "systemNodeGroup.desiredSize"},
    ),
    (
        "version-and-service-cidr",
        "dev",
        [clu(kubernetesVersion=1.3, serviceCidr="8.8.0.0/16")],
        {"cluster.kubernetesVersion", "cluster.serviceCidr"},
    ),
    (
        "az-count-and-endpoints",
        "prod",
        [net(azCount=1, interfaceEndpoints=["sts", "sts"])],
        {"network.azCount", "network.interfaceEndpoints"},
    ),
    (
        "section-and-across-sections",
        "dev",
        [ng(instanceTypes=["t4g.larg"]), clu(serviceCidr="10.10.128.0/17")],
        {"systemNodeGroup.instanceTypes.0", "cluster.serviceCidr"},
    ),
    (
        "region-and-protect",
        "prod",
        [top("aws:region", "eu-wst-1"), top("eks-platform:protect", "false")],
        {"aws:region", "protect"},
    ),
    (
        "pool-name-and-limit",
        "prod",
        [pool(name="Spot_Pool", cpuLimit="lots")],
        {"karpenter.nodePools.0.name", "karpenter.nodePools.0.cpuLimit"},
    ),
    (
        "retention-and-storage",
        "prod",
        [top("eks-platform:monitoring", json.dumps({"retention": "15 days", "storageGiB": "50"}))],
        {"monitoring.retention", "monitoring.storageGiB"},
    ),
]


@pytest.mark.parametrize(
    ("stack", "mutations", "keys"), [c[1:] for c in INDEPENDENT], ids=[c[0] for c in INDEPENDENT]
)
def test_every_independent_problem_is_reported(stack, mutations, keys):
    """A field that fails its own check does not hide the rules that do not read it."""
    raw = _raw(stack)
    for mutate in mutations:
        mutate(raw)
    with pytest.raises(ConfigError) as info:
        _validate(stack, raw)
    reported = {i.key for i in info.value.issues}
    assert {k if ":" in k else f"{PROJECT}:{k}" for k in keys} <= reported, str(info.value)


def test_a_rule_reading_a_failed_field_says_nothing():
    raw = _raw("dev")
    ng(maxSize="abc")(raw)  # desiredSize <= maxSize cannot be judged, and is not
    with pytest.raises(ConfigError) as info:
        _validate("dev", raw)
    assert [str(i) for i in info.value.issues] == [
        "eks-platform:systemNodeGroup.maxSize = \"abc\": must be a whole number, got 'abc'"
    ]


def without(section: str, *path: str | int) -> Mutation:
    """Delete one key inside a JSON object key (`path` leads to it through lists and objects)."""

    def mutate(raw: Raw) -> None:
        obj = json.loads(raw[f"{PROJECT}:{section}"])
        inner = obj
        for part in path[:-1]:
            inner = inner[part]
        del inner[path[-1]]
        raw[f"{PROJECT}:{section}"] = json.dumps(obj)

    return mutate


@pytest.mark.parametrize(
    ("stack", "mutate", "key", "message"),
    [
        (
            "dev",
            without("karpenter", "nodePools", 0, "cpuLimit"),
            "karpenter.nodePools.0.cpuLimit",
            "required: Total vCPUs the pool may run (its `limits.cpu`)",
        ),
        (
            "dev",
            without("delivery", "services", 0, "githubRepository"),
            "delivery.services.0.githubRepository",
            "required: GitHub `owner/repo` whose CI builds the image",
        ),
    ],
)
def test_a_missing_key_says_what_is_required(stack, mutate, key, message):
    raw = _raw(stack)
    mutate(raw)
    with pytest.raises(ConfigError) as info:
        _validate(stack, raw)
    assert [str(i) for i in info.value.issues] == [f"{PROJECT}:{key} = (not set): {message}"]


def test_a_deleted_first_name_line_names_the_entry():
    """`- name: catalog` deleted: YAML reads the entry's other keys as `services` itself."""
    raw = _raw("dev")
    delivery = json.loads(raw[f"{PROJECT}:delivery"])
    entry = delivery["services"][0]
    del entry["name"]
    delivery["services"] = entry
    raw[f"{PROJECT}:delivery"] = json.dumps(delivery)
    with pytest.raises(ConfigError) as info:
        _validate("dev", raw)
    (issue,) = info.value.issues
    assert issue.key == f"{PROJECT}:delivery.services.0"
    assert issue.message.startswith("missing `name`: each entry starts with `- name: <name>`")
    assert "must be a list" not in str(info.value)


def test_a_deleted_later_name_line_names_the_entry(tmp_path):
    """The next entry's keys continue the one before: PyYAML would keep the last silently."""
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    assert "      - name: spot\n" in text
    broken = tmp_path / "Pulumi.prod.yaml"
    broken.write_text(text.replace("      - name: spot\n", ""))
    with pytest.raises(StackFileError) as info:
        tools.mocks.read_stack_file(broken)
    assert str(info.value).startswith("Pulumi.prod.yaml:")
    assert "eks-platform:karpenter.nodePools.1 is missing `name`" in str(info.value)


@pytest.mark.parametrize(
    ("kind", "ctx", "value", "message"),
    [
        ("int_parsing", {}, "abc", "must be a whole number, got 'abc'"),
        (
            "int_type",
            {},
            "3",
            "must be a whole number, got '3': remove the quotes, YAML reads a quoted number as text",
        ),
        ("int_from_float", {}, 2.5, "must be a whole number, got 2.5"),
        ("bool_type", {}, "yes", "must be true or false, got 'yes'"),
        ("string_type", {}, 1.3, "must be text (quote it), got 1.3"),
        ("greater_than_equal", {"ge": 2}, 1, "must be at least 2, got 1"),
        ("less_than_equal", {"le": 6}, 7, "must be at most 6, got 7"),
        ("literal_error", {"expected": "'a' or 'b'"}, "c", "must be 'a' or 'b', got 'c'"),
        ("string_too_short", {"min_length": 1}, "", "must have at least 1 character"),
        ("missing", {}, None, "required: The node group's instance types"),
        ("value_error", {}, "x", "Value error, plain words"),
    ],
)
def test_pydantic_errors_in_the_platforms_words(kind, ctx, value, message):
    description = "The node group's instance types." if kind == "missing" else None
    raw_message = "Value error, plain words" if kind == "value_error" else "pydantic's words"
    expected = "plain words" if kind == "value_error" else message
    assert translate(kind, ctx, value, raw_message, description) == expected


def test_bad_config_registers_no_resource(monkeypatch):
    monitors = []

    class Recording(tools.mocks.RecordingMonitor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            monitors.append(self)

    monkeypatch.setattr(tools.mocks, "RecordingMonitor", Recording)
    raw, secret_keys = stack_config("prod")
    top("eks-platform:protect", "false")(raw)
    with pytest.raises(ConfigError, match="must protect its state"):
        tools.mocks.run_program("prod", raw, secret_keys=secret_keys)
    assert len(monitors) == 1
    assert monitors[0].records == []


# -- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "az_count", "private_prefix", "public_prefix"),
    [
        ("10.0.0.0/16", 3, 19, 24),
        ("10.0.0.0/16", 2, 18, 24),
        ("10.0.0.0/16", 6, 20, 24),
        ("10.0.0.0/16", 4, 19, 20),
        ("172.16.0.0/20", 2, 22, 26),
        ("192.168.4.0/22", 3, 25, 28),
        ("10.20.0.0/17", 5, 21, 28),
    ],
)
def test_subnet_layout_fits_without_overlap(cidr, az_count, private_prefix, public_prefix):
    vpc = ipaddress.IPv4Network(cidr)
    layout = subnet_layout(vpc, az_count, private_prefix, public_prefix)
    assert len(layout) == az_count
    assert [p.prefixlen for p, _ in layout] == [private_prefix] * az_count
    assert [p.prefixlen for _, p in layout] == [public_prefix] * az_count
    subnets = [s for pair in layout for s in pair]
    assert all(s.subnet_of(vpc) for s in subnets)
    for a, b in combinations(subnets, 2):
        assert not a.overlaps(b), (a, b)
    assert subnet_layout(vpc, az_count, private_prefix, public_prefix) == layout


@pytest.mark.parametrize(
    ("cidr", "az_count", "private_prefix", "public_prefix"),
    [
        ("10.0.0.0/22", 3, 19, 24),
        ("10.0.0.0/16", 4, 18, 20),
        ("10.0.0.0/16", 6, 18, 24),
        ("10.0.0.0/24", 2, 24, 28),
    ],
)
def test_subnet_layout_rejects_what_does_not_fit(cidr, az_count, private_prefix, public_prefix):
    with pytest.raises(ValueError, match=rf"too small for {az_count} AZs"):
        subnet_layout(ipaddress.IPv4Network(cidr), az_count, private_prefix, public_prefix)


@pytest.mark.parametrize(
    ("instance_type", "arch"),
    [
        ("m7g.large", "arm64"),
        ("c7gn.xlarge", "arm64"),
        ("t4g.micro", "arm64"),
        ("a1.large", "arm64"),
        ("r8gd.2xlarge", "arm64"),
        ("m7i.large", "x86_64"),
        ("c6a.xlarge", "x86_64"),
        ("t3.medium", "x86_64"),
        ("m7i-flex.large", "x86_64"),
        ("g5g.xlarge", "arm64"),
        ("im4gn.large", "arm64"),
        ("is4gen.large", "arm64"),
        ("x2gd.large", "arm64"),
        ("p6e-gb200.36xlarge", "arm64"),  # NVIDIA Grace CPUs
        ("g4ad.xlarge", "x86_64"),  # AMD
        ("gr6.4xlarge", "x86_64"),
        ("u7i-12tb.224xlarge", "x86_64"),
    ],
)
def test_instance_architecture(instance_type, arch):
    assert instance_architecture(instance_type) == arch


@pytest.mark.parametrize("instance_type", ["m7g", "large", "M7G.large", "t4g.huge", "m7g.gigantic", ""])
def test_instance_architecture_rejects_non_instance_types(instance_type):
    with pytest.raises(ValueError, match="not an EC2 instance type"):
        instance_architecture(instance_type)


def test_instance_types_and_regions_come_from_the_aws_provider():
    """pulumi_aws's InstanceType and Region enums are the source; the rule classifies every type."""
    assert {t.value for t in pulumi_aws.ec2.InstanceType} == INSTANCE_TYPES and len(INSTANCE_TYPES) > 1000
    assert {r.value for r in pulumi_aws.Region} == REGIONS and {"eu-west-1", "us-east-1"} <= REGIONS
    for instance_type in INSTANCE_TYPES:
        if instance_type.startswith("mac"):
            with pytest.raises(ValueError, match="EC2 Mac instance"):
                instance_architecture(instance_type)
        else:
            assert instance_architecture(instance_type) in ("arm64", "x86_64")


@pytest.mark.parametrize(
    ("value", "known", "hint"),
    [
        ("eu-wst-1", REGIONS, " (did you mean 'eu-west-1'?)"),
        ("natStrategi", ("natStrategy", "cidr"), " (did you mean 'natStrategy'?)"),
        ("zzzz", ("natStrategy", "cidr"), ""),
    ],
)
def test_did_you_mean(value, known, hint):
    assert did_you_mean(value, known) == hint


# -- documentation placeholders ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "placeholder"),
    [
        ("arn:aws:iam::123456789012:role/platform-admins", True),
        ("111122223333", True),
        ("arn:aws:iam::1234567890123:role/x", False),  # 13 digits: not the documentation account
        ("arn:aws:iam::210987654321:role/platform-admins", False),
        ("example-org/eks-platform", True),
        ("https://github.com/example-org/eks-platform.git", True),
        ("my-example-org/eks-platform", False),
        ("grafana.example.com", True),
        ("ops@example.org", True),
        ("example.community", False),
        ("203.0.113.0/24", True),
        ("198.51.100.7", True),
        ("192.0.2.0/28", True),
        ("203.0.114.0/24", False),
        ("10.10.0.0/16", False),
        ("999.1.1.1", False),
        # The tag a values file holds until an image is built or promoted (tools/new_service.py).
        ("0" * 40, True),
        ("0" * 39 + "1", False),
        ("3f2a" + "0" * 36, False),
    ],
)
def test_placeholder_detection(value, placeholder):
    assert (placeholders.why(value) is not None) is placeholder


def real_engine(raw: Raw) -> Raw:
    """The config as a real `pulumi preview`/`up` hands it over: without the offline engine's flag."""
    raw = dict(raw)
    del raw[f"{PROJECT}:{OFFLINE_KEY}"]
    return raw


def test_real_engine_refuses_placeholders_in_a_production_stack():
    with pytest.raises(ConfigError) as info:
        _validate("prod", real_engine(_raw("prod")))
    keys = {i.key for i in info.value.issues}
    assert {
        "eks-platform:cluster.adminRoleArns.0",
        "eks-platform:cluster.adminRoleArns.1",
        "eks-platform:delivery.gitops.repoUrl",
        "eks-platform:delivery.services.0.githubRepository",
        "eks-platform:deployments.organization",
    } <= keys
    assert all("documentation placeholder; replace it" in i.message for i in info.value.issues)


def test_the_program_on_a_real_engine_stops_before_registering_anything():
    raw, secret_keys = stack_config("prod")
    with pytest.raises(ConfigError, match="documentation placeholder"):
        tools.mocks.run_program("prod", real_engine(raw), secret_keys=secret_keys)


def test_placeholders_plan_offline_and_pass_in_non_production_stacks():
    assert placeholders.find(_raw("prod"))  # the example files do hold placeholders...
    assert _validate("prod", _raw("prod")).production  # ...and plan offline,
    assert not _validate("dev", real_engine(_raw("dev"))).production  # and a real dev deploy may keep them


REAL_VALUES = {
    "123456789012": "210987654321",
    "example-org": "acme",
    "idp.example.com": "login.acme.io",
    "EXAMPLE": "PROD7",
}


def _replace_placeholders(text: str) -> str:
    for placeholder, real in REAL_VALUES.items():
        text = text.replace(placeholder, real)
    return text


def test_a_production_stack_without_placeholders_passes_on_a_real_engine(tmp_path, monkeypatch):
    raw = {key: _replace_placeholders(value) for key, value in real_engine(_raw("prod")).items()}
    assert placeholders.find(raw) == []
    # The GitOps folder still names the example repository: the stack says which files to fix...
    with pytest.raises(ConfigError) as info:
        _validate("prod", raw)
    assert {(i.key, i.value) for i in info.value.issues} == {
        ("eks-platform:delivery.gitops.repoUrl", "https://github.com/acme/eks-platform.git")
    }
    apps = sorted((stacks.delivery.REPO_ROOT / "platform" / "gitops" / "prod").iterdir())
    assert apps and all(f"platform/gitops/prod/{path.name}" in str(info.value) for path in apps)
    # ...and passes once they name the configured repository too.
    tree = tmp_path / "platform" / "gitops" / "prod"
    tree.mkdir(parents=True)
    for path in apps:
        (tree / path.name).write_text(_replace_placeholders(path.read_text()))
    for values in stacks.delivery.REPO_ROOT.glob("services/*/deploy/prod.yaml"):
        copy = tmp_path / values.relative_to(stacks.delivery.REPO_ROOT)
        copy.parent.mkdir(parents=True)
        copy.write_text(values.read_text())
    monkeypatch.setattr(stacks.delivery, "REPO_ROOT", tmp_path)
    assert _validate("prod", raw).production


def test_production_rules_are_reported_with_section_errors():
    raw = _raw("prod")
    net(cidr="10.20.0.1/16")(raw)
    top("eks-platform:protect", "false")(raw)
    net(natStrategy="single")(raw)
    with pytest.raises(ConfigError) as info:
        _validate("prod", raw)
    keys = {i.key for i in info.value.issues}
    assert {f"{PROJECT}:network.cidr", f"{PROJECT}:protect", f"{PROJECT}:network.natStrategy"} <= keys
