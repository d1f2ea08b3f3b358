"""delivery.gitops config: the SSO section's rules, and the GitOps folder against the repo URL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import stacks.delivery
import tools.mocks
from stacks import placeholders
from stacks.config import PROJECT, ConfigError, validate
from stacks.delivery import REPO_ROOT
from stacks.gitops_tree import repo_url_issues
from tools import plan as plan_cli
from tools.mocks import stack_config, stack_names
from tools.scaffold import fill

REPO = "https://github.com/acme/eks-platform.git"
EXAMPLE_REPO = "https://github.com/example-org/eks-platform.git"
SSO = {
    "issuer": "https://login.acme.io/oauth2/default",
    "clientId": "0oa1argocd",
    "adminGroups": ["platform-admins"],
    "readOnlyGroups": ["developers"],
}


def _with_gitops(stack: str, **changes: Any) -> dict[str, str]:
    raw, _ = stack_config(stack)
    delivery = json.loads(raw[f"{PROJECT}:delivery"])
    delivery["gitops"] = {**delivery["gitops"], **changes}
    delivery["gitops"] = {k: v for k, v in delivery["gitops"].items() if v is not None}
    raw[f"{PROJECT}:delivery"] = json.dumps(delivery)
    return raw


def _issues(stack: str, raw: dict[str, str]) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, stack, f"Pulumi.{stack}.yaml")
    return {i.key: i.message for i in info.value.issues}


# -- SSO ----------------------------------------------------------------------------------------


def test_prod_without_sso_is_refused_with_the_key_named() -> None:
    issues = _issues("prod", _with_gitops("prod", sso=None))
    assert list(issues) == [f"{PROJECT}:delivery.gitops.sso"]
    assert "local admin" in issues[f"{PROJECT}:delivery.gitops.sso"]


def test_prod_without_sso_stops_the_program() -> None:
    with pytest.raises(ConfigError, match=r"delivery\.gitops\.sso = null"):
        tools.mocks.run_program("prod", _with_gitops("prod", sso=None))


def test_dev_may_omit_sso_and_may_set_it() -> None:
    for sso in (None, SSO):
        cfg = validate(_with_gitops("dev", sso=sso), PROJECT, "dev", "Pulumi.dev.yaml")
        assert (cfg.delivery.gitops.sso is None) is (sso is None)


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"issuer": "http://login.acme.io"}, "issuer", "https:// URL"),
        ({"url": "https://argocd.acme.io/"}, "url", "without a trailing slash"),
        ({"clientId": "my client"}, "clientId", "no spaces"),
        ({"clientSecretName": "ArgoCD/oidc"}, "clientSecretName", "DNS label"),
        ({"requestedScopes": ["profile", "groups"]}, "requestedScopes", "openid"),
        ({"adminGroups": []}, "adminGroups", "at least one group"),
        ({"adminGroups": ["a,b"]}, "adminGroups", "comma"),
        ({"readOnlyGroups": ["platform-admins"]}, "readOnlyGroups", "already in adminGroups"),
        ({"adminGroup": ["x"]}, "adminGroup", "did you mean"),
    ],
)
def test_bad_sso_is_rejected(changes: dict[str, Any], key: str, message: str) -> None:
    issues = _issues("dev", _with_gitops("dev", sso={**SSO, **changes}))
    full = f"{PROJECT}:delivery.gitops.sso.{key}"
    assert full in issues, issues
    assert message in issues[full]


def test_prod_sso_placeholders_are_listed_and_stop_a_real_deploy() -> None:
    raw, _ = stack_config("prod")
    found = {key for key, _, _ in placeholders.find(raw)}
    assert {
        f"{PROJECT}:delivery.gitops.sso.issuer",
        f"{PROJECT}:delivery.gitops.sso.clientId",
        f"{PROJECT}:delivery.gitops.sso.adminGroups.0",
        f"{PROJECT}:delivery.gitops.sso.readOnlyGroups.0",
    } <= found
    del raw[f"{PROJECT}:offlinePlan"]
    issues = _issues("prod", raw)
    assert "documentation placeholder" in issues[f"{PROJECT}:delivery.gitops.sso.clientId"]


# -- the GitOps folder names the configured repository ------------------------------------------


def _application(name: str, **source: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": source,
    }


def _write(folder: Path, name: str, *docs: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump_all(docs))


def test_applications_naming_the_configured_repo_pass(tmp_path: Path) -> None:
    tree = tmp_path / "gitops"
    _write(tree, "a.yaml", _application("a", source={"repoURL": REPO, "path": "charts/x"}))
    _write(
        tree,
        "b.yml",
        _application(
            "b", sources=[{"repoURL": REPO, "path": "charts/y"}, {"repoURL": REPO, "ref": "values"}]
        ),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}},
    )
    # A Helm repository chart is another repository by design.
    _write(tree, "c.yaml", _application("c", source={"repoURL": "https://charts.acme.io", "chart": "c"}))
    _write(tree, "notes.txt", _application("ignored", source={"repoURL": "https://elsewhere.git"}))
    _write(tree / "sub", "d.yaml", _application("d", source={"repoURL": "https://elsewhere.git"}))
    assert repo_url_issues(tmp_path, "gitops", REPO) == []


def test_an_application_naming_another_repo_is_reported_with_file_and_both_urls(tmp_path: Path) -> None:
    other = "https://github.com/example-org/eks-platform.git"
    _write(tmp_path / "gitops", "a.yaml", _application("a", source={"repoURL": other, "path": "charts/x"}))
    _write(
        tmp_path / "gitops",
        "b.yaml",
        _application("b", sources=[{"repoURL": REPO, "path": "x"}, {"repoURL": other, "ref": "values"}]),
    )
    issues = repo_url_issues(tmp_path, "gitops", REPO)
    assert [(key, value) for key, value, _ in issues] == [("repoUrl", REPO), ("repoUrl", REPO)]
    first, second = (message for _, _, message in issues)
    assert first.startswith("gitops/a.yaml: Application 'a' spec.source.repoURL")
    assert other in first and REPO in first
    assert second.startswith("gitops/b.yaml: Application 'b' spec.sources[1].repoURL")


def test_invalid_yaml_in_the_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "gitops").mkdir()
    (tmp_path / "gitops" / "bad.yaml").write_text("kind: [Application\n")
    ((key, _, message),) = repo_url_issues(tmp_path, "gitops", REPO)
    assert key == "repoUrl" and message.startswith("gitops/bad.yaml is not valid YAML")


@pytest.mark.parametrize("stack", stack_names())
def test_a_repo_url_the_stacks_applications_do_not_name_is_a_config_error(stack: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(_with_gitops(stack, repoUrl=REPO), PROJECT, stack, f"Pulumi.{stack}.yaml")
    messages = [i.message for i in info.value.issues if i.key == f"{PROJECT}:delivery.gitops.repoUrl"]
    # One issue per Application of the stack's folder, each naming its file and both URLs.
    files = sorted(
        p.relative_to(REPO_ROOT) for p in (REPO_ROOT / "platform" / "gitops" / stack).glob("*.yaml")
    )
    assert files and len(messages) == len(files)
    for file, message in zip(files, messages, strict=True):
        assert message.startswith(f"{file.as_posix()}: ")
        assert "https://github.com/example-org/eks-platform.git" in message and REPO in message


@pytest.mark.parametrize("stack", stack_names())
def test_the_committed_stacks_name_their_folders_repo(stack: str) -> None:
    raw, _ = stack_config(stack)
    cfg = validate(raw, PROJECT, stack, f"Pulumi.{stack}.yaml")
    folder = cfg.delivery.gitops.folder(stack)
    assert list((REPO_ROOT / folder).glob("*.yaml")), "the check has files to read"
    assert repo_url_issues(REPO_ROOT, folder, cfg.delivery.gitops.repo_url) == []


# -- every listed service has its files ------------------------------------------------------------


NEW = "unlisted-service"  # a service the checkout does not have


def _with_service(stack: str, name: str) -> dict[str, str]:
    raw, _ = stack_config(stack)
    delivery = json.loads(raw[f"{PROJECT}:delivery"])
    delivery["services"] = [*delivery.get("services", []), {"name": name, "githubRepository": "acme/x"}]
    raw[f"{PROJECT}:delivery"] = json.dumps(delivery)
    return raw


@pytest.mark.parametrize("stack", stack_names())
def test_a_service_without_its_values_file_is_a_config_error_naming_the_file_and_command(stack: str) -> None:
    """platform/gitops/README.md's old commit 1 (the entry only) stops at the config, not in an analysis."""
    assert not (REPO_ROOT / "services" / NEW).exists()
    with pytest.raises(ConfigError) as info:
        validate(_with_service(stack, NEW), PROJECT, stack, f"Pulumi.{stack}.yaml")
    (issue,) = info.value.issues
    assert (issue.key, issue.value) == (f"{PROJECT}:delivery.services", NEW)
    assert issue.message.startswith(f"services/{NEW}/deploy/{stack}.yaml does not exist")
    assert f"`make new-service NAME={NEW}`" in issue.message


def test_the_plan_stops_on_a_service_without_files_before_any_analysis() -> None:
    with pytest.raises(ConfigError, match=rf"services/{NEW}/deploy/dev\.yaml does not exist"):
        tools.mocks.run_program("dev", _with_service("dev", NEW))


def test_a_stack_no_service_has_files_for_names_the_new_stack_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copied stack file (docs/adding-a-stack.md step 1) names every missing values file."""
    (tmp_path / "platform" / "gitops" / "staging").mkdir(parents=True)
    monkeypatch.setattr(stacks.delivery, "REPO_ROOT", tmp_path)
    raw, _ = stack_config("dev")
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, "staging", "Pulumi.staging.yaml")
    services = [s["name"] for s in json.loads(raw[f"{PROJECT}:delivery"])["services"]]
    issues = [i for i in info.value.issues if i.key == f"{PROJECT}:delivery.services"]
    assert [i.value for i in issues] == services
    for issue in issues:
        assert issue.message.startswith(f"services/{issue.value}/deploy/staging.yaml does not exist")
        assert "`make new-stack NAME=staging FROM=<stack>`" in issue.message


@pytest.mark.parametrize("prefix", ["", "eks-platform-dev", "eks-platform-prod-x"])
def test_a_values_file_still_setting_a_secret_prefix_is_a_config_error(
    prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """externalSecrets (docs/secrets.md) names only <key>: the service's own ClusterSecretStore
    carries the prefix <prefix>/<service>/. The plan refuses a values file that still sets
    externalSecrets.prefix (the chart's schema would refuse it too), naming the fix."""
    raw, _ = stack_config("dev")
    services = [s["name"] for s in json.loads(raw[f"{PROJECT}:delivery"])["services"]]
    (tmp_path / "platform" / "gitops" / "dev").mkdir(parents=True)
    for service in services:
        target = tmp_path / "services" / service / "deploy" / "dev.yaml"
        target.parent.mkdir(parents=True)
        values = yaml.safe_load((REPO_ROOT / "services" / service / "deploy" / "dev.yaml").read_text())
        values["externalSecrets"] = {"prefix": prefix, "secrets": [{"name": "db", "key": "db"}]}
        target.write_text(yaml.safe_dump(values))
    monkeypatch.setattr(stacks.delivery, "REPO_ROOT", tmp_path)
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, "dev", "Pulumi.dev.yaml")
    issues = [i for i in info.value.issues if i.key == f"{PROJECT}:delivery.services"]
    assert [i.value for i in issues] == services
    for issue, service in zip(issues, services, strict=True):
        assert "externalSecrets.prefix is not a value of the chart" in issue.message
        assert f"service-{service} reads {PROJECT}-dev/{service}/<key>" in issue.message
    for service in services:  # without the prefix, the same secrets pass
        target = tmp_path / "services" / service / "deploy" / "dev.yaml"
        values = yaml.safe_load(target.read_text())
        del values["externalSecrets"]["prefix"]
        target.write_text(yaml.safe_dump(values))
    validate(raw, PROJECT, "dev", "Pulumi.dev.yaml")


# -- the errors platform/gitops/README.md quotes are what `make plan` prints ----------------------


def _quoted_errors() -> dict[str, list[str]]:
    """Each code block of the README that quotes a config error, by the stack file it names."""
    text = (REPO_ROOT / "platform" / "gitops" / "README.md").read_text()
    blocks = re.findall(r"```\n(Invalid configuration in (Pulumi\.\w+\.yaml):\n.*?)```", text, re.S)
    return {source: block.splitlines() for block, source in blocks}


def _printed(stack: str, raw: dict[str, str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plan_cli, "run_stack", lambda s: tools.mocks.run_program(s, raw))
        assert plan_cli.main(["--stack", stack]) == 2
    captured = capsys.readouterr()
    return (captured.out + captured.err).splitlines()


def test_the_readmes_quoted_errors_are_what_the_plan_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the README's own example checkout (whatever services this one has): the Application of
    `catalog` in each stack's folder, as `make new-service` writes it, and the values of one other
    service."""
    quoted = _quoted_errors()
    assert set(quoted) == {"Pulumi.prod.yaml", "Pulumi.dev.yaml"}
    monkeypatch.setattr(stacks.delivery, "REPO_ROOT", tmp_path)
    template = (REPO_ROOT / "tools" / "templates" / "service" / "application.yaml.tmpl").read_text()
    for stack in ("dev", "prod"):
        tokens = {"SERVICE": "catalog", "STACK": stack, "REPO_URL": EXAMPLE_REPO, "REVISION": "main"}
        (tmp_path / "platform" / "gitops" / stack).mkdir(parents=True)
        (tmp_path / "platform" / "gitops" / stack / "catalog.yaml").write_text(fill(template, tokens))
        (tmp_path / "services" / "other" / "deploy").mkdir(parents=True, exist_ok=True)
        (tmp_path / "services" / "other" / "deploy" / f"{stack}.yaml").write_text("{}\n")

    def example(stack: str, services: list[str], **gitops: Any) -> dict[str, str]:
        raw = _with_gitops(stack, **gitops)
        delivery = json.loads(raw[f"{PROJECT}:delivery"])
        delivery["services"] = [{"name": s, "githubRepository": "example-org/eks-platform"} for s in services]
        raw[f"{PROJECT}:delivery"] = json.dumps(delivery)
        return raw

    assert _printed("prod", example("prod", ["other"], repoUrl=REPO), capsys) == quoted["Pulumi.prod.yaml"]
    assert _printed("dev", example("dev", ["orders"]), capsys) == quoted["Pulumi.dev.yaml"]


def test_adding_a_stacks_quoted_error_is_what_the_plan_prints_for_a_copied_stack_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/adding-a-stack.md step 1: `cp Pulumi.dev.yaml Pulumi.staging.yaml`, then `make plan
    STACK=staging` prints exactly the block the guide quotes (the folder, pointing to make new-stack)."""
    text = (REPO_ROOT / "docs" / "adding-a-stack.md").read_text()
    (block,) = re.findall(
        r"```\n((?: {3}Invalid configuration in Pulumi\.staging\.yaml:\n).*?) {3}```", text, re.S
    )
    quoted = [line.removeprefix("   ") for line in block.splitlines()]
    (tmp_path / "Pulumi.staging.yaml").write_text((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    monkeypatch.setattr(stacks.delivery, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(plan_cli, "ROOT", tmp_path)
    raw, _ = stack_config("dev")
    assert _printed("staging", raw, capsys) == quoted
    assert "`make new-stack NAME=staging FROM=<stack>`" in quoted[1]
