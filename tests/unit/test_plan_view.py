"""`make plan` text (tools/plan_view.py): the summary first, from the plan document, at 80 columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.conftest import cli_reads_session_plans
from tools import plan as plan_cli
from tools.mocks import ROOT, run_program, stack_config, stack_names
from tools.plan_view import LISTED, component_counts, render_summary, short_urn, verdict

P = "urn:pulumi:s::p::"
ARN = "arn:aws:iam::123456789012:role/eks-platform-prod-deployments-deploy-with-a-long-name"


def _resource(urn: str, parent: str | None, *, custom: bool = True, **flags: bool) -> dict[str, Any]:
    typ = urn.rpartition("::")[0].rsplit("$", 1)[-1].rsplit("::", 1)[-1]
    return {
        "urn": urn,
        "type": typ,
        "name": urn.rpartition("::")[2],
        "parent": parent,
        "custom": custom,
        "protect": flags.get("protect", False),
        "retainOnDelete": flags.get("retain", False),
        "inputs": {"region": "eu-central-1"} if typ == "pulumi:providers:aws" else {},
    }


def document(mandatory: int = 1) -> dict[str, Any]:
    """A hand-made plan document with every section the summary reads."""
    stack = f"{P}pulumi:pulumi:Stack::p-s"
    net = f"{P}pulumi:pulumi:Stack$platform:network:Network::p-s-network"
    key = f"{P}pulumi:pulumi:Stack$platform:kms:EncryptionKey::p-s-key"
    return {
        "format": 1,
        "project": "p",
        "stack": "s",
        "resources": [
            _resource(net, stack, custom=False),
            _resource(f"{P}platform:network:Network$awsx:ec2:Vpc::p-s-network-vpc", net, protect=True),
            _resource(f"{P}platform:network:Network$aws:ec2/flowLog:FlowLog::p-s-network-flow", net),
            _resource(key, stack, custom=False),
            _resource(
                f"{P}platform:kms:EncryptionKey$aws:kms/key:Key::p-s-key-key", key, protect=True, retain=True
            ),
            _resource(f"{P}pulumi:providers:aws::p-s-aws", stack),
        ],
        "outputs": {"deployRoleArn": ARN},
        "findings": [
            *(
                {"rule": f"rule-{i}", "level": "mandatory", "urn": None, "message": f"bad {i}"}
                for i in range(mandatory)
            ),
            {"rule": "advice", "level": "advisory", "urn": key, "message": "consider it"},
        ],
        "capacity": {
            "freeIpsPerAz": {"eu-central-1a": 4000, "eu-central-1b": 3990},
            "plannedPods": 300,
            "requiredIps": 900,
            "usableIps": 7990,
            "systemNodes": {
                "basis": "values",
                "nodes": 2,
                "instanceType": "m7g.large",
                "requests": {"cpu": 3.5, "memoryGiB": 6.0},
                "allocatable": {"cpu": 3.8, "memoryGiB": 12.0},
                "fits": True,
                "fitsWithOneNodeLost": False,
            },
        },
        "cost": {"currency": "USD", "fixedMonthly": 1234.5, "budget": 1000.0, "region": "eu-central-1"},
        "rehearsal": {
            "create": {"minutes": 31.5, "criticalPath": ["a", "b", "c"], "waves": [], "steps": []},
            "destroy": {"minutes": 12.0, "waves": []},
            "appliers": [
                {"path": "make up", "reachesEndpoint": False, "clusterAdmin": True},
                {"path": "Pulumi Deployments", "reachesEndpoint": True, "clusterAdmin": True},
            ],
        },
        "rendered": [{"release": "argocd"}],
        "notRendered": [
            {
                "release": "karpenter",
                "reason": "no package karpenter-1.0.0.tgz in the chart cache",
                "error": False,
            },
            {"release": "vpa", "reason": "no package vpa-0.1.0.tgz in the chart cache", "error": False},
            {"release": "broken", "reason": "Helm: template error", "error": True},
        ],
        "validation": {"checked": 42, "problems": [{"x": 1}], "unknownKinds": {"Gadget": ["argocd"]}},
        "placeholders": [
            {"key": f"p:k{i}", "value": "example-org", "reason": "the example organization"} for i in range(5)
        ],
        "warnings": ["p:alertReceiverUrl is not set: Alertmanager routes alerts to no receiver."],
    }


def summary(doc: dict[str, Any], width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    render_summary(doc, console)
    return console.export_text().splitlines()


def test_short_urn_is_type_and_name() -> None:
    assert short_urn(f"{P}platform:cluster:Cluster$eks:index:Cluster::p-s-eks") == "eks:index:Cluster p-s-eks"
    assert short_urn(f"{P}pulumi:providers:aws::p-s-aws") == "pulumi:providers:aws p-s-aws"
    assert short_urn(None) == "(stack)"


def test_components_count_everything_under_them_and_the_providers_share_a_line() -> None:
    assert component_counts(document()) == [
        ("platform:kms:EncryptionKey p-s-key", 2),
        ("platform:network:Network p-s-network", 3),
        ("(providers and other top-level resources)", 1),
    ]


def test_the_summary_says_what_the_document_says() -> None:
    text = "\n".join(summary(document()))
    for expected in (
        "p / stack s",
        "eu-central-1",
        "6 (4 custom) · 2 protected · 1 retained on delete",
        "3  platform:network:Network p-s-network",
        "2: 1 mandatory, 1 advisory",
        "✗ rule-0: bad 0",
        "eu-central-1a 4,000 · eu-central-1b 3,990",
        "planned pods 300",
        "fits yes · with one node lost NO",
        "3.5/3.8 CPU",
        "USD 1,234.50 a month fixed (budget 1,000.00)",
        "create ~31.5 min (critical path 3 steps), destroy ~12 min",
        "1 of 4 releases rendered, 3 not rendered (1 render errors)",
        "no package <chart>.tgz in the chart cache",
        "karpenter, vpa",
        "42 objects checked: 1 problems, 1 kinds without a schema",
        "5 to replace before a real deploy",
        "k0, k1, k2, …",
        "alertReceiverUrl is not set",
    ):
        assert expected in text, expected
    assert "advice" not in text, "advisory findings wait for the Findings section"


def test_the_summary_lists_a_few_mandatory_findings_and_counts_the_rest() -> None:
    lines = summary(document(mandatory=LISTED + 3))
    assert sum(1 for line in lines if line.startswith("  ✗ rule-")) == LISTED
    assert "  … 3 more under Findings below" in lines


def test_a_document_without_optional_sections_still_summarises() -> None:
    doc = {k: v for k, v in document().items() if k in ("format", "project", "stack", "resources", "outputs")}
    text = "\n".join(summary(doc))
    assert "Resources" in text and "Cost" not in text and "Helm" not in text and "Warnings" not in text


def split_tokens(lines: list[str], tokens: set[str]) -> list[str]:
    """Tokens whose pieces are on two lines: in the lines glued together, but in no single line."""
    glued = "".join(line.strip() for line in lines)
    return sorted(t for t in tokens if t in glued and not any(t in line for line in lines))


def test_the_split_detector_finds_a_split_token() -> None:
    assert split_tokens(["as arn:aws:iam::1:role/", "deploy"], {"arn:aws:iam::1:role/deploy"}) == [
        "arn:aws:iam::1:role/deploy"
    ]
    assert split_tokens(["as arn:aws:iam::1:role/deploy"], {"arn:aws:iam::1:role/deploy"}) == []


def tokens(document: dict[str, Any]) -> set[str]:
    """Whitespace-free values a reader copies: ARNs, names, types, rules, keys (16 to 76 characters)."""
    texts: list[str] = [ARN]
    texts += [v for v in document["outputs"].values() if isinstance(v, str)]
    texts += [r[k] for r in document["resources"] for k in ("name", "type")]
    texts += [f[k] for f in document.get("findings", []) for k in ("rule", "message")]
    texts += [str(v) for a in document.get("rehearsal", {}).get("appliers", []) for v in a.values()]
    texts += [p[k] for p in document.get("placeholders", []) for k in ("key", "value")]
    texts += document.get("warnings", [])
    return {t.rstrip(".,:;") for text in texts for t in text.split() if 16 <= len(t) <= 76 and "…" not in t}


def test_the_hand_made_summary_fits_80_columns_and_one_screen() -> None:
    doc = document(mandatory=2)
    doc["findings"][0]["message"] = f"{ARN} cannot assume anything " * 3
    lines = summary(doc)
    assert len(lines) <= 40
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert split_tokens(lines, tokens(doc)) == []
    assert any(line.endswith("…") for line in lines), "a long value is elided, not wrapped"


@pytest.fixture(scope="module", params=stack_names())
def planned(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str]:
    """The real plan of a stack: its document and its default text at 80 columns."""
    out = tmp_path_factory.mktemp(request.param) / "plan.json"
    with pytest.MonkeyPatch.context() as mp:
        cli_reads_session_plans(mp, request)
        mp.setenv("COLUMNS", "80")
        console = Console(width=80, record=True, color_system=None)
        mp.setattr(plan_cli, "Console", lambda stderr=False: console if not stderr else Console(stderr=True))
        plan_cli.main(["--stack", request.param, "--json", str(out)])
    return json.loads(out.read_text()), console.export_text()


def test_the_real_summary_agrees_with_the_document(planned: tuple[dict[str, Any], str]) -> None:
    doc, text = planned
    lines = text.splitlines()
    head = lines[: next(i for i, line in enumerate(lines) if "─ Findings ─" in line)]
    assert len(head) <= 40, "the summary is one screen"
    assert head == summary(doc), "the printed summary is the document's summary"
    assert f"Resources   {len(doc['resources'])} (" in text
    assert f"{doc['cost']['fixedMonthly']:,.2f} a month fixed" in text
    assert "Resource tree" not in text and "├──" not in text, "the tree needs --tree"
    for heading in ("Findings", "Monthly cost", "Deploy rehearsal", "Helm releases", "Stack outputs"):
        assert f" {heading} ─" in text


def test_the_real_default_output_fits_80_columns_without_splitting_a_token(
    planned: tuple[dict[str, Any], str],
) -> None:
    doc, text = planned
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert split_tokens(lines, tokens(doc)) == []
    assert "urn:pulumi:" not in text, "resources are named by type and name"


def test_a_long_output_value_is_elided_with_a_mark_not_cropped(planned: tuple[dict[str, Any], str]) -> None:
    """At 80 columns a stack output is printed whole or cut with `…`: a silent crop reads as the value."""
    doc, text = planned
    lines = text.splitlines()
    section = lines[next(i for i, line in enumerate(lines) if "─ Stack outputs ─" in line) + 1 :]
    for key, value in doc["outputs"].items():
        shown = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
        line = next(line for line in section if line.split()[:1] == [key])
        cell = line.split(None, 1)[1].rstrip()
        assert cell == shown or (cell.endswith("…") and shown.startswith(cell[:-1])), (key, cell)


def test_program_warnings_land_in_the_document_not_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    raw, secret_keys = stack_config("prod")
    result = run_program("prod", raw, secret_keys=secret_keys)
    assert any("alertReceiverUrl is not set" in w for w in result.warnings)
    assert result.document()["warnings"] == result.warnings
    assert "alertReceiverUrl" not in capfd.readouterr().err

    raw["eks-platform:alertReceiverUrl"] = "https://alerts.example.com/hook"
    quiet = run_program("prod", raw, secret_keys=[*secret_keys, "eks-platform:alertReceiverUrl"])
    assert not any("alertReceiverUrl" in w for w in quiet.warnings)


@pytest.mark.usefixtures("cli_on_session_plans")
def test_the_tree_is_printed_with_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "dev", "--tree"]) == 0
    out = capsys.readouterr().out
    assert "Resource tree" in out and "└── " in out and "platform:network:Network" in out


def test_the_verdict_says_findings_deploy_path_cost_and_first_up() -> None:
    doc = document(mandatory=2)
    assert verdict(doc) == (
        "Verdict: 2 mandatory, 1 advisory, 1 Helm render error(s) · deployable · USD 1,234/mo"
        " · first up ~31.5 min"
    )
    doc["notRendered"] = [n for n in doc["notRendered"] if not n["error"]]
    assert ", 1 Helm render error(s)" not in verdict(doc)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["findings"][0].update(level="advisory"), "0 mandatory, 2 advisory"),
        (lambda d: d["findings"].pop(), "1 mandatory, 0 advisory"),
        (lambda d: d["rehearsal"]["appliers"][1].update(reachesEndpoint=False), "NO deploy path"),
        (lambda d: d["rehearsal"]["appliers"][1].update(clusterAdmin=False), "NO deploy path"),
        (lambda d: d["rehearsal"]["appliers"].pop(), "NO deploy path"),
        (lambda d: d["cost"].update(fixedMonthly=99.4, currency="EUR"), "EUR 99/mo"),
        (lambda d: d["rehearsal"]["create"].update(minutes=48), "first up ~48 min"),
    ],
)
def test_the_verdict_follows_the_document(change: Any, expected: str) -> None:
    doc = document(mandatory=1)
    before = verdict(doc)
    change(doc)
    assert expected in verdict(doc) and expected not in before, (before, verdict(doc))


def test_a_verdict_without_optional_sections_says_the_findings_only() -> None:
    keep = ("format", "project", "stack", "resources", "findings")
    doc = {k: v for k, v in document().items() if k in keep}
    assert verdict(doc) == "Verdict: 1 mandatory, 1 advisory"


def test_the_last_line_of_the_real_plan_is_its_verdict(planned: tuple[dict[str, Any], str]) -> None:
    doc, text = planned
    last = text.rstrip().splitlines()[-1]
    assert last == verdict(doc), last
    mandatory = sum(1 for f in doc["findings"] if f["level"] == "mandatory")
    assert last.startswith(f"Verdict: {mandatory} mandatory, {len(doc['findings']) - mandatory} advisory")


@pytest.mark.usefixtures("cli_on_session_plans")
def test_summary_mode_prints_the_summary_and_the_verdict_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_cli.main(["--stack", "dev", "--summary"]) == 0
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[-1].startswith("Verdict: ")
    assert not any(" Findings ─" in line or " Stack outputs ─" in line for line in lines)
    assert any(line.startswith("Findings ") for line in lines), "the summary is there"


def test_offline_mode_says_what_it_degrades() -> None:
    """Releases not rendered for want of their package: judged on values, the rendered checks named."""
    text = "\n".join(summary(document()))
    assert "Offline     values basis: 2 of 4 releases not rendered, judged on values only" in text
    assert "No rendered-object rules, object validation or chart NetworkPolicies" in text
    rendered = document()
    rendered["notRendered"] = [n for n in rendered["notRendered"] if n["error"]]
    rendered["capacity"]["systemNodes"]["basis"] = "rendered"
    assert "Offline" not in "\n".join(summary(rendered)), "a full chart cache degrades nothing"


def test_the_verdict_docs_quote_is_prods(plan_documents: dict[str, dict[str, Any]]) -> None:
    """docs/offline-plan.md quotes prod's verdict without the chart cache (as CI plans it)."""
    if plan_documents["prod"].get("rendered"):
        pytest.skip("the chart cache renders releases here: the quoted verdict is prod's without it")
    text = (ROOT / "docs" / "offline-plan.md").read_text()
    (quoted,) = [line.strip() for line in text.splitlines() if line.strip().startswith("Verdict: ")]
    assert quoted == verdict(plan_documents["prod"]), "update the quoted verdict in docs/offline-plan.md"
