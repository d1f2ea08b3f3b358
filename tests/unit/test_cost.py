"""Cost (analysis/cost.py, platform/prices.yaml): list-price totals, usage prices, ranges, budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from analysis.cost import RULE_OVER_BUDGET, estimate
from analysis.prices import PriceBook, price_book
from model.records import PlanResult
from stacks.config import ConfigError, PlatformConfig, validate
from tools import plan as plan_cli
from tools.mocks import ROOT, project_name, stack_config

PRICES = ROOT / "platform" / "prices.yaml"
PROVIDER = "pulumi:providers:aws"


def _raw_prices(region: str) -> dict[str, Any]:
    region_prices: dict[str, Any] = yaml.safe_load(PRICES.read_text())["regions"][region]
    return region_prices


def _doc(region: str, *resources: dict[str, Any]) -> dict[str, Any]:
    provider = {"urn": "urn:aws", "type": PROVIDER, "name": "aws", "inputs": {"region": region}}
    return {"resources": [provider, *resources]}


def _cluster(**inputs: Any) -> dict[str, Any]:
    return {"urn": "urn:cluster", "type": "eks:index:Cluster", "name": "c", "inputs": inputs}


AGENT_DISK_GIB = 40  # components/agent.py: the hosts' root volume


def test_stack_totals_equal_an_independent_sum_over_the_price_file(
    plan: PlanResult, configs: dict[str, PlatformConfig]
) -> None:
    cfg = configs[plan.stack]
    p = _raw_prices(cfg.region)
    price = {k: v["price"] for k, v in p["prices"].items()}
    nodes = cfg.system_node_group
    nats = 1 if cfg.network.nat_strategy == "single" else cfg.network.az_count
    # The Deployments agent hosts (components/agent.py), where the stack runs them.
    agents = cfg.deployments.agent.hosts if cfg.deployments.agent.enabled else 0
    hourly = (
        price["eks-cluster-standard"]  # both stacks pin upgradePolicy STANDARD
        + nats * (price["nat-gateway-hour"] + price["public-ipv4-hour"])
        + len(cfg.network.interface_endpoints) * cfg.network.az_count * price["endpoint-az-hour"]
        + nodes.desired_size * p["instances"][nodes.instance_types[0]]["price"]
        + agents * p["instances"][cfg.deployments.agent.instance_type]["price"]
    )
    monthly = (
        nodes.desired_size * nodes.disk_size_gib * price["ebs-gp3-storage"]
        + agents * AGENT_DISK_GIB * price["ebs-gp3-storage"]
        + len(plan.of_type("aws:kms/key:Key")) * price["kms-key-month"]
        + len(plan.of_type("aws:secretsmanager/secret:Secret")) * price["secret-month"]
    )
    report = estimate(plan.document())
    assert report.missing == ()
    assert report.fixed_monthly == pytest.approx(hourly * 730 + monthly, abs=0.05)


@pytest.mark.parametrize(
    ("policy", "hourly"),
    [({"supportType": "EXTENDED"}, 0.60), (None, 0.60), ({"supportType": "STANDARD"}, 0.10)],
)
def test_the_upgrade_policy_sets_the_control_plane_rate(policy: dict[str, str] | None, hourly: float) -> None:
    # Without an upgrade policy the EKS API defaults to EXTENDED (AWS::EKS::Cluster UpgradePolicy).
    inputs = {"upgradePolicy": policy} if policy else {}
    report = estimate(_doc("us-east-1", _cluster(**inputs)))
    (item,) = report.items
    assert (item.unit_price, item.unit, item.monthly) == (hourly, "cluster-hour", round(hourly * 730, 2))


def test_a_region_without_prices_says_so_and_prices_nothing() -> None:
    report = estimate(_doc("ap-south-2", _cluster(upgradePolicy={"supportType": "STANDARD"})))
    assert report.missing == ("no prices for ap-south-2",)
    assert (report.items, report.fixed_monthly, report.prices_as_of) == ((), 0, None)


def test_an_instance_type_without_a_price_is_missing_not_zero() -> None:
    mng = {
        "urn": "urn:mng",
        "type": "eks:index:ManagedNodeGroup",
        "name": "mng",
        "inputs": {"instanceTypes": ["m6g.large"], "scalingConfig": {"desiredSize": 3}},
    }
    assert "m6g.large" not in _raw_prices("eu-west-1")["instances"]
    report = estimate(_doc("eu-west-1", mng))
    assert report.items == () and report.missing == (
        "no price for m6g.large in eu-west-1 (system nodes (3 x m6g.large))",
    )
    assert estimate(_doc("us-east-1", mng)).fixed_monthly == round(3 * 0.077 * 730, 2)


def test_a_fixed_cost_above_the_budget_is_a_finding(prod: PlanResult) -> None:
    total = estimate(prod.document()).fixed_monthly
    (finding,) = estimate(prod.document(), budget=total - 1).findings()
    assert finding["rule"] == RULE_OVER_BUDGET and f"{total:,.2f}" in finding["message"]
    assert estimate(prod.document(), budget=total + 1).findings() == []
    assert estimate(prod.document()).findings() == []


@pytest.mark.parametrize("value", ["0", "-5", '"lots"', "true"])
def test_the_budget_must_be_a_positive_number(value: str) -> None:
    project = project_name()
    raw, _ = stack_config("dev", project)
    with pytest.raises(ConfigError, match="monthlyBudget"):
        validate({**raw, f"{project}:monthlyBudget": value}, project, "dev", "Pulumi.dev.yaml")
    assert validate({**raw, f"{project}:monthlyBudget": "900"}, project, "dev", "x").monthly_budget == 900


def test_usage_items_are_listed_with_unit_prices_not_guessed(prod: PlanResult) -> None:
    report = estimate(prod.document())
    usage = {what: (unit, price) for what, unit, price in report.usage}
    p = _raw_prices("eu-west-1")["prices"]
    assert usage["NAT gateway data processed"] == ("GB", p["nat-gateway-data"]["price"])
    assert usage["inter-AZ traffic (billed on both sides)"][1] == p["inter-az-transfer"]["price"]
    assert any(w.startswith("CloudWatch Logs ingested") for w in usage)
    assert not any("data processed" in i.what or "Logs" in i.what for i in report.items)


def test_karpenter_pools_are_a_range_over_the_allowed_priced_types(dev: PlanResult) -> None:
    # dev's pool: categories c/m/r, generation > 5, more than 1 vCPU, both architectures.
    instances = _raw_prices("eu-west-1")["instances"]
    allowed = {
        n: e["price"]
        for n, e in instances.items()
        if n[0] in "cmr" and int("".join(c for c in n.split(".")[0] if c.isdigit())) > 5 and e["vcpu"] > 1
    }
    (pool,) = estimate(dev.document()).pools
    assert set(pool.instance_types) == set(allowed) and allowed
    assert (pool.min_per_node_hour, pool.max_per_node_hour) == (min(allowed.values()), max(allowed.values()))
    assert "Spot" in pool.note


def test_a_pool_requirement_the_estimate_cannot_judge_is_not_priced() -> None:
    pool = {
        "urn": "urn:pool",
        "type": "kubernetes:karpenter.sh/v1:NodePool",
        "name": "p",
        "inputs": {
            "spec": {"template": {"spec": {"requirements": [{"key": "x/gpu", "operator": "Exists"}]}}}
        },
    }
    (rng,) = estimate(_doc("us-east-1", pool)).pools
    assert rng.min_per_node_hour is None and "x/gpu" in rng.note


def test_every_price_names_a_listed_source_and_a_date() -> None:
    data = yaml.safe_load(PRICES.read_text())
    assert PriceBook.model_validate(data) == price_book()
    data["regions"]["us-east-1"]["prices"]["kms-key-month"]["sources"] = ["a-blog"]
    with pytest.raises(ValidationError, match=r"us-east-1\.kms-key-month: a-blog"):
        PriceBook.model_validate(data)
    del data["regions"]["eu-west-1"]["prices"]["secret-month"]["date"]
    with pytest.raises(ValidationError, match="date"):
        PriceBook.model_validate(data)


@pytest.mark.usefixtures("cli_on_session_plans")
def test_the_plan_document_carries_the_cost_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    assert plan_cli.main(["--stack", "dev", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    schema = json.loads((ROOT / "tests" / "fixtures" / "plan.schema.json").read_text())
    jsonschema.validate(document, schema)
    assert document["cost"]["region"] == "eu-west-1" and document["cost"]["fixedMonthly"] > 0
    assert "Fixed monthly cost: USD" in capsys.readouterr().out


def test_a_pool_larger_than_every_priced_type_gets_a_per_vcpu_range(prod: PlanResult) -> None:
    # prod's pools want more than 7 vCPUs; the price file has none that large in eu-west-1.
    instances = _raw_prices("eu-west-1")["instances"]
    assert all(e["vcpu"] <= 7 for e in instances.values())
    per_vcpu = [
        e["price"] / e["vcpu"]
        for n, e in instances.items()
        if n[0] in "cmr" and int("".join(c for c in n.split(".")[0] if c.isdigit())) > 5
    ]
    for pool in estimate(prod.document()).pools:
        assert pool.min_per_node_hour is None and "no priced instance type" in pool.note
        assert pool.per_vcpu_hour == pytest.approx((min(per_vcpu), max(per_vcpu)), abs=1e-5)
