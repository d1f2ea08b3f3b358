"""Picture (analysis/diagram.py, tools/diagram.py): the Mermaid diagram and docs/architecture.md."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from analysis.diagram import markdown, mermaid
from model.records import PlanResult
from tools import diagram as diagram_cli


def test_docs_architecture_is_the_generated_prod_diagram(prod: PlanResult) -> None:
    assert diagram_cli.DOCS.exists(), (
        "docs/architecture.md is missing: run `python -m tools.diagram --write-docs`"
    )
    assert diagram_cli.DOCS.read_text() == diagram_cli.architecture_doc(prod.document()), (
        "docs/architecture.md is stale: run `python -m tools.diagram --write-docs`"
    )


def test_the_diagram_draws_what_the_plan_holds(plan: PlanResult) -> None:
    text = mermaid(plan.document())
    vpc = plan.one("awsx:ec2:Vpc")
    zones = vpc.get("availabilityZoneNames")
    for zone, cidr in zip(zones, vpc.get("subnetSpecs.0.cidrBlocks"), strict=True):
        assert f'["{zone}"]' in text and f"private subnet {cidr}" in text
    nats = 1 if vpc.get("natGateways.strategy") == "Single" else len(zones)
    assert text.count("NAT gateway") == nats
    for pool in plan.of_type("kubernetes:karpenter.sh/v1:NodePool"):
        assert f"Karpenter pool {pool.get('metadata.name')}:" in text
    for release in plan.of_type("kubernetes:helm.sh/v3:Release"):
        assert f"Helm {release.name.removeprefix(f'eks-platform-{plan.stack}-')}" in text
    repos = plan.of_type("aws:ecr/repository:Repository")
    assert repos and "Secrets Manager: " in text
    assert "ECR: " + ", ".join(r.name.removeprefix(f"eks-platform-{plan.stack}-") for r in repos) in text
    assert ("interface endpoints:" in text) == bool(plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"))


def test_the_diagram_does_not_depend_on_resource_order(prod: PlanResult) -> None:
    document = prod.document()
    shuffled = dict(
        document, resources=random.Random(7).sample(document["resources"], len(document["resources"]))
    )
    assert mermaid(shuffled) == mermaid(document)


def test_labels_cannot_break_the_mermaid_syntax(prod: PlanResult) -> None:
    document = prod.document()
    for r in document["resources"]:
        if r["type"] == "aws:ecr/repository:Repository":
            r["name"] = 'eks-platform-prod-x"]; click'
    assert '"]; click' not in mermaid(document)


def test_cli_reads_a_saved_plan_and_writes_a_mermaid_block(
    dev: PlanResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved, out = tmp_path / "plan.json", tmp_path / "diagram.md"
    saved.write_text(json.dumps(dev.document()))
    assert diagram_cli.main(["--plan", str(saved), "--out", str(out)]) == 0
    assert out.read_text() == markdown(dev.document()) and out.read_text().startswith("```mermaid\n")
    assert diagram_cli.main(["--stack", "nope"]) == 2
    assert "no stack file Pulumi.nope.yaml" in capsys.readouterr().err
