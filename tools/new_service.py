"""`make new-service NAME=<name>`: a new microservice in every stack, ready to plan and test.

    python -m tools.new_service orders

What platform/gitops/README.md "Adding a service" lists, for every stack (one per
`Pulumi.<stack>.yaml`):
- the `delivery.services` entry of each stack file (edited in place: comments and order kept), with
  the repository of `delivery.gitops.repoUrl` and the branch `main` that the CI role trusts;
- services/<name>/: a Dockerfile, .dockerignore, a standard-library app with the probes and metrics
  the chart uses, and its tests (tools/templates/service/);
- services/<name>/deploy/<stack>.yaml: only what differs from the chart's defaults (the stack's own
  registry; in a production stack, one replica per zone spread over the zones);
- platform/gitops/<stack>/<name>.yaml: the service's Application;
- .github/workflows/<name>.yml and <name>-promote.yml: build into dev, promote to any other stack
  (a choice of every stack but dev, prod by default);
- docs/architecture.md regenerated (it draws prod's plan, which now holds the service).

A bad name, a reserved one or one that exists is refused (exit 2) and nothing is written. A name
already listed in `delivery.services` whose files do not exist yet (the config error of a
hand-added entry) is completed: its entries are kept, the files are created.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from components.gitops import DEFAULT_PROJECT, PLATFORM_PROJECT, ROOT_APPLICATION, SERVICES_PROJECT
from components.iam import ROLE_NAME_MAX
from components.netpol import PLATFORM_NAMESPACES
from stacks import placeholders
from stacks.config import ConfigError
from stacks.delivery import GITOPS_TREE, GitOpsConfig, values_file, values_placeholders
from stacks.sections import NetworkConfig
from tools.mocks import ROOT, project_name, run_stack, stack_config, stack_names
from tools.scaffold import (
    Changes,
    RefusedError,
    check_label,
    dump,
    fill,
    placeholder_lines,
    regenerate_docs,
    round_trip,
    run,
)

TEMPLATES = Path(__file__).resolve().parent / "templates" / "service"
# The stack the service's workflow builds into (<service>.yml), the source of every promotion, and
# the promote workflow's default target (<service>-promote.yml); every other stack is a target.
BUILD_STACK, PROMOTE_STACK = "dev", "prod"
# The branch whose CI may push images: the workflows' push trigger and the CI role's trust.
BRANCH = "main"
# Names Kubernetes, Argo CD and the platform own, whatever a plan says: a service named so would share
# their namespace, or its Application (argocd/<name>) would replace theirs. Kubernetes' own namespaces;
# the AppProject `default` that Argo CD creates (argo-cd v3.4.4 server/server.go
# initializeDefaultProject); the platform's projects and root Application (components/gitops.py) and
# its namespaces (components/netpol.py). platform_names() adds what the plan creates.
RESERVED = frozenset(
    {
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        DEFAULT_PROJECT,
        ROOT_APPLICATION,
        SERVICES_PROJECT,
        PLATFORM_PROJECT,
        *(n.namespace for n in PLATFORM_NAMESPACES),
    }
)
_NAMESPACE = "kubernetes:core/v1:Namespace"
_RELEASE = "kubernetes:helm.sh/v3:Release"
_CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
_ARGO = "kubernetes:argoproj.io/"
ECR_NAME_MAX = 256
REPLACE_REPOSITORY = "# replace with your repository"
PLACEHOLDER_ACCOUNT = "123456789012"
ZERO_TAG = "0" * 40
# The guide's first commit of a new service (platform/gitops/README.md, "Commit it in two steps"):
# the platform side, as `git add` pathspecs ({name}: the service). Everything else the command
# writes is the second commit. `make test-day-two` runs `make test` on the first alone.
PLATFORM_SIDE = ("Pulumi.*.yaml", "services/{name}/deploy", "docs/architecture.md", ".github/CODEOWNERS")
CODEOWNERS = ".github/CODEOWNERS"
_GITHUB_URL = re.compile(r"https://github\.com/(?P<repo>[^/]+/[^/]+?)(?:\.git)?/?")
_REGISTRY = re.compile(r"(?P<host>\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com)/")
# Where the service's source and workflows go, relative to the checkout.
_SOURCE = {
    "Dockerfile.tmpl": "Dockerfile",
    "dockerignore.tmpl": ".dockerignore",
    "init.py.tmpl": "src/{package}/__init__.py",
    "main.py.tmpl": "src/{package}/__main__.py",
    "server.py.tmpl": "src/{package}/server.py",
    "test_app.py.tmpl": "tests/test_{package}_app.py",
}


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text()


@functools.cache
def platform_names(stack: str) -> frozenset[str]:
    """What the stack's plan names in the cluster besides its services: every namespace it creates or
    deploys into, and every Argo CD object (the root Application, the projects). Empty when the stack
    file does not load (a hand-added entry without files: this command completes it)."""
    try:
        plan = run_stack(stack)
    except ConfigError:
        return frozenset()
    names: set[str] = set()
    for record in plan.records:
        objects = list(record.get("objs") or []) if record.type == _CONFIG_GROUP else [record.inputs]
        for obj in objects:
            found = obj.get("metadata") if isinstance(obj, dict) else None
            metadata: dict[str, Any] = found if isinstance(found, dict) else {}
            if record.type == _NAMESPACE or obj.get("kind") == "Namespace" or record.type.startswith(_ARGO):
                names.add(str(metadata.get("name", "")))
            names.add(str(metadata.get("namespace", "")))
        if record.type == _RELEASE:
            names.add(str(record.get("namespace") or ""))
    services = {str(s.get("name")) for s in _stack_services(stack)}
    return frozenset(names - services - {""})


def _stack_services(stack: str) -> list[dict[str, Any]]:
    raw, _ = stack_config(stack)
    delivery = raw.get(f"{project_name()}:delivery")
    return list((json.loads(delivery) if delivery else {}).get("services") or [])


def check_name(name: str, root: Path, stacks: list[str], project: str) -> None:
    """Refuse a name that is not a DNS label, is reserved, or makes a name AWS would reject."""
    check_label("service", name)
    if name in RESERVED or name.startswith("kube-"):
        raise RefusedError(
            f"service name {name!r} is reserved: the names {', '.join(sorted(RESERVED))} and kube-* "
            "belong to Kubernetes, Argo CD and the platform (namespaces, AppProjects, the root Application)"
        )
    for stack in stacks:
        if name in platform_names(stack):
            raise RefusedError(
                f"service name {name!r} is reserved: stack {stack}'s plan uses it for the platform (a "
                "namespace or an Argo CD object); the service's namespace and Application would be shared"
            )
    if name.endswith("-promote"):
        raise RefusedError(
            f"service name {name!r} is reserved: <service>-promote.yml is a service's promotion workflow"
        )
    package = name.replace("-", "_")
    if importlib.util.find_spec(package) is not None or (root / package).exists():
        raise RefusedError(
            f"service name {name!r} is not allowed: its Python package {package!r} would shadow the "
            "module of that name (the standard library, an installed package or this repository's)"
        )
    for stack in sorted(stacks, key=len, reverse=True):  # the longest stack name makes the longest names
        role = f"{project}-{stack}-registry-{name}-ci"
        if len(role) > ROLE_NAME_MAX:
            raise RefusedError(
                f"service name {name!r} is too long: the CI role {role} of stack {stack} has "
                f"{len(role)} characters, IAM allows {ROLE_NAME_MAX}; use at most "
                f"{ROLE_NAME_MAX - len(role) + len(name)} characters"
            )
        repository = f"{project}-{stack}/{name}"
        if len(repository) > ECR_NAME_MAX:
            raise RefusedError(
                f"service name {name!r} is too long: the ECR repository {repository} has more than "
                f"{ECR_NAME_MAX} characters"
            )


def existing_files(name: str, root: Path) -> list[str]:
    found = [root / "services" / name, *sorted(root.glob(f"{GITOPS_TREE}/*/{name}.yaml"))]
    found += [root / ".github" / "workflows" / f"{name}{suffix}.yml" for suffix in ("", "-promote")]
    return [p.relative_to(root).as_posix() for p in found if p.exists()]


def _delivery(config: CommentedMap, project: str) -> CommentedMap:
    key = f"{project}:delivery"
    if config.get(key) is None:
        config[key] = CommentedMap()
    delivery: CommentedMap = config[key]
    return delivery


def _github_repository(delivery: Any) -> str:
    """The `owner/repo` whose CI may push: the GitOps repository (the Applications' repoURL)."""
    url = str((delivery.get("gitops") or {}).get("repoUrl", GitOpsConfig.model_fields["repo_url"].default))
    match = _GITHUB_URL.fullmatch(url)
    if match is None:
        raise RefusedError(
            f"delivery.gitops.repoUrl {url!r} is not a GitHub repository URL: the service's CI role "
            "trusts GitHub Actions of one repository; add the service by hand (platform/gitops/README.md)"
        )
    return match["repo"]


def _registry(root: Path, stack: str, region: str) -> str:
    """The stack's registry host, as the stack's other services pull from it (else a placeholder)."""
    for other in sorted(root.glob(values_file("*", stack))):
        match = _REGISTRY.search(other.read_text())
        if match:
            return match["host"]
    return f"{PLACEHOLDER_ACCOUNT}.dkr.ecr.{region}.amazonaws.com"


def tag_comment(stack: str) -> str:
    """Who sets a values file's image.tag in `stack` (the comment above it)."""
    if stack == BUILD_STACK:
        return "The build's pull request (.github/workflows/propose-tag.yml) sets this to the SHA it built."
    return "Set by the promotion's pull request (.github/workflows/propose-tag.yml): dev's image."


def promotion_targets(stacks: list[str]) -> list[str]:
    """The stacks a service's promote workflow offers: every stack but the one it promotes from."""
    return sorted(s for s in stacks if s != BUILD_STACK)


def stack_options(stacks: list[str], indent: str) -> str:
    """The `options:` items of the promote workflow's `stack` choice."""
    return "\n".join(f"{indent}- {stack}" for stack in promotion_targets(stacks))


def role_variable(service: str, stack: str) -> str:
    """The repository variable holding the service's CI role ARN in `stack` (its output ciRoleArns):
    what <service>-promote.yml reads. Variable names hold only letters, digits and `_`."""
    return f"{service}_{stack}_CI_ROLE_ARN".replace("-", "_").upper()


def check_role_variables(services: list[str], stacks: list[str]) -> None:
    """Refuse names that would make two services' CI role variables one (`a-b` in `c`, `a` in `b-c`)."""
    seen: dict[str, tuple[str, str]] = {}
    for service in services:
        for stack in stacks:
            variable = role_variable(service, stack)
            other = seen.setdefault(variable, (service, stack))
            if other != (service, stack):
                raise RefusedError(
                    f"service {service!r} in stack {stack!r} and service {other[0]!r} in stack {other[1]!r} "
                    f"would share the repository variable {variable} (the CI role ARN the workflows "
                    "read; '-' becomes '_'): choose another name"
                )


def _values(name: str, stack: str, project: str, registry: str, *, production: bool, zones: int) -> str:
    tag = tag_comment(stack)
    tokens = {"SERVICE": name, "STACK": stack, "PROJECT": project, "REGISTRY": registry}
    text = fill(_template("values.yaml.tmpl"), {**tokens, "TAG_COMMENT": tag})
    if production:
        text += fill(_template("values-production.yaml.tmpl"), {"ZONES": str(zones)})
    return text


def _in_stack(name: str, stack: str, project: str, changes: Changes) -> list[tuple[str, str, str]]:
    """The service's entry, values file and Application in one stack; the entry's placeholders."""
    yaml, root = round_trip(), changes.root
    stack_file = f"Pulumi.{stack}.yaml"
    document = yaml.load((root / stack_file).read_text())
    config = document["config"]
    delivery = _delivery(config, project)
    repository = _github_repository(delivery)
    if delivery.get("services") is None:
        delivery["services"] = CommentedSeq()
    entries = delivery["services"]
    if not any(entry.get("name") == name for entry in entries):
        entry = CommentedMap([("name", name), ("githubRepository", repository), ("branch", BRANCH)])
        # The repository's immutable OIDC subject, when the stack file's other services name it.
        subject = next(
            (
                e["githubSubject"]
                for e in entries
                if e.get("githubRepository") == repository and e.get("githubSubject")
            ),
            None,
        )
        if subject is not None:
            entry["githubSubject"] = subject
        if placeholders.why(repository):  # as the committed entries say it (Pulumi.dev.yaml)
            entry.yaml_add_eol_comment(REPLACE_REPOSITORY, "githubRepository")
        entries.append(entry)
        changes.edit(stack_file, dump(yaml, document))
    index = next(i for i, entry in enumerate(entries) if entry.get("name") == name)
    key = f"{stack_file}: {project}:delivery.services.{index}.githubRepository"
    found = [(key, value, why) for _, value, why in placeholders.find({key: repository})]

    raw, _ = stack_config(stack, project)
    zones = int((config.get(f"{project}:network") or {}).get("azCount", NetworkConfig().az_count))
    registry = _registry(root, stack, raw.get("aws:region", ""))
    production = raw.get(f"{project}:production") == "true"
    values = _values(name, stack, project, registry, production=production, zones=zones)
    changes.create(values_file(name, stack), values)
    tokens = {
        "SERVICE": name,
        "STACK": stack,
        "REPO_URL": f"https://github.com/{repository}.git",
        "REVISION": str((delivery.get("gitops") or {}).get("revision", "main")),
    }
    application = fill(_template("application.yaml.tmpl"), tokens)
    changes.create(f"{GITOPS_TREE}/{stack}/{name}.yaml", application)
    return found


def plan_changes(name: str, root: Path = ROOT) -> tuple[Changes, list[tuple[str, str, str]]]:
    """Every file to create or edit, and the stack files' new placeholders; raises RefusedError."""
    project, stacks = project_name(), stack_names(root)
    check_label("service", name)
    found = existing_files(name, root)
    if found:
        raise RefusedError(
            f"service {name!r} exists ({', '.join(found)}): `make new-service` creates a new one only; "
            "change an existing service by editing its files (platform/gitops/README.md)"
        )
    check_name(name, root, stacks, project)
    missing = [s for s in (BUILD_STACK, PROMOTE_STACK) if s not in stacks]
    if missing:
        raise RefusedError(
            f"no stack {' or '.join(missing)}: the service's workflows build into {BUILD_STACK} and "
            f"promote to {PROMOTE_STACK} (.github/workflows/<service>.yml, <service>-promote.yml)"
        )
    services = sorted(p.parent.parent.name for p in root.glob(values_file("*", BUILD_STACK)))
    check_role_variables([*services, name], stacks)
    changes = Changes(root)
    found_placeholders = [p for stack in stacks for p in _in_stack(name, stack, project, changes)]
    package = name.replace("-", "_")
    tokens = {
        "SERVICE": name,
        "PACKAGE": package,
        "VAR": package.upper(),
        "PROJECT": project,
        "REGION": stack_config(BUILD_STACK, project)[0].get("aws:region", ""),
        "BRANCH": BRANCH,
        "STACK_OPTIONS": stack_options(stacks, " " * 10),
    }
    for template, target in _SOURCE.items():
        changes.create(f"services/{name}/{target.format(package=package)}", fill(_template(template), tokens))
    for template, suffix in (("workflow.yml.tmpl", ""), ("promote.yml.tmpl", "-promote")):
        changes.create(f".github/workflows/{name}{suffix}.yml", fill(_template(template), tokens))
    if (root / CODEOWNERS).is_file():
        delivery = json.loads(stack_config(BUILD_STACK, project)[0].get(f"{project}:delivery", "{}"))
        owner = _github_repository(delivery).split("/")[0]
        changes.edit(CODEOWNERS, (root / CODEOWNERS).read_text() + codeowners(name, owner))
    changes.refuse_overwrites(f"service {name!r}")
    return changes, found_placeholders


def codeowners(name: str, owner: str) -> str:
    """The service's lines of .github/CODEOWNERS: its team owns its code, its values files and the
    two workflow files its CI roles trust (components/registry.py service_workflows)."""
    paths = [f"/services/{name}/", f"/.github/workflows/{name}.yml", f"/.github/workflows/{name}-promote.yml"]
    return "".join(f"{path:<41} @{owner}/{name}\n" for path in paths)


def new_service(name: str, root: Path = ROOT) -> list[str]:
    changes, found = plan_changes(name, root)
    changes.write()
    found += [p for stack in stack_names(root) for p in values_placeholders(root, stack, [name])]
    lines = [f"Service {name!r} added to every stack ({', '.join(stack_names(root))}):", *changes.summary()]
    lines += regenerate_docs()
    if found:
        lines += [f"{len(found)} documentation placeholder(s) to replace before a real deploy:"]
        lines += placeholder_lines(found)
    variables = ", ".join(role_variable(name, stack) for stack in stack_names(root))
    lines += [
        "Next: `make plan` (every stack plans with the service), `make test`, then commit in two "
        "steps, the platform side first (platform/gitops/README.md). After its `pulumi up`, set the "
        f"repository variables {variables} from each stack's output ciRoleArns.{name} "
        "(platform/gitops/README.md).",
        f"Its CI roles trust only .github/workflows/{name}.yml and {name}-promote.yml on {BRANCH}: "
        f".github/CODEOWNERS now gives those two files and services/{name}/ to @<org>/{name}; name the "
        "service's real team there (platform/gitops/README.md).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make new-service", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="", help="the service's name: a DNS label")
    args = parser.parse_args(argv)
    return run("make new-service", lambda: new_service(args.name))


if __name__ == "__main__":
    sys.exit(main())
