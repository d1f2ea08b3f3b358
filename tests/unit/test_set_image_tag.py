"""The tag bump's line edit (.github/scripts/set_image_tag.py) and the bump step that runs it.

The tag-bump pull request must change exactly the `image.tag` line; the step fails otherwise. A YAML
round trip (`yq -i`, go-yaml underneath) drops blank lines, which every values file has, so the
step edits the line instead. Here: every values file of the checkout and the ones `make
new-service` writes (dev and production), edited and parsed back; then the bump step itself, as
the runner runs it, in a git checkout.
"""

from __future__ import annotations

import difflib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.workflow_steps import job_step, run_step, yq_reader
from tools import new_service
from tools.mocks import ROOT

SCRIPT = ROOT / ".github" / "scripts" / "set_image_tag.py"
VALUES_FILES = sorted((ROOT / "services").glob("*/deploy/*.yaml"))
TAG = "0123456789abcdef0123456789abcdef01234567"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("set_image_tag", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SET = _script()


def _new_service_values() -> dict[str, str]:
    """The values files `make new-service` writes, for a build stack and a production one."""
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    return {
        stack: new_service._values("orders", stack, "eks-platform", registry, production=production, zones=3)
        for stack, production in (("dev", False), ("prod", True))
    }


CASES = {
    **{str(p.relative_to(ROOT)): p.read_text() for p in VALUES_FILES},
    **{f"new-service {stack}": text for stack, text in _new_service_values().items()},
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_only_the_tag_line_changes_and_the_document_reads_the_same_but_the_tag(text: str) -> None:
    assert "\n\n" in text, "the file has blank lines, which a YAML round trip would drop"
    after = SET.set_tag(text, TAG)
    changed = [d for d in difflib.ndiff(text.splitlines(), after.splitlines()) if d[:1] in "+-"]
    assert len(changed) == 2 and changed[0].lstrip("- ").startswith("tag:"), changed
    assert changed[1].startswith("+ ") and changed[1].endswith(f'tag: "{TAG}"'), changed
    before, parsed = yaml.safe_load(text), yaml.safe_load(after)
    assert parsed["image"]["tag"] == TAG
    assert {**parsed, "image": {**parsed["image"], "tag": before["image"]["tag"]}} == before
    assert SET.set_tag(after, TAG) == after, "setting the same tag again changes nothing"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("replicas: 1\n", "no top-level `image:` mapping"),
        ("image:\n  repository: r\nreplicas: 1\n", "no `tag:` line directly under `image:`"),
        # Another key's image (a sidecar's) is not the service's.
        ("sidecar:\n  image:\n    tag: x\n", "no top-level `image:` mapping"),
        ("image:\n  nested:\n    tag: x\n  repository: r\n", "no `tag:` line directly under `image:`"),
    ],
    ids=["no-image", "no-tag", "other-image", "deeper-tag"],
)
def test_a_file_without_the_line_is_an_error_naming_what_is_missing(text: str, error: str) -> None:
    with pytest.raises(SET.TagError, match=error):
        SET.set_tag(text, TAG)


def test_the_tag_must_be_a_commit_sha_and_a_comment_on_the_line_is_kept() -> None:
    with pytest.raises(SET.TagError, match="40 lowercase hex digits"):
        SET.set_tag('image:\n  tag: "x"\n', "latest")
    text = "image:\n  # the tag\n  tag: '0000'  # set by CI\n  repository: r\n"
    assert SET.set_tag(text, TAG) == f'image:\n  # the tag\n  tag: "{TAG}"  # set by CI\n  repository: r\n'


def test_the_script_runs_as_the_step_runs_it(tmp_path: Path) -> None:
    values = tmp_path / "dev.yaml"
    values.write_text(VALUES_FILES[0].read_text())
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(values), TAG], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and f"image.tag = {TAG}" in done.stdout, done.stderr
    values.write_text("replicas: 1\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(values), TAG], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "no top-level `image:` mapping" in done.stderr


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


def test_the_bump_step_changes_one_line_of_a_real_values_file(tmp_path: Path) -> None:
    """propose-tag.yml's `bump` step in a git checkout holding the script and a service's values
    file: it reports a change, and the file differs from the commit by the tag line alone."""
    workflow: dict[str, Any] = yaml.safe_load(
        (ROOT / ".github" / "workflows" / "propose-tag.yml").read_text()
    )
    step = job_step(workflow["jobs"]["bump"], "bump")
    checkout = tmp_path / "checkout"
    (checkout / ".github" / "scripts").mkdir(parents=True)
    (checkout / ".github" / "scripts" / SCRIPT.name).write_text(SCRIPT.read_text())
    source = VALUES_FILES[0]
    relative = source.relative_to(ROOT)
    (checkout / relative).parent.mkdir(parents=True)
    (checkout / relative).write_text(source.read_text())
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    env = {"VALUES_FILE": str(relative), "TAG": TAG}
    done, outputs = run_step(step, env, checkout, path=yq_reader(tmp_path / "bin"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs["changed"] == "true"
    assert yaml.safe_load((checkout / relative).read_text())["image"]["tag"] == TAG
    # Again with the same tag: nothing to propose.
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "bump")
    done, outputs = run_step(step, env, checkout, path=yq_reader(tmp_path / "bin2"))
    assert done.returncode == 0 and outputs["changed"] == "false", done.stdout + done.stderr
