"""Cost: what the planned resources bill per month at AWS list price (the plan's `cost` section).

    report = estimate(plan_document, budget=1500.0)

Reads the plan document's resources and the price book `platform/prices.yaml` (keyed by region,
every price with its sources and date). Fixed items are those whose quantity follows from the plan
alone (cluster-hours, instance-hours of the desired system nodes, their gp3 GB, NAT gateway and
endpoint hours, public IPv4 hours, KMS keys, secrets), priced at 730 h/month. Traffic-driven items
(NAT and endpoint GB, log GB, inter-AZ GB, ECR storage, SQS requests) are listed with their unit
price and never guessed. Karpenter NodePools are a range per node-hour over the priced instance types
their requirements allow: how many nodes run is up to the workload. A region without prices gives a
`missing` line, never a number from another region.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis.prices import InstancePrice, RegionPrices, price_book

RULE_OVER_BUDGET = "cost-over-budget"
AWS_PROVIDER = "pulumi:providers:aws"


@dataclass(frozen=True)
class Item:
    urn: str
    what: str
    quantity: float
    unit: str
    unit_price: float
    hours: int  # 1 for items priced per month, else the hours in a month

    @property
    def monthly(self) -> float:
        return round(self.quantity * self.unit_price * self.hours, 2)

    def document(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "what": self.what,
            "quantity": self.quantity,
            "unit": self.unit,
            "unitPrice": self.unit_price,
            "monthly": self.monthly,
        }


@dataclass(frozen=True)
class PoolRange:
    urn: str
    pool: str
    capacity_types: tuple[str, ...]
    instance_types: tuple[str, ...]
    min_per_node_hour: float | None
    max_per_node_hour: float | None
    note: str
    per_vcpu_hour: tuple[float, float] | None = None  # over the allowed families, any size

    def document(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "pool": self.pool,
            "capacityTypes": list(self.capacity_types),
            "instanceTypes": list(self.instance_types),
            "minPerNodeHour": self.min_per_node_hour,
            "maxPerNodeHour": self.max_per_node_hour,
            "note": self.note,
            "perVcpuHour": list(self.per_vcpu_hour) if self.per_vcpu_hour else None,
        }


@dataclass(frozen=True)
class CostReport:
    currency: str
    region: str
    prices_as_of: str | None
    items: tuple[Item, ...] = ()
    usage: tuple[tuple[str, str, float], ...] = ()
    pools: tuple[PoolRange, ...] = ()
    missing: tuple[str, ...] = ()
    budget: float | None = None

    @property
    def fixed_monthly(self) -> float:
        return round(sum(i.monthly for i in self.items), 2)

    def findings(self) -> list[dict[str, Any]]:
        """A fixed monthly cost above the stack's budget, as a plan finding."""
        if self.budget is None or self.fixed_monthly <= self.budget:
            return []
        message = (
            f"fixed monthly cost {self.currency} {self.fixed_monthly:,.2f} is above the stack's budget "
            f"of {self.budget:,.2f} (usage-based items and Karpenter nodes come on top)"
        )
        return [{"rule": RULE_OVER_BUDGET, "level": "advisory", "urn": None, "message": message}]

    def document(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "region": self.region,
            "pricesAsOf": self.prices_as_of or "",
            "hoursPerMonth": price_book().hoursPerMonth,
            "fixedMonthly": self.fixed_monthly,
            "budget": self.budget,
            "items": [i.document() for i in self.items],
            "usage": [{"what": w, "unit": u, "unitPrice": p} for w, u, p in self.usage],
            "nodePools": [p.document() for p in self.pools],
            "missing": list(self.missing),
        }


# Traffic-driven dimensions listed with their unit price when a resource of the type is planned.
_USAGE: dict[str, tuple[tuple[str, str], ...]] = {
    "awsx:ec2:Vpc": (
        ("nat-gateway-data", "NAT gateway data processed"),
        ("inter-az-transfer", "inter-AZ traffic (billed on both sides)"),
    ),
    "aws:ec2/vpcEndpoint:VpcEndpoint": (("endpoint-data", "interface endpoint data processed"),),
    "aws:cloudwatch/logGroup:LogGroup": (
        ("logs-ingestion", "CloudWatch Logs ingested (control plane; flow logs as vended logs)"),
        ("logs-storage", "CloudWatch Logs stored"),
    ),
    "aws:ecr/repository:Repository": (("ecr-storage", "ECR image storage"),),
    "aws:sqs/queue:Queue": (("sqs-requests", "SQS requests beyond the free million"),),
    "aws:secretsmanager/secret:Secret": (("secret-api-calls", "Secrets Manager API calls"),),
    "aws:kms/key:Key": (("kms-requests", "KMS requests beyond the free 20,000"),),
}


@dataclass
class _Pricer:
    """Turns resources into items for one region's prices; records what it could not price."""

    region: str
    book: RegionPrices
    hours: int
    items: list[Item] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, urn: str, what: str, key: str, quantity: float, *, per_hour: bool) -> None:
        price = self.book.prices.get(key)
        if price is None:
            self.missing.append(f"no price for {key} in {self.region} ({what})")
            return
        unit = price.unit
        self.items.append(Item(urn, what, quantity, unit, price.price, self.hours if per_hour else 1))

    def instance(self, urn: str, what: str, instance_type: str, count: int) -> None:
        entry = self.book.instances.get(instance_type)
        if entry is None:
            self.missing.append(f"no price for {instance_type} in {self.region} ({what})")
            return
        self.items.append(Item(urn, what, count, f"{instance_type} instance-hour", entry.price, self.hours))


def _get(node: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(node, Mapping) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def region_of(resources: Sequence[Mapping[str, Any]]) -> str:
    regions = sorted({str(_get(r, "inputs", "region")) for r in resources if r["type"] == AWS_PROVIDER})
    if len(regions) != 1:
        raise ValueError(f"the plan must have exactly one AWS provider region, found {regions or 'none'}")
    return regions[0]


def _nat_count(vpc: Mapping[str, Any]) -> int:
    """NAT gateways awsx builds: `Single` one, `OnePerAz` (awsx's default) one per AZ, `None` none
    (pulumi/pulumi-awsx awsx/ec2/vpc.ts, each with an Elastic IP: a public IPv4 address)."""
    strategy = _get(vpc, "inputs", "natGateways", "strategy") or "OnePerAz"
    zones = _get(vpc, "inputs", "availabilityZoneNames") or []
    return {"None": 0, "Single": 1}.get(strategy, len(zones))


def _node_group(p: _Pricer, r: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> None:
    """Instance-hours of the desired nodes and their gp3 root volumes (from the launch template)."""
    urn, inputs = r["urn"], r.get("inputs") or {}
    count = int(_get(inputs, "scalingConfig", "desiredSize") or 0)
    types = inputs.get("instanceTypes") or []
    # On-Demand managed node groups launch the first listed type while capacity allows
    # (EKS user guide, "Managed node group capacity types": prioritized allocation strategy).
    if types:
        p.instance(urn, f"system nodes ({count} x {types[0]})", types[0], count)
    for dep in r.get("dependencies") or []:
        template = by_urn.get(dep)
        if not template or template["type"] != "aws:ec2/launchTemplate:LaunchTemplate":
            continue
        for mapping in _get(template, "inputs", "blockDeviceMappings") or []:
            size = int(_get(mapping, "ebs", "volumeSize") or 0)
            if _get(mapping, "ebs", "volumeType") == "gp3" and size:
                what = f"system node disks ({count} x {size} GB gp3)"
                p.add(urn, what, "ebs-gp3-storage", count * size, per_hour=False)


def _auto_scaling_group(p: _Pricer, r: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> None:
    """Instance-hours of an Auto Scaling group's desired hosts (the Deployments agents) and their gp3
    root volumes, from its launch template. A replacement's extra host lives minutes: not priced."""
    urn, inputs = r["urn"], r.get("inputs") or {}
    count = int(inputs.get("desiredCapacity") or 0)
    for dep in r.get("dependencies") or []:
        template = by_urn.get(dep)
        if not template or template["type"] != "aws:ec2/launchTemplate:LaunchTemplate":
            continue
        instance_type = _get(template, "inputs", "instanceType")
        if instance_type:
            p.instance(urn, f"{r['name']} ({count} x {instance_type})", instance_type, count)
        for mapping in _get(template, "inputs", "blockDeviceMappings") or []:
            size = int(_get(mapping, "ebs", "volumeSize") or 0)
            if _get(mapping, "ebs", "volumeType") == "gp3" and size:
                what = f"{r['name']} disks ({count} x {size} GB gp3)"
                p.add(urn, what, "ebs-gp3-storage", count * size, per_hour=False)


def _price_resource(p: _Pricer, r: Mapping[str, Any], by_urn: Mapping[str, Mapping[str, Any]]) -> None:
    urn, typ, inputs = r["urn"], r["type"], r.get("inputs") or {}
    if typ == "eks:index:Cluster":
        # Without an upgrade policy the EKS API defaults to EXTENDED support.
        support = str(_get(inputs, "upgradePolicy", "supportType") or "EXTENDED").lower()
        p.add(urn, f"EKS control plane ({support} support)", f"eks-cluster-{support}", 1, per_hour=True)
    elif typ == "eks:index:ManagedNodeGroup":
        _node_group(p, r, by_urn)
    elif typ == "aws:autoscaling/group:Group":
        _auto_scaling_group(p, r, by_urn)
    elif typ == "awsx:ec2:Vpc":
        nats = _nat_count(r)
        if nats:
            p.add(urn, f"NAT gateways ({nats})", "nat-gateway-hour", nats, per_hour=True)
            p.add(urn, f"NAT gateway public IPv4 ({nats})", "public-ipv4-hour", nats, per_hour=True)
    elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
        if inputs.get("vpcEndpointType") == "Interface":  # gateway endpoints are free
            zones = len(inputs.get("subnetIds") or [])
            service = str(inputs.get("serviceName", "")).rsplit(".", 1)[-1]
            p.add(
                urn, f"interface endpoint {service} ({zones} AZs)", "endpoint-az-hour", zones, per_hour=True
            )
    elif typ == "aws:kms/key:Key":
        p.add(urn, "KMS customer managed key", "kms-key-month", 1, per_hour=False)
    elif typ == "aws:secretsmanager/secret:Secret":
        p.add(urn, "Secrets Manager secret", "secret-month", 1, per_hour=False)


def _requirement_ok(req: Mapping[str, Any], name: str, entry: InstancePrice) -> bool | None:
    """Whether a priced instance type meets one NodePool requirement (None: key not understood)."""
    family, size = name.split(".", 1)
    generation = int("".join(c for c in family if c.isdigit()) or 0)
    facts: dict[str, str] = {
        "kubernetes.io/arch": entry.arch,
        "karpenter.k8s.aws/instance-category": family[0],
        "karpenter.k8s.aws/instance-family": family,
        "karpenter.k8s.aws/instance-generation": str(generation),
        "karpenter.k8s.aws/instance-cpu": str(entry.vcpu),
        "karpenter.k8s.aws/instance-size": size,
        "node.kubernetes.io/instance-type": name,
    }
    key, op, values = req.get("key"), req.get("operator"), [str(v) for v in req.get("values") or []]
    if key == "karpenter.sh/capacity-type":
        return True  # priced at On-Demand either way; the note says what Spot means
    if key not in facts:
        return None
    fact = facts[key]
    # Operators of the NodePool requirement (karpenter.sh/v1 NodeSelectorRequirementWithMinValues).
    checks: dict[str, Callable[[], bool]] = {
        "In": lambda: fact in values,
        "NotIn": lambda: fact not in values,
        "Exists": lambda: True,
        "DoesNotExist": lambda: False,
        "Gt": lambda: int(fact) > int(values[0]),
        "Lt": lambda: int(fact) < int(values[0]),
    }
    return checks[op]() if op in checks else None


# Requirements on an instance's size rather than its family: dropped for the per-vCPU range.
_SIZE_KEYS = {
    "karpenter.k8s.aws/instance-cpu",
    "karpenter.k8s.aws/instance-size",
    "node.kubernetes.io/instance-type",
}


def _pool_range(r: Mapping[str, Any], book: RegionPrices) -> PoolRange:
    reqs = _get(r, "inputs", "spec", "template", "spec", "requirements") or []
    capacity = next((tuple(q["values"]) for q in reqs if q.get("key") == "karpenter.sh/capacity-type"), ())
    pool = str(_get(r, "inputs", "metadata", "name") or r["name"])
    matched: list[tuple[str, float]] = []
    per_vcpu: list[float] = []  # types of the allowed families whatever their size
    for name, entry in sorted(book.instances.items()):
        verdicts = [_requirement_ok(q, name, entry) for q in reqs]
        if None in verdicts:
            unknown = [q.get("key") for q, v in zip(reqs, verdicts, strict=True) if v is None]
            note = f"requirement not understood: {unknown}"
            return PoolRange(r["urn"], pool, capacity, (), None, None, note)
        if all(verdicts):
            matched.append((name, entry.price))
        if all(v for q, v in zip(reqs, verdicts, strict=True) if q.get("key") not in _SIZE_KEYS):
            per_vcpu.append(round(entry.price / entry.vcpu, 5))
    note = "On-Demand list price" + (
        "; Spot is lower and varies by pool and hour" if "spot" in capacity else ""
    )
    if not matched:
        note = "no priced instance type of the allowed sizes" + (
            "; the allowed families' price per vCPU-hour is given" if per_vcpu else ""
        )
    prices = [price for _, price in matched]
    return PoolRange(
        r["urn"], pool, capacity, tuple(n for n, _ in matched),
        min(prices, default=None), max(prices, default=None), note,
        (min(per_vcpu), max(per_vcpu)) if per_vcpu else None,
    )  # fmt: skip


def estimate(document: Mapping[str, Any], budget: float | None = None) -> CostReport:
    """The cost section for a plan document (its `resources`, as the plan JSON holds them)."""
    resources: Sequence[Mapping[str, Any]] = document["resources"]
    region = region_of(resources)
    book = price_book()
    prices = book.regions.get(region)
    if prices is None:
        return CostReport(book.currency, region, None, missing=(f"no prices for {region}",), budget=budget)
    pricer = _Pricer(region, prices, book.hoursPerMonth)
    by_urn = {r["urn"]: r for r in resources}
    for r in resources:
        _price_resource(pricer, r, by_urn)
    planned = {r["type"] for r in resources}
    usage = sorted(
        {
            (what, prices.prices[key].unit, prices.prices[key].price)
            for typ, dims in _USAGE.items()
            if typ in planned
            for key, what in dims
            if key in prices.prices
        }
    )
    pools = [_pool_range(r, prices) for r in resources if r["type"] == "kubernetes:karpenter.sh/v1:NodePool"]
    return CostReport(
        currency=book.currency,
        region=region,
        prices_as_of=prices.asOf,
        items=tuple(sorted(pricer.items, key=lambda i: (i.urn, i.what))),
        usage=tuple(usage),
        pools=tuple(sorted(pools, key=lambda p: p.urn)),
        missing=tuple(sorted(set(pricer.missing))),
        budget=budget,
    )
