"""The resources `make destroy-prepare` unprotects before prod's bootstrap deployment, from the plan.

    python -m tools.destroy_path --stack prod      # one URN a line

Offline: runs the stack's program twice under the mock engine (as committed, and with
`deployments.bootstrap: true`), and prints the protected resources the bootstrap run drops that may
go (Kubernetes objects, retained resources: analysis/destroy_path.py). Exits 2, naming them, when
the bootstrap run would drop a protected resource that step must not unprotect (the plan's
`destroy-path-protected-drop`), and when the stack's endpoint is reachable (one `make destroy` does).
"""

from __future__ import annotations

import gc

if __name__ == "__main__":  # the command itself: no cyclic GC from its first import (tools/process.py)
    gc.disable()

import argparse
import json

from rich.console import Console

from analysis.destroy_path import destroy_path, unprotect_before_bootstrap
from model.records import PlanResult
from stacks.config import PROJECT
from tools.mocks import run_program, run_stack, stack_config
from tools.process import exit_now, gc_paused
from tools.stackcli import load_config


def run_bootstrap(stack: str) -> PlanResult:
    """The committed stack with `deployments.bootstrap: true`: what the bootstrap run declares."""
    raw, secret_keys = stack_config(stack)
    key = f"{PROJECT}:deployments"
    raw[key] = json.dumps(json.loads(raw.get(key, "{}")) | {"bootstrap": True})
    return run_program(stack, raw, secret_keys=secret_keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make destroy-prepare", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    cfg = load_config(args.stack, errors)
    if cfg is None:
        return 2
    if cfg.cluster.endpoint_public_access:
        errors.print(f"{args.stack}'s endpoint is reachable: `make destroy STACK={args.stack}` does it all.")
        return 2
    with gc_paused():  # two whole plans
        full = run_stack(args.stack)
        bootstrap = run_bootstrap(args.stack).records
    _, findings = destroy_path(full.records, bootstrap, private=True)
    if findings:
        for f in findings:
            errors.print(f"[red]{f.rule}[/] {f.urn}: {f.message}", highlight=False, soft_wrap=True)
        return 2
    for urn in unprotect_before_bootstrap(full.records, bootstrap):
        console.print(urn, highlight=False, soft_wrap=True)
    return 0


if __name__ == "__main__":
    exit_now(main())
