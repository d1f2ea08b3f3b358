"""`make new-stack NAME=<name> FROM=<stack>`: a new stack, a copy of an existing one, ready to plan.

    python -m tools.new_stack staging --from dev

The steps of docs/adding-a-stack.md:
- `Pulumi.<name>.yaml`: a copy of `Pulumi.<from>.yaml` (a stack file that exists already, as step 1
  of the guide leaves it, is kept as it is); an explicit `delivery.gitops.path` or
  `tags.environment` naming the source stack names the new one;
- platform/gitops/<name>/: each Application of the source stack's folder, with its environment label
  and values file changed to the new stack;
- identity/Pulumi.<name>.yaml: the stack's deploy identity (it sets nothing: stacks/identity.py reads
  the platform's stack file), which an admin applies before the stack's first `up`;
- services/<service>/deploy/<name>.yaml for each service: the source stack's values, pulling from the
  new stack's own registry (`<project>-<name>/<service>`) in the documentation account unless the
  new stack's file (one that existed) names the source's registry account, tag reset to the
  placeholder of a registry that holds no image yet, with the comment of who sets it there;
- .github/workflows/<service>-promote.yml for each service: the new stack among the choices of its
  `stack` input, so that the service's promotion copies dev's image into the new stack's registry
  and bumps deploy/<name>.yaml; the repository variables it reads are printed;
- the generated docs regenerated; the documentation placeholders listed.

A bad or reserved name, a name too long for the stack's IAM role names, a stack that exists or a
source that does not is refused (exit 2) and nothing is written.
"""

from __future__ import annotations

import gc

if __name__ == "__main__":  # the command itself: no cyclic GC from its first import (tools/process.py)
    gc.disable()

import argparse
import re
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from analysis.appliers import IDENTITY_FIRST
from components.deploy_policy import policy_sizes, stack_scope
from components.deploy_roles import kept_off
from components.iam import ROLE_NAME_MAX
from components.identity import AwsIdentity
from stacks import placeholders
from stacks.data import deploy_role_data
from stacks.delivery import GITOPS_TREE, DeploymentsConfig, values_file, values_placeholders
from stacks.sections import ClusterConfig
from tools.cleanup_stacks import STACK_PREFIX
from tools.mocks import ROOT, project_name, run_stack, stack_config, stack_names
from tools.new_service import (
    PLACEHOLDER_ACCOUNT,
    ZERO_TAG,
    check_role_variables,
    promotion_targets,
    role_variable,
    stack_options,
    tag_comment,
)
from tools.process import exit_now
from tools.scaffold import (
    Changes,
    RefusedError,
    check_label,
    dump,
    placeholder_lines,
    regenerate_docs,
    round_trip,
    run,
)

ROLE = "aws:iam/role:Role"
_ARN_ACCOUNT = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):", re.ASCII)
_REPOSITORY_LINE = re.compile(
    r"^(?P<key>\s*repository:\s*[\"']?)(?P<account>\d{12})(?P<rest>\.dkr\.ecr\.)", re.M | re.ASCII
)
_TAG_LINE = re.compile(r"^\s+tag:")
# The `options:` items of a promote workflow's `stack` choice (tools/templates/service/promote.yml.tmpl).
_STACK_OPTIONS = re.compile(
    r"^(?P<head>(?P<indent> +)stack:\n(?:(?P=indent) {2}\S.*\n)*?(?P=indent) {2}options:\n)"
    r"(?P<items>(?:(?P=indent) {4}- .*\n)+)",
    re.M,
)
IDENTITY_DIR = "identity"
WORKFLOWS = ".github/workflows"


def first_up(stack: str, private: bool | None, organization: str = "<org>") -> str:
    """How a new stack is created in Pulumi and deployed the first time: what the command prints
    last and docs/adding-a-stack.md step 4 quotes (tests/unit/test_new_commands.py compares them).
    `private`: the stack's API endpoint is private (then the first `up` is `make bootstrap`);
    None: both cases, for the guide. `organization`: the stack's `deployments.organization`; a stack
    name without it lands in the CLI's default organization, where the identity project's
    Deployments settings (which name `<organization>/<project>/<stack>`) would not find it. The
    platform's roles need the identity stack's deploy role and
    permissions boundary `<prefix>-boundary` (stacks/phase_base.py), so it comes first: `make plan`
    says so for every resource ("first up: <IDENTITY_FIRST>", analysis/appliers.py)."""
    up = f"`make up STACK={stack}` (from inside `cluster.publicAccessCidrs`)"
    bootstrap = f"`make bootstrap STACK={stack}` (docs/deploy-path.md), then a deployment on its agents"
    first = {
        True: bootstrap,
        False: up,
        None: f"with a public endpoint {up}; with a private one (`cluster.endpointPublicAccess: false`, "
        f"as in prod) {bootstrap}",
    }[private]
    return (
        f"`pulumi stack init {organization}/{stack}` and `pulumi -C {IDENTITY_DIR} stack init "
        f"{organization}/{stack}` (the organization of `deployments.organization`); set any secrets "
        f"(`pulumi config set --secret alertReceiverUrl https://...`); an admin runs "
        f"`make up PROJECT=identity STACK={stack}` first: the deploy role and the permissions boundary "
        f"that every role of the stack carries (`make plan STACK={stack}` gives each resource's first up "
        f'as "{IDENTITY_FIRST}"); then `make preview STACK={stack}` and the first `up`: {first}.'
    )


def check_name(name: str, source: str, root: Path) -> None:
    """Refuse a bad or reserved name, and a source stack that does not exist."""
    check_label("stack", name)
    if name.startswith(STACK_PREFIX):
        raise RefusedError(
            f"stack name {name!r} is reserved: `make it-cleanup` destroys stacks named {STACK_PREFIX}* "
            "(the integration tests' ephemeral stacks)"
        )
    stacks, project = stack_names(root), project_name()
    for other in stacks:
        if other != name and (name.startswith(f"{other}-") or other.startswith(f"{name}-")):
            short, long = sorted((name, other), key=len)
            raise RefusedError(
                f"stack name {name!r} is refused next to stack {other!r}: the platform scopes a stack's IAM "
                f"by name prefix (the deploy role and the boundary allow `<project>-<stack>-*` roles, "
                f"policies and secrets), so {short}'s `{project}-{short}-*` would cover {long}'s "
                f"`{project}-{long}-*` names and give {short} power over {long}. Choose a name that neither "
                f"extends nor is extended by another stack's name followed by `-`"
            )
    if not source:
        raise RefusedError(
            f"FROM is required: the stack to copy, `make new-stack NAME={name} FROM=<stack>`; "
            f"the stacks are {', '.join(stacks)}"
        )
    if source not in stacks:
        shown = ", ".join(stacks)
        raise RefusedError(f"no stack {source!r} to copy (FROM=<stack>): the stacks are {shown}")


def check_length(name: str, source: str, project: str) -> None:
    """Refuse a name that would make one of the stack's IAM role names longer than AWS allows."""
    prefix, new_prefix = f"{project}-{source}", f"{project}-{name}"
    roles = [str(r.get("name")) for r in run_stack(source).of_type(ROLE)]
    too_long = sorted(
        new_prefix + role[len(prefix) :]
        for role in roles
        if role.startswith(prefix) and len(role) <= ROLE_NAME_MAX < len(new_prefix + role[len(prefix) :])
    )
    if too_long:
        longest = max(too_long, key=len)
        raise RefusedError(
            f"stack name {name!r} is too long: the IAM role {longest} would have {len(longest)} "
            f"characters, IAM allows {ROLE_NAME_MAX}; use at most "
            f"{len(name) - (len(longest) - ROLE_NAME_MAX)} characters"
        )


def check_policy_sizes(name: str, source: str, project: str) -> None:
    """Refuse a name whose deploy identity would not fit IAM's policy size quotas in the source
    stack's region (each character of the name repeats in every ARN of the three policies)."""
    raw, _ = stack_config(source, project)
    region = raw.get("aws:region", "")
    partition = (
        "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    )
    prefix = f"{project}-{name}"
    # Any 12-digit account: the ARNs' lengths do not depend on which.
    ident = AwsIdentity(
        account_id="0" * 12, partition=partition, region=region, dns_suffix="", availability_zones=()
    )
    scope = stack_scope(ident, region=region, project=project, stack=name, prefix=prefix, cluster_name=prefix)
    sizes = policy_sizes(deploy_role_data(), scope, identity=kept_off(ident, prefix))
    over = [
        f"{what} would have {size:,} characters, IAM allows {limit:,}"
        for what, (size, limit) in sizes.items()
        if size > limit
    ]
    if over:
        raise RefusedError(
            f"stack name {name!r} is too long for its deploy identity in {region}: {'; '.join(over)}. "
            "Use a shorter name (docs/deploy-role.md, policy sizes)"
        )


def existing_files(name: str, root: Path) -> list[str]:
    found = [root / GITOPS_TREE / name, *sorted(root.glob(values_file("*", name)))]
    return [p.relative_to(root).as_posix() for p in found if p.exists()]


def _renamed(text: str, source: str, name: str, project: str) -> str:
    """A source-stack file's text with its references to the source stack moved to the new one."""
    for old, new in (
        (f"{GITOPS_TREE}/{source}", f"{GITOPS_TREE}/{name}"),
        (f"/deploy/{source}.yaml", f"/deploy/{name}.yaml"),
        (f"Pulumi.{source}.yaml", f"Pulumi.{name}.yaml"),
        (f"eks-platform.io/environment: {source}\n", f"eks-platform.io/environment: {name}\n"),
        (f"{project}-{source}/", f"{project}-{name}/"),
    ):
        text = text.replace(old, new)
    return re.sub(rf"^(# [a-z0-9-]+ in ){re.escape(source)}:", rf"\g<1>{name}:", text, flags=re.M)


def copied_secrets(source: str, root: Path = ROOT) -> list[str]:
    """The source stack's `secure:` keys, which the copy leaves out: Pulumi encrypts a secret for
    one stack (pulumi/pulumi pkg/secrets/service/manager.go decrypts with the stack's identity),
    so the new stack could not read the source's ciphertext; each is set again for it."""
    config = pyyaml.safe_load((root / f"Pulumi.{source}.yaml").read_text()).get("config") or {}
    return sorted(k for k, v in config.items() if isinstance(v, dict) and set(v) == {"secure"})


def deploy_branch(config: dict[str, Any], project: str) -> str | None:
    """The branch whose pushes deploy a stack (deployments.branch), or None when the stack's
    Deployments are off; absent keys take the config model's defaults."""
    deployments = config.get(f"{project}:deployments") or {}
    fields = DeploymentsConfig.model_fields
    if not deployments.get("enabled", fields["enabled"].default):
        return None
    return str(deployments.get("branch", fields["branch"].default))


def check_own_branch(name: str, project: str, root: Path) -> None:
    """A kept stack file (made by hand) must not deploy on another stack's branch: every merge meant
    for that stack would deploy this one too."""
    config = pyyaml.safe_load((root / f"Pulumi.{name}.yaml").read_text()).get("config") or {}
    branch = deploy_branch(config, project)
    for other in stack_names(root):
        if other == name or branch is None:
            continue
        theirs = pyyaml.safe_load((root / f"Pulumi.{other}.yaml").read_text()).get("config") or {}
        if deploy_branch(theirs, project) == branch:
            raise RefusedError(
                f"Pulumi.{name}.yaml deploys on a push to branch {branch!r}, as Pulumi.{other}.yaml does: "
                f"set its own {project}:deployments.branch (e.g. {name!r}; docs/adding-a-stack.md, step 1)"
            )


def _stack_file(name: str, source: str, project: str, root: Path) -> str:
    yaml = round_trip()
    document = yaml.load((root / f"Pulumi.{source}.yaml").read_text())
    config = document["config"]
    for key in copied_secrets(source, root):
        del config[key]
    gitops = (config.get(f"{project}:delivery") or {}).get("gitops") or {}
    if gitops.get("path") == f"{GITOPS_TREE}/{source}":
        gitops["path"] = f"{GITOPS_TREE}/{name}"
    tags = config.get(f"{project}:tags") or {}
    if tags.get("environment") == source:
        tags["environment"] = name
    # Its own push-to-deploy branch, named after it: a copy of prod's `production` would deploy
    # the new stack on every merge meant for prod, and dev's `main` on every merge meant for dev.
    deployments = config.get(f"{project}:deployments") or {}
    if "branch" in deployments:
        deployments["branch"] = name
    header = (
        f"# {name}: a copy of Pulumi.{source}.yaml (`make new-stack NAME={name} FROM={source}`); the notes\n"
        f"# below are {source}'s. Change what should differ: docs/adding-a-stack.md, step 1.\n"
    )
    return header + dump(yaml, document)


def _check(path: str, text: str, check: bool) -> None:
    if not check:
        raise RefusedError(
            f"{path}: could not be adapted to the new stack; copy it by hand (docs/adding-a-stack.md)"
        )
    pyyaml.safe_load(text)


def _application(name: str, source: str, project: str, path: Path) -> str:
    text = _renamed(path.read_text(), source, name, project)
    app: Any = pyyaml.safe_load(text)
    labels = (app.get("metadata") or {}).get("labels") or {}
    files = ((app.get("spec") or {}).get("source") or {}).get("helm", {}).get("valueFiles") or []
    ok = labels.get("eks-platform.io/environment") in (None, name) and all(
        not f.endswith(f"/deploy/{source}.yaml") for f in files
    )
    _check(path.name, text, ok)
    return text


def stack_accounts(path: Path) -> set[str]:
    """The AWS accounts a stack file names in its ARNs (e.g. cluster.adminRoleArns)."""
    return set(_ARN_ACCOUNT.findall(path.read_text())) if path.exists() else set()


def _registry_account(text: str, accounts: set[str]) -> str:
    """The new stack pulls from its own registry (docs/delivery-accounts.md: an account per stack):
    the source's registry account is kept only when the new stack's file names it; otherwise the
    documentation account, which the plan lists among the placeholders to replace."""

    def account(match: re.Match[str]) -> str:
        kept = match["account"] in accounts
        return f"{match['key']}{match['account'] if kept else PLACEHOLDER_ACCOUNT}{match['rest']}"

    return _REPOSITORY_LINE.sub(account, text)


def _tag_comment(text: str, name: str) -> str:
    """The comment above image.tag says who sets it in the new stack, not in the source."""
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if _TAG_LINE.match(line)), None)
    if at is None:
        return text
    start = at
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    comment = f"{indent}# {tag_comment(name)} The zeros are a placeholder until then."
    return "\n".join([*lines[:start], comment, *lines[at:]])


def _values(name: str, source: str, project: str, path: Path, accounts: set[str]) -> str:
    yaml = round_trip()
    values = yaml.load(path.read_text())
    if isinstance(values.get("image"), dict) and "tag" in values["image"]:
        values["image"]["tag"] = DoubleQuotedScalarString(ZERO_TAG)
    text = _renamed(dump(yaml, values), source, name, project)
    text = _tag_comment(_registry_account(text, accounts), name)
    service = path.parent.parent.name
    repository = str((pyyaml.safe_load(text).get("image") or {}).get("repository", ""))
    _check(path.name, text, repository.endswith(f"/{project}-{name}/{service}"))
    return text


def promote_workflow(service: str) -> str:
    return f"{WORKFLOWS}/{service}-promote.yml"


def _stack_input(text: str) -> dict[str, Any]:
    inputs = (pyyaml.safe_load(text).get(True) or {}).get("workflow_dispatch", {}).get("inputs") or {}
    found: dict[str, Any] = inputs.get("stack") or {}
    return found


def _with_target(text: str, name: str, stacks: list[str], path: str) -> str:
    """A service's promote workflow with `name` among the choices of its `stack` input."""
    if _stack_input(text).get("type") != "choice":
        return text  # a string input takes any stack: nothing to add
    match = _STACK_OPTIONS.search(text)
    if match is None:
        raise RefusedError(f"{path}: no `stack` choice found to add {name!r} to; add it by hand")
    items = stack_options([*stacks, name], match["indent"] + " " * 4)
    edited = text[: match.start("items")] + items + "\n" + text[match.end("items") :]
    _check(path, edited, _stack_input(edited).get("options") == promotion_targets([*stacks, name]))
    return edited


def plan_changes(name: str, source: str, root: Path = ROOT) -> Changes:
    project = project_name()
    check_name(name, source, root)
    found = existing_files(name, root)
    if found:
        raise RefusedError(
            f"stack {name!r} exists ({', '.join(found)}): `make new-stack` creates a new one only"
        )
    check_length(name, source, project)
    check_policy_sizes(name, source, project)
    changes = Changes(root)
    if not (root / f"Pulumi.{name}.yaml").exists():
        changes.create(f"Pulumi.{name}.yaml", _stack_file(name, source, project, root))
    else:
        check_own_branch(name, project, root)
    identity = root / IDENTITY_DIR / f"Pulumi.{source}.yaml"
    if identity.exists() and not (root / IDENTITY_DIR / f"Pulumi.{name}.yaml").exists():
        text = (
            identity.read_text()
            .replace(f'"{source}"', f'"{name}"')
            .replace(f"Pulumi.{source}.yaml", f"Pulumi.{name}.yaml")
        )
        changes.create(f"{IDENTITY_DIR}/Pulumi.{name}.yaml", text)
    for app in sorted((root / GITOPS_TREE / source).glob("*.yaml")):
        changes.create(f"{GITOPS_TREE}/{name}/{app.name}", _application(name, source, project, app))
    # A stack file written by this command is the source's copy: its accounts are the source's.
    kept = root / f"Pulumi.{name}.yaml"
    accounts = stack_accounts(kept) if kept.exists() else set()
    services = sorted(values.parent.parent.name for values in root.glob(values_file("*", source)))
    stacks = stack_names(root)
    check_role_variables(services, [*stacks, name])
    for service in services:
        values = root / values_file(service, source)
        changes.create(values_file(service, name), _values(name, source, project, values, accounts))
        workflow = root / promote_workflow(service)
        if workflow.exists():
            text = workflow.read_text()
            changes.edit(promote_workflow(service), _with_target(text, name, stacks, workflow.name))
    changes.refuse_overwrites(f"stack {name!r}")
    return changes


def new_stack(name: str, source: str, root: Path = ROOT) -> list[str]:
    changes = plan_changes(name, source, root)
    kept = root / f"Pulumi.{name}.yaml"
    lines = [f"Stack {name!r} made from {source!r}:"]
    secrets = [] if kept.exists() else copied_secrets(source, root)
    if kept.exists():
        lines.append(f"  kept    {kept.name} as it is (docs/adding-a-stack.md, step 1)")
    changes.write()
    lines += changes.summary()
    lines += regenerate_docs()
    project = project_name()
    raw, secret_keys = stack_config(name, project)
    found = [(f"{kept.name}: {k}", v, w) for k, v, w in placeholders.find(raw, frozenset(secret_keys))]
    services = sorted(p.parent.parent.name for p in root.glob(values_file("*", name)))
    found += values_placeholders(root, name, services)
    if found:
        lines += [f"{len(found)} documentation placeholder(s) to replace before a real deploy:"]
        lines += placeholder_lines(found)
    kept_config = pyyaml.safe_load(kept.read_text())["config"]
    public = (kept_config.get(f"{project}:cluster") or {}).get(
        "endpointPublicAccess", ClusterConfig.model_fields["endpoint_public_access"].default
    )
    organization = str((kept_config.get(f"{project}:deployments") or {}).get("organization") or "<org>")
    if secrets:
        lines += [
            f"Not copied: {source}'s secrets {', '.join(secrets)} (Pulumi encrypts each for one stack). "
            f"Set them for {name}: "
            + "; ".join(
                f"`pulumi config set --secret {k.split(':', 1)[1]} <value> --stack {name}`" for k in secrets
            )
        ]
    lines += [
        f"Next: `make plan STACK={name}`, `make test`, then commit. Then (docs/adding-a-stack.md, step 4): "
        + first_up(name, private=public is not True, organization=organization),
        *promotion(name, services, root),
    ]
    branch = (kept_config.get(f"{project}:deployments") or {}).get("branch")
    if branch:
        lines += [
            f"Push-to-deploy: a push to branch `{branch}` deploys {name} (deployments.branch); create "
            "the branch and protect it like the source stack's (docs/deploy-path.md)."
        ]
    return lines


def promotion(name: str, services: list[str], root: Path = ROOT) -> list[str]:
    """How the new stack receives images: the services' promote workflows, once their variables are set."""
    promoted = [s for s in services if (root / promote_workflow(s)).exists()]
    if not promoted:
        return []
    variables = ", ".join(role_variable(s, name) for s in promoted)
    example = promoted[0]
    return [
        f"Images: {name} receives dev's images by promotion, never a build. After the stack's first up, set "
        f"the repository variables {variables} (Settings > Secrets and variables > Actions > Variables) "
        f"to its output ciRoleArns.<service> (`pulumi stack output ciRoleArns --stack {name}`); then "
        f"Actions > {example}-promote > Run workflow, stack {name}, with the tag dev runs: it copies the "
        f"image into {name}'s registry and opens the pull request that sets image.tag in "
        f"services/{example}/deploy/{name}.yaml (docs/adding-a-stack.md).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make new-stack", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="", help="the stack's name: a DNS label")
    parser.add_argument("--from", dest="source", default="", help="the stack to copy (FROM=<stack>)")
    args = parser.parse_args(argv)
    return run("make new-stack", lambda: new_stack(args.name, args.source))


if __name__ == "__main__":
    exit_now(main())
