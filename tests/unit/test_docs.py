"""The README stays true: its config reference is the model's, its commands exist in the Makefile."""

from __future__ import annotations

import re

from tools import config_reference
from tools.mocks import ROOT


def test_readme_config_reference_matches_the_model() -> None:
    readme = (ROOT / "README.md").read_text()
    assert config_reference.readme_section(readme) == config_reference.section(), (
        "README.md's config reference is stale: run `python -m tools.config_reference --write`"
    )


def test_every_model_key_is_documented_once() -> None:
    keys = [k for k, *_ in config_reference.rows()]
    assert len(keys) == len(set(keys))
    assert "eks-platform:network.natStrategy" in keys and "aws:region" in keys
    assert all(desc for *_, desc in config_reference.rows())


def test_make_targets_in_the_readme_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*)(?: [a-z-]+)*:", makefile, re.MULTILINE))
    targets |= {t for line in re.findall(r"^([a-z -]+):", makefile, re.MULTILINE) for t in line.split()}
    used = set(re.findall(r"(?:`|^)make ([a-z][a-z-]+)", readme, re.MULTILINE))
    assert used, "the README shows make commands"
    assert used <= targets, f"README mentions make targets the Makefile lacks: {used - targets}"


def test_platform_dir_stays_data_only() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert not list((ROOT / "platform").rglob("*.py"))


def test_project_file_follows_pulumis_config_declaration_rules() -> None:
    """Rules the Pulumi CLI enforces when it loads Pulumi.yaml (pkg workspace Project.Validate)."""
    import yaml

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "eks-platform"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    for key, decl in project["config"].items():
        assert not ("default" in decl and "value" in decl), key
        if key.startswith("eks-platform:") or ":" not in key:
            assert decl["type"] in {"string", "integer", "boolean", "array"}, key
            assert decl["type"] != "array" or "items" in decl, key
            assert decl.get("description"), key
        else:
            # Keys of other namespaces may only set a value: no type, no default.
            assert set(decl) <= {"value", "description"} and "value" in decl, key


def test_every_alert_links_to_a_runbook_in_the_readme() -> None:
    import yaml

    readme = (ROOT / "README.md").read_text()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', readme))
    rules = yaml.safe_load((ROOT / "platform" / "monitoring" / "rules" / "platform.yaml").read_text())
    alerts = [r for group in rules["spec"]["groups"] for r in group["rules"] if "alert" in r]
    assert alerts
    for rule in alerts:
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no runbook section {anchor} in README.md"
