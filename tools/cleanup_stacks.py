"""Destroy ephemeral integration stacks left behind by crashed, timed-out or cancelled runs.

    python -m tools.cleanup_stacks [--older-than HOURS] [--stack it-x ...] [--dry-run] [--region R]

Needs the Pulumi CLI (logged in to the backend the tests used), AWS credentials, and, to clean the
test's own Kubernetes objects first, `kubectl` and the `aws` CLI. Only stacks named `it-*` of this
project are touched, each in its own region: its AWS provider's region in the state, else the
`aws:region` of its config (`--region`, default AWS_REGION, serves only a stack with neither).

Which stacks. A run's liveness comes from the run itself, never from the backend: between `up` and
`destroy` (the checks) a live run has no update in progress and a last update as recent as its
`up`, and Pulumi Cloud's `stack ls` lists every `it-*` stack the token can see, developers' runs
included. So each run tags its stack before `up` with `eks-platform:it-started` (UTC) and
`eks-platform:it-run` (whose run; both backends keep stack tags: pulumi/pulumi
`pkg/backend/diy/stack_tags.go` at v3.259.0 persists them for a self-managed one; a stack whose
tags cannot be read counts as untagged), and a stack is stale only once that start is older than
MAX_RUN_HOURS (longer than any run), whatever `--older-than` says; a finished one's last update must
also be older than `--older-than`. (`pulumi stack ls --json` omits `lastUpdate` while an update
runs: pulumi/pulumi `pkg/cmd/pulumi/stack/stack_list.go` `formatStackSummariesJSON` at v3.259.0,
the newest tag in the mirror; the pinned 3.272.0 SDK's `list_stacks` reads the same fields.) A
stack without the tag counts only when finished and last updated more than MAX_RUN_HOURS ago.
`--stack it-x` cleans exactly that stack whatever its age: CI's post-run step names its own run's
stack (the file EKS_PLATFORM_IT_STACK_FILE the test writes), so it never touches another run.

Each picked stack gets, in order (one stack's failure never stops the others; exit 1 if any failed):
1. `pulumi cancel` when the backend reports an update in progress, or when the refresh hits the
   lock of a killed run ("409 ... Another update is currently in progress"; pulumi/pulumi#9100).
2. The test's own Kubernetes objects (NodePool, Deployments, ... labelled
   `eks-platform.io/integration-test`) are deleted and their NodeClaims awaited, when the cluster
   answers: Pulumi does not manage them, and a NodeClaim left behind stalls the EC2NodeClass delete.
3. Pending creates (a resource being created when the run died) are found in AWS by their kind
   and the stack's tags and names, those not in the state are deleted, and only then are the pending
   creates cleared. A pending create that cannot be resolved stops the stack (the state keeps it).
   (`--import-pending-creates` is not used: at v3.259.0 nothing in the engine turns the "importing"
   operation it writes into a resource, and the snapshot keeps only "creating" ones.)
4. `refresh`, then `destroy`, with PULUMI_K8S_DELETE_UNREACHABLE=true: from another runner the
   endpoint (open to the creating runner's /32 only) or the access entries (the creating role only)
   refuse us, and pulumi-kubernetes then drops the cluster's objects from the state instead of failing
   (pulumi/pulumi-kubernetes provider/pkg/provider/provider.go at v4.32.0, Configure/Read/Delete;
   the pinned 4.34.2 SDK documents the same `deleteUnreachable`). The refresh comes first because a Helm
   release's Delete refuses an unreachable cluster even so, while its Read drops it.
   A destroy that fails is retried once after deleting the stack's resources that are not in the
   state (what controllers left in the VPC: ENIs, security groups, load balancers, instances).
5. The leak check (tools/leak_check.py) before `stack rm`: whatever it finds is deleted and reported,
   then searched again; the stack is removed only when nothing is left, so the next run retries.
Pulumi's output is printed verbatim (no rich markup: it would swallow `[...]`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from tools.leak_check import TYPE_KINDS, Leak, error_lines, find_leaks, kinds_of
from tools.leak_delete import Deleted, delete_leaks
from tools.mocks import ROOT

STACK_PREFIX = "it-"
PROJECT = "eks-platform"
STARTED_TAG = "eks-platform:it-started"  # ISO 8601 UTC, set by tests/integration/conftest.py
RUN_TAG = "eks-platform:it-run"  # whose run: a GitHub Actions run or user@host (conftest.py)
# No run lasts longer: the weekly job stops at 180 min, and a local run (up ~25 min, checks ~30 min,
# destroy ~20 min) is far shorter. A stack younger than this may be a live run: never touched.
MAX_RUN_HOURS = 4.0
# Every Kubernetes object the integration tests create carries this label (any value).
IT_OBJECT_LABEL = "eks-platform.io/integration-test"
IT_NODE_POOL = "it-karpenter"
IT_OBJECT_KINDS = (
    "nodepools.karpenter.sh",
    "deployments.apps",
    "services",
    "horizontalpodautoscalers.autoscaling",
    "pods",
    "externalsecrets.external-secrets.io",
)
DELETE_UNREACHABLE = {"PULUMI_K8S_DELETE_UNREACHABLE": "true"}  # the provider compares with "true"


def aws_region(env: Mapping[str, str] | None = None) -> str | None:
    """The region boto3 and the AWS CLI use: AWS_REGION, else AWS_DEFAULT_REGION (tests and cleanup)."""
    env = os.environ if env is None else env
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


class Summary(Protocol):
    """What `LocalWorkspace.list_stacks()` returns per stack (pulumi.automation.StackSummary)."""

    name: str
    update_in_progress: bool | None
    last_update: dt.datetime | None


class StackOps(Protocol):
    """The part of `pulumi.automation.Stack` the cleanup uses."""

    def cancel(self) -> None: ...
    def export_stack(self) -> Any: ...
    def refresh(
        self,
        *,
        clear_pending_creates: bool | None = None,
        color: str | None = None,
        on_output: Callable[[str], Any] | None = None,
    ) -> Any: ...
    def destroy(self, *, color: str | None = None, on_output: Callable[[str], Any] | None = None) -> Any: ...
    def get_config(self, key: str) -> Any: ...  # a ConfigValue; CommandError when the key is unset


class Account(Protocol):
    """What the cleanup does outside Pulumi: the cluster's test objects, and AWS by the stack's tags."""

    def prepare(self, stack: str, kubeconfig: str | None) -> list[str]: ...
    def find(self, stack: str, kinds: Iterable[str] | None = None) -> list[Leak]: ...
    def delete(self, leaks: Iterable[Leak]) -> list[Deleted]: ...


def short_name(name: str) -> str:
    """`org/project/it-x` or `org/it-x` (Pulumi Cloud, another org) -> `it-x`."""
    return name.rsplit("/", 1)[-1]


def as_utc(moment: dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime. The Automation API parses the CLI's `lastUpdate` ("...Z", UTC) into
    a naive datetime (pulumi/automation/_stack.py `_DATETIME_FORMAT`): naive means UTC here, never
    local time, or a colleague's live run would look hours older on a non-UTC machine."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def in_progress(summary: Summary) -> bool:
    """An update runs (or the first one has written nothing yet): no `lastUpdate` to age it by."""
    return bool(summary.update_in_progress) or summary.last_update is None


def stale(
    summaries: Iterable[Summary],
    now: dt.datetime,
    older_than_hours: float,
    *,
    started: Mapping[str, dt.datetime | None] | None = None,
) -> list[Summary]:
    """The `it-*` stacks to clean, by name. A run's liveness comes from the run itself: a stack is
    stale only once its run started (its `eks-platform:it-started` tag, by name in `started`) more
    than MAX_RUN_HOURS ago, whatever `older_than_hours` says. A live run between `up` and `destroy`
    has no update in progress and a last update as recent as its `up`, and `stack ls` lists every
    developer's `it-*` stacks the token can see: neither its last update nor its lock tells it from a
    dead one. Beyond that, a finished stack's last update must be older than `older_than_hours`; a
    stack without the tag (made before the tag, or killed before it was set) counts only when it
    is finished and its last update is itself older than MAX_RUN_HOURS."""
    now = now.astimezone(dt.UTC)
    cutoff, dead = now - dt.timedelta(hours=older_than_hours), now - dt.timedelta(hours=MAX_RUN_HOURS)
    picked = []
    for summary in summaries:
        if not short_name(summary.name).startswith(STACK_PREFIX):
            continue
        began, updated = as_utc((started or {}).get(summary.name)), as_utc(summary.last_update)
        if updated is None or summary.update_in_progress:  # in progress: never cancel a young run
            old = began is not None and began <= dead
        else:
            old = updated <= cutoff and (began or updated) <= dead
        if old:
            picked.append(summary)
    return sorted(picked, key=lambda s: s.name)


def named(summaries: Iterable[Summary], names: Iterable[str]) -> tuple[list[Summary], list[str]]:
    """The stacks `--stack` names (a run's own stack, cleaned whatever its age), and the names that
    match no `it-*` stack."""
    wanted = {short_name(n) for n in names}
    picked = [
        s for s in summaries if short_name(s.name) in wanted and short_name(s.name).startswith(STACK_PREFIX)
    ]
    found = {short_name(s.name) for s in picked}
    return sorted(picked, key=lambda s: s.name), sorted(wanted - found)


def run_tags(env: Mapping[str, str], now: dt.datetime, host: str, user: str) -> dict[str, str]:
    """The tags a run sets on its stack before `up`: when it started (what `stale` ages it by) and
    whose run it is (a GitHub Actions run, or a developer's machine), so that a reader of
    `make it-cleanup --dry-run` sees whose stack it keeps."""
    if env.get("GITHUB_RUN_ID"):
        repo, run = env.get("GITHUB_REPOSITORY", "?"), env["GITHUB_RUN_ID"]
        owner = f"github-actions {repo} run {run}"
    else:
        owner = f"{user}@{host}"
    return {STARTED_TAG: now.astimezone(dt.UTC).isoformat(timespec="seconds"), RUN_TAG: owner}


def parse_started(value: str | None) -> dt.datetime | None:
    try:
        return as_utc(dt.datetime.fromisoformat(value)) if value else None
    except ValueError:
        return None


####################################################################################################
# The state: pending creates, known ids, outputs


@dataclass(frozen=True)
class PendingCreate:
    urn: str
    type: str


def _deployment(state: Any) -> Mapping[str, Any]:
    """The `deployment` of `Stack.export_stack()` (a pulumi.automation.Deployment) or of its JSON."""
    body = getattr(state, "deployment", state)
    return body.get("deployment", body) if isinstance(body, Mapping) else {}


def pending_creates(state: Any) -> list[PendingCreate]:
    ops = _deployment(state).get("pending_operations") or []
    return [
        PendingCreate(op["resource"]["urn"], op["resource"]["type"])
        for op in ops
        if op.get("type") == "creating"
    ]


def known_ids(state: Any) -> set[str]:
    return {str(r["id"]) for r in _deployment(state).get("resources") or [] if r.get("id")}


def stack_output(state: Any, key: str) -> Any:
    """An output of the stack resource as `export --show-secrets` writes it (a secret has `plaintext`)."""
    for resource in _deployment(state).get("resources") or []:
        if resource.get("type") == "pulumi:pulumi:Stack":
            value = (resource.get("outputs") or {}).get(key)
            if isinstance(value, Mapping) and "plaintext" in value:
                return json.loads(value["plaintext"])
            return value
    return None


def pending_kinds(pending: Iterable[PendingCreate]) -> set[str]:
    """The kinds a pending create of each type would have left in AWS (a part goes with its parent)."""
    return {kind for p in pending if isinstance(kinds := TYPE_KINDS.get(p.type), tuple) for kind in kinds}


def resolve_pending(
    pending: Sequence[PendingCreate], found: Iterable[Leak], ids: set[str]
) -> tuple[list[Leak], list[str]]:
    """What to delete before clearing `pending`: the stack's resources of their kinds that the state
    does not know. And the pending creates no search covers (an unknown AWS type): never cleared."""
    _, unknown = kinds_of(p.type for p in pending)
    wanted = pending_kinds(pending)
    delete = sorted(leak for leak in set(found) if leak.kind in wanted and leak.id not in ids)
    return delete, [
        f"pending create {p.urn} ({p.type}): no search for this type" for p in pending if p.type in unknown
    ]


def orphans(found: Iterable[Leak], ids: set[str]) -> list[Leak]:
    """The stack's resources the state does not know (what controllers or a killed run left)."""
    return sorted(leak for leak in set(found) if leak.kind != "unchecked" and leak.id not in ids)


####################################################################################################
# One stack


@dataclass(frozen=True)
class Outcome:
    stack: str
    steps: tuple[str, ...]
    error: tuple[str, ...] = ()  # what blocked the step that failed
    leaks: tuple[Leak, ...] = ()  # what is still there after the deletions
    report: tuple[str, ...] = ()  # what was deleted (or could not be), and why

    @property
    def ok(self) -> bool:
        return not self.error and not self.leaks


def _locked(err: Exception) -> bool:
    from pulumi.automation.errors import ConcurrentUpdateError

    return isinstance(err, ConcurrentUpdateError)


def _said(deleted: list[Deleted], why: str) -> list[str]:
    return [f"{d} ({why})" for d in deleted]


def clean_stack(
    summary: Summary,
    stack: StackOps,
    remove: Callable[[str], None],
    account: Account,
    out: Callable[[str], None],
) -> Outcome:
    """Cancel (if locked), clear the test's objects, resolve pending creates, refresh, destroy, check
    for leaks (deleting them), and remove one stack; never raises."""
    name = short_name(summary.name)
    steps: list[str] = []
    report: list[str] = []
    try:
        if summary.update_in_progress:
            steps.append("cancel")
            stack.cancel()
        state = stack.export_stack()
        steps.append("kubernetes")
        report += account.prepare(name, stack_output(state, "kubeconfig"))
        pending = pending_creates(state)
        if pending:
            steps.append("pending creates")
            found = account.find(name, pending_kinds(pending))
            delete, unresolved = resolve_pending(pending, found, known_ids(state))
            done = account.delete(delete)
            report += _said(done, "created by the killed run, unknown to the state")
            unresolved += [str(d) for d in done if d.error]
            if unresolved:
                return Outcome(summary.name, tuple(steps), tuple(unresolved), (), tuple(report))
        steps.append("refresh")
        try:
            stack.refresh(clear_pending_creates=bool(pending), color="never", on_output=out)
        except Exception as err:
            if not _locked(err) or "cancel" in steps:
                raise
            steps += ["cancel", "refresh"]
            stack.cancel()
            stack.refresh(clear_pending_creates=bool(pending), color="never", on_output=out)
        steps.append("destroy")
        try:
            stack.destroy(color="never", on_output=out)
        except Exception as err:
            left = orphans(account.find(name), known_ids(stack.export_stack()))
            if not left:
                raise
            report += _said(
                account.delete(left), f"blocked the destroy: {'; '.join(error_lines(str(err)))[:300]}"
            )
            steps.append("destroy")
            stack.destroy(color="never", on_output=out)
        steps.append("leak check")
        found = account.find(name)
        if found:
            report += _said(account.delete(found), "left after the destroy")
            found = account.find(name)
        if found:
            return Outcome(summary.name, tuple(steps), (), tuple(found), tuple(report))
        steps.append("remove")
        remove(summary.name)
    except Exception as err:
        text = str(err)
        blocked = tuple(error_lines(text)) or (text.strip()[-500:],)
        return Outcome(summary.name, tuple(steps), blocked, (), tuple(report))
    return Outcome(summary.name, tuple(steps), (), (), tuple(report))


def state_region(state: Any) -> str | None:
    """The region of the stack's AWS provider as its state records it (`pulumi:providers:aws`
    resources keep their `region` input). The state travels with the backend; the stack's config
    file (`Pulumi.<stack>.yaml`, where the test's `set_all_config` wrote `aws:region`) exists only
    in the checkout that created the stack (pulumi/pulumi pkg/cmd/pulumi/stack/io.go loads remote
    config only for remote stacks)."""
    for resource in _deployment(state).get("resources") or []:
        if resource.get("type") == "pulumi:providers:aws":
            region = (resource.get("inputs") or {}).get("region") or (resource.get("outputs") or {}).get(
                "region"
            )
            if isinstance(region, str) and region:
                return region
    return None


def stack_region(stack: StackOps, fallback: str | None) -> str | None:
    """The region the stack's resources are in: its AWS provider's, from the state (any machine
    sees it), else its own `aws:region` config (every `it-*` stack sets it, tests/integration/
    conftest.py it_config; only the creating checkout has the file), else `fallback` (--region /
    AWS_REGION). A developer's run in another region than this machine's must be searched and
    deleted where it is."""
    try:
        region = state_region(stack.export_stack())
    except Exception:  # the SDK's CommandError: no state to read
        region = None
    if region:
        return region
    try:
        value = stack.get_config("aws:region")
    except Exception:  # the SDK's CommandError: the key is not set
        return fallback
    return str(getattr(value, "value", value) or "") or fallback


def clean_all(
    summaries: Sequence[Summary],
    select: Callable[[str], StackOps],
    remove: Callable[[str], None],
    accounts: Callable[[str], Account],
    out: Callable[[str], None],
    *,
    fallback_region: str | None = None,
) -> list[Outcome]:
    """Clean every stack in turn, in its own region (`accounts`: region -> the account there); a
    failure (even in `select`) stays its own."""
    outcomes = []
    for summary in summaries:
        try:
            stack = select(summary.name)
        except Exception as err:  # selecting the stack failed: nothing ran
            outcomes.append(Outcome(summary.name, (), (str(err).strip()[-500:],)))
            continue
        region = stack_region(stack, fallback_region)
        if region is None:
            why = (
                "no AWS provider region in the state, no aws:region in the stack's config and no "
                "--region / AWS_REGION: where would it look?"
            )
            outcomes.append(Outcome(summary.name, (), (why,)))
            continue
        outcome = clean_stack(summary, stack, remove, accounts(region), out)
        outcomes.append(dataclasses.replace(outcome, report=(f"region {region}", *outcome.report)))
    return outcomes


####################################################################################################
# The cluster: the test's own objects, when it answers


def kube_cleanup_commands(kubeconfig: Path) -> list[list[str]]:
    """kubectl commands, in order: is the cluster there, delete the test's objects, await their
    NodeClaims (Karpenter labels each with its NodePool: karpenter-provider-aws
    website/content/en/docs/concepts/nodeclaims.md)."""
    kubectl = ["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=30s"]
    return [
        [*kubectl, "get", "--raw", "/readyz"],
        [*kubectl, "delete", ",".join(IT_OBJECT_KINDS), "--all-namespaces", "-l", IT_OBJECT_LABEL,
         "--ignore-not-found", "--wait=true", "--timeout=600s"],
        [*kubectl, "wait", "--for=delete", "nodeclaims.karpenter.sh", "-l",
         f"karpenter.sh/nodepool={IT_NODE_POOL}", "--timeout=600s"],
    ]  # fmt: skip


def run_kube_cleanup(
    kubeconfig: str | None, run: Callable[[list[str]], subprocess.CompletedProcess[str]]
) -> list[str]:
    """Delete the test's objects when the cluster answers; say what happened either way."""
    if not kubeconfig:
        return ["no kubeconfig in the state: no cluster to clean the test's objects from"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config"
        path.write_text(kubeconfig if isinstance(kubeconfig, str) else json.dumps(kubeconfig))
        probe, delete, wait = kube_cleanup_commands(path)
        answer = run(probe)
        if answer.returncode != 0:
            why = (answer.stderr or answer.stdout).strip()[-200:]
            return [f"cluster unreachable from here ({why}): its objects leave the state unreached"]
        lines = []
        for cmd in (delete, wait):
            done = run(cmd)
            text = (done.stdout + done.stderr).strip()
            # `kubectl wait --for=delete` with nothing left to wait for reports "no matching resources".
            if done.returncode != 0 and "no matching resources" not in text:
                lines.append(f"`{' '.join(cmd[4:6])}` failed: {text[-300:]}")
            elif text:
                lines.append(text[-300:])
        return lines


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)  # noqa: S603 (fixed argv)


@dataclass
class AwsAccount:
    session: Any
    project: str = PROJECT

    def prepare(self, stack: str, kubeconfig: str | None) -> list[str]:
        return run_kube_cleanup(kubeconfig, _run)

    def find(self, stack: str, kinds: Iterable[str] | None = None) -> list[Leak]:
        return find_leaks(self.session, self.project, stack, kinds)

    def delete(self, leaks: Iterable[Leak]) -> list[Deleted]:
        return delete_leaks(self.session, leaks)


def workspace_options() -> Any:
    """The workspace of every cleanup step: this checkout, and Kubernetes objects of a cluster we
    cannot reach dropped from the state (the cluster is being deleted with them)."""
    from pulumi import automation as auto

    return auto.LocalWorkspaceOptions(work_dir=str(ROOT), env_vars=DELETE_UNREACHABLE)


def plain_console(**kwargs: Any) -> Console:
    """A console that prints text as given: Pulumi's `[...]` is output, not rich markup."""
    return Console(markup=False, highlight=False, soft_wrap=True, **kwargs)


def missing_tools(which: Callable[[str], str | None] = shutil.which) -> list[str]:
    return [
        f"the `{tool}` CLI is not installed ({why})"
        for tool, why in (
            ("pulumi", "it runs every step"),
            ("kubectl", "it runs against the stack's cluster"),
            ("aws", "the stack's kubeconfig runs `aws eks get-token`"),
        )
        if which(tool) is None
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make it-cleanup", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--older-than",
        type=float,
        default=6.0,
        help=f"hours since a finished stack's last update (UTC); whatever it says, a stack whose run "
        f"started less than {MAX_RUN_HOURS:g} h ago is never touched",
    )
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        help="clean exactly this it-* stack whatever its age (a run's own stack, after the run; repeatable)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the stacks it would clean, touch nothing"
    )
    parser.add_argument(
        "--region",
        default=aws_region(),
        help="only for a stack without aws:region in its config (default: AWS_REGION or AWS_DEFAULT_REGION)",
    )
    args = parser.parse_args(argv)
    console = plain_console()
    if missing := missing_tools():
        console.print("Cannot clean up:\n  - " + "\n  - ".join(missing))
        return 2
    import boto3  # type: ignore[import-untyped]
    from pulumi import automation as auto

    options = workspace_options()
    workspace = auto.LocalWorkspace(work_dir=str(ROOT), env_vars=DELETE_UNREACHABLE)
    summaries = [s for s in workspace.list_stacks() if short_name(s.name).startswith(STACK_PREFIX)]
    tags: dict[str, Mapping[str, str]] = {}
    for summary in summaries:
        try:
            tags[summary.name] = workspace.list_tags(summary.name)
        except auto.CommandError:
            tags[summary.name] = {}
    if args.stack:
        picked, unknown = named(summaries, args.stack)
        if unknown:
            console.print(f"no it-* stack named {', '.join(unknown)}")
    else:
        started = {name: parse_started(t.get(STARTED_TAG)) for name, t in tags.items()}
        picked, unknown = stale(summaries, dt.datetime.now(dt.UTC), args.older_than, started=started), []
    for summary in summaries:
        verdict = "clean" if summary in picked else "keep"
        age = "update in progress" if in_progress(summary) else f"last update {as_utc(summary.last_update)}"
        run = tags[summary.name]
        began, owner = run.get(STARTED_TAG, "-"), run.get(RUN_TAG, "-")
        console.print(f"{verdict} {summary.name}: {age}, started {began}, run {owner}")
    if not picked or args.dry_run:
        return 1 if unknown else 0
    outcomes = clean_all(
        picked,
        lambda name: auto.select_stack(stack_name=name, work_dir=str(ROOT), opts=options),
        workspace.remove_stack,
        lambda region: AwsAccount(boto3.Session(region_name=region)),
        lambda line: console.print(line, end=""),
        fallback_region=args.region,
    )
    for outcome in outcomes:
        status = "cleaned" if outcome.ok else "NOT clean"
        console.print(f"{outcome.stack}: {status} ({' -> '.join(outcome.steps) or 'nothing ran'})")
        for line in outcome.report:
            console.print(f"  {line}")
        for line in outcome.error:
            console.print(f"  blocked: {line}")
        for leak in outcome.leaks:
            console.print(f"  left behind: {leak}")
    return 0 if all(o.ok for o in outcomes) and not unknown else 1


if __name__ == "__main__":
    sys.exit(main())
