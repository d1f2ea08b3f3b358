"""Run one step of a GitHub workflow here, as the runner runs a `shell: bash` step: its script with
`bash --noprofile --norc -eo pipefail`, the step's env given by the test (GitHub would evaluate
the `${{ }}` expressions), GITHUB_OUTPUT a file whose `name=value` lines come back as a dict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def workflow(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def job_step(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in job["steps"] if s.get("id") == step_id)
    return found


def run_step(
    step: dict[str, Any], env: dict[str, str], cwd: Path, path: str = ""
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    output = cwd / "github-output"
    output.write_text("")
    search = os.pathsep.join(p for p in (path, os.environ["PATH"]) if p)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env={"PATH": search, "HOME": str(cwd), **env, "GITHUB_OUTPUT": str(output)},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return done, outputs


def read_role(promote: Path, stack: str, variables: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """The `role` job of a service's <service>-promote.yml, for `stack`, with these repository
    variables (toJSON(vars)): its exit code, its output `arn` and what it printed."""
    role = job_step(workflow(promote)["jobs"]["role"], "role")
    done, outputs = run_step(role, {"STACK": stack, "VARIABLES": json.dumps(variables, indent=2)}, cwd)
    return done.returncode, outputs.get("arn", ""), done.stdout + done.stderr


def yq_reader(bin_dir: Path) -> str:
    """A folder holding a stand-in for mikefarah's yq as the steps use it to read: `yq -r '.a.b'
    file` (PyYAML underneath). For PATH; the steps never write with it."""
    bin_dir.mkdir()
    stub = bin_dir / "yq"
    stub.write_text(
        f"#!{sys.executable}\n"
        "import sys, yaml\n"
        "value = yaml.safe_load(open(sys.argv[3]))\n"
        "for key in sys.argv[2].strip('.').split('.'):\n"
        "    value = value[key]\n"
        "print(value)\n"
    )
    stub.chmod(0o755)
    return str(bin_dir)
