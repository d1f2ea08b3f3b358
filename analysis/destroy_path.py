"""The destroy path of a stack whose API endpoint no workstation reaches (prod), step by step.

    doc, findings = destroy_path(records, bootstrap_records, private=True)
    urns = unprotect_before_bootstrap(records, bootstrap_records)   # what `make destroy-prepare` lifts

A workstation cannot delete Kubernetes objects behind a private endpoint, so prod is destroyed in
three steps (docs/deploy-path.md, "Destroy"):

1. `make destroy-prepare STACK=<stack>` lifts `protect`, in the stack's state, from exactly the
   resources the bootstrap run drops that may go: Kubernetes objects (the point of the run) and
   retained resources (a delete of a `retain_on_delete` resource only removes it from the state).
2. The bootstrap deployment (`deployments.bootstrap: true` committed to the deploy branch, run on
   the agents) drops every resource the bootstrap program does not declare. The engine refuses to
   delete a protected resource (pulumi/pulumi pkg/resource/deploy/step.go, deleteProtectedError),
   so a dropped resource that is still protected fails the run: `destroy-path-protected-drop`,
   mandatory. Step 1 does not lift protection from a dropped resource that is neither a Kubernetes
   object nor retained: the run would really delete it, so that needs a person's decision first.
3. `make destroy` from a workstation deletes what is left. A Kubernetes object left after step 2
   needs the private endpoint: `destroy-path-needs-kubernetes`, mandatory.

A stack whose endpoint a workstation reaches (dev) is destroyed in one `make destroy`: no finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from model.findings import Finding
from model.records import Registration
from policy.model import Level

STEP_PREPARE = "step 1 (make destroy-prepare)"
STEP_BOOTSTRAP = "step 2 (the bootstrap deployment on the agents)"
STEP_DESTROY = "step 3 (make destroy from a workstation)"


def kubernetes(r: Registration) -> bool:
    return r.type.startswith(("kubernetes:", "pulumi:providers:kubernetes"))


def dropped(records: Sequence[Registration], bootstrap: Sequence[Registration]) -> list[Registration]:
    """The resources of the full program that the bootstrap program does not declare."""
    kept = {r.urn for r in bootstrap}
    return [r for r in records if r.urn not in kept]


def unprotect_before_bootstrap(
    records: Sequence[Registration], bootstrap: Sequence[Registration]
) -> list[str]:
    """Step 1: the protected resources the bootstrap run drops and may drop (see the docstring)."""
    return [r.urn for r in dropped(records, bootstrap) if r.protect and (kubernetes(r) or r.retain_on_delete)]


def destroy_path(
    records: Sequence[Registration],
    bootstrap: Sequence[Registration],
    *,
    private: bool,
    prepared: Sequence[str] | None = None,
) -> tuple[dict[str, Any], list[Finding]]:
    """The plan document's `rehearsal.destroyPath` and its findings.

    `prepared`: the URNs step 1 unprotects (what `make destroy-prepare` computes when None).
    """
    if not private:
        return {"steps": ["make destroy (the endpoint is reachable)"]}, []
    gone = dropped(records, bootstrap)
    lifted = set(unprotect_before_bootstrap(records, bootstrap) if prepared is None else prepared)
    findings = []
    for r in gone:
        if r.protect and r.urn not in lifted:
            why = (
                "step 1 lifts protection only from Kubernetes objects and retained resources: this "
                "one would really be deleted, so decide first (retain it, or unprotect it by hand)"
                if not (kubernetes(r) or r.retain_on_delete)
                else "step 1 does not unprotect it"
            )
            findings.append(
                Finding(
                    "destroy-path-protected-drop",
                    Level.MANDATORY,
                    r.urn,
                    f"{STEP_BOOTSTRAP} drops {r.type} {r.name}, which is protected: the engine refuses "
                    f"to delete a protected resource and the run fails; {why}.",
                )
            )
    for r in bootstrap:
        if kubernetes(r):
            findings.append(
                Finding(
                    "destroy-path-needs-kubernetes",
                    Level.MANDATORY,
                    r.urn,
                    f"{STEP_DESTROY} must delete {r.type} {r.name}, which the bootstrap run keeps: a "
                    "workstation cannot reach the private endpoint.",
                )
            )
    document = {
        "steps": [STEP_PREPARE, STEP_BOOTSTRAP, STEP_DESTROY],
        "unprotect": sorted(lifted),
        "bootstrapDrops": sorted(r.urn for r in gone),
        "destroyDeletes": sorted(r.urn for r in bootstrap),
    }
    return document, sorted(findings, key=lambda f: (f.rule, f.urn or ""))
