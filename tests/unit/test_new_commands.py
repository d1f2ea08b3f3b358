"""`make new-service` and `make new-stack` (tools/new_service.py, tools/new_stack.py).

On a temporary copy of the checkout: a third stack, then a second service (so it lands in three
stacks), each by its command and nothing else; then what they wrote, file by file. And every
refusal: exit 2, one message, nothing changed. That the copy then plans every stack and identity and
passes the whole of `make test` (the scan's exceptions included) is `make test-day-two`'s to prove
(tools/day_two.py, run by CI after `make test`): the suite cannot run itself on the copy, and a
partial run here only repeated a part of it at the suite's expense.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import tools.mocks
from analysis.appliers import IDENTITY_FIRST
from model.records import PlanResult
from stacks import placeholders
from tests.checkout import copy_checkout
from tests.workflow_steps import read_role
from tools import new_service, new_stack
from tools.day_two import unused
from tools.mocks import ROOT, project_name, stack_names
from tools.scaffold import Changes, RefusedError

SERVICE = unused("orders", {p.name for p in (ROOT / "services").iterdir()})
STACK = unused("staging", set(stack_names()))
LONGEST = max(stack_names(), key=len)  # the stack whose CI role names are the longest
# A service of the checkout (the third stack gets its files) and its entry of the dev stack file.
EXISTING = sorted(p.parent.parent.name for p in ROOT.glob("services/*/deploy/dev.yaml"))[0]
# Both commands, as `make new-stack NAME=staging FROM=dev` and `make new-service NAME=orders` run them,
# in one process that starts and exits as `make new-stack` does: no cyclic GC from its first import,
# its output flushed, no interpreter teardown of the SDKs' heap (tools/process.py; with the commands'
# paused collector, the fixture's subprocess takes 2.8 to 3.1 s of CPU instead of 4.1 to 4.8 s).
COMMANDS = f"""
import gc
gc.disable()
from tools import new_service, new_stack
from tools.process import exit_now
exit_now(new_stack.main(["{STACK}", "--from", "dev"]) or new_service.main(["{SERVICE}"]))
"""


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=repo, capture_output=True, text=True, check=False, timeout=600
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The copy after `make new-stack NAME=<STACK> FROM=dev` and `make new-service NAME=<SERVICE>`."""
    assert STACK not in stack_names() and not (ROOT / "services" / SERVICE).exists()
    repo = copy_checkout(tmp_path_factory.mktemp("day-two") / "repo")
    done = _run(repo, "-c", COMMANDS)
    assert done.returncode == 0, done.stdout + done.stderr
    (repo.parent / "printed.txt").write_text(done.stdout)
    return repo


def test_the_files_are_in_place_and_the_stack_files_only_gain_the_entry(repo: Path) -> None:
    for stack in [*stack_names(), STACK]:
        assert (repo / "services" / SERVICE / "deploy" / f"{stack}.yaml").is_file()
        app = yaml.safe_load((repo / "platform" / "gitops" / stack / f"{SERVICE}.yaml").read_text())
        assert app["spec"]["source"]["helm"]["valueFiles"] == [
            f"../../services/{SERVICE}/deploy/{stack}.yaml"
        ]
    for stack in stack_names():
        gitops = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        url = gitops["eks-platform:delivery"]["gitops"]["repoUrl"]
        repository = url.removeprefix("https://github.com/").removesuffix(".git")
        # The example repository keeps the committed entries' note (a placeholder to replace).
        note = f"  {new_service.REPLACE_REPOSITORY}" if placeholders.why(repository) else ""
        entry = [f"+       - name: {SERVICE}", f"+         githubRepository: {repository}{note}"]
        before = (ROOT / f"Pulumi.{stack}.yaml").read_text().splitlines()
        after = (repo / f"Pulumi.{stack}.yaml").read_text().splitlines()
        diff = [d for d in difflib.ndiff(before, after) if d[:1] in "+-"]
        assert diff == [*entry, "+         branch: main"], "comments, order and the rest kept"
    # The third stack: its own registry, the tag placeholder, its folder's environment label.
    values = yaml.safe_load((repo / "services" / EXISTING / "deploy" / f"{STACK}.yaml").read_text())
    assert values["image"]["repository"].endswith(f"/eks-platform-{STACK}/{EXISTING}")
    assert values["image"]["tag"] == "0" * 40
    app = yaml.safe_load((repo / "platform" / "gitops" / STACK / f"{EXISTING}.yaml").read_text())
    assert app["metadata"]["labels"]["eks-platform.io/environment"] == STACK
    for workflow in (f"{SERVICE}.yml", f"{SERVICE}-promote.yml"):
        assert (repo / ".github" / "workflows" / workflow).is_file()


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_new_stack_says_its_first_up_comes_after_its_identity_as_the_guide_does(repo: Path) -> None:
    """The platform's roles need the identity stack's deploy role and boundary first: the command's
    closing text, docs/adding-a-stack.md step 4 and `make plan`'s first-up column say the same."""
    printed = _words((repo.parent / "printed.txt").read_text())
    public = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]["eks-platform:cluster"]
    assert public["endpointPublicAccess"] is True
    organization = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"][
        "eks-platform:deployments"
    ]["organization"]
    # In the organization the identity project's Deployments settings name, not the CLI's default.
    assert _words(new_stack.first_up(STACK, private=False, organization=organization)) in printed
    assert f"pulumi stack init {organization}/{STACK}" in printed
    assert f"make up PROJECT=identity STACK={STACK}" in printed
    assert f"`make bootstrap STACK={STACK}`" in new_stack.first_up(STACK, private=True)
    guide = _words((ROOT / "docs" / "adding-a-stack.md").read_text())
    assert _words(new_stack.first_up("staging", None)) in guide
    assert IDENTITY_FIRST in guide.replace("\n", " ")
    identity = (repo / "identity" / f"Pulumi.{STACK}.yaml").read_text()
    assert identity == (ROOT / "identity" / "Pulumi.dev.yaml").read_text().replace(
        '"dev"', f'"{STACK}"'
    ).replace("Pulumi.dev.yaml", f"Pulumi.{STACK}.yaml")


def test_the_new_stack_is_a_promotion_target_of_every_service(repo: Path, tmp_path: Path) -> None:
    """`make new-stack` adds the stack to the choices of each service's promote workflow, and
    `make new-service` generates one that offers every stack; the role variable the workflow reads
    for the new stack is the one the command prints, with the output that fills it."""
    printed = _words((repo.parent / "printed.txt").read_text())
    workflows = repo / ".github" / "workflows"
    for service in (EXISTING, SERVICE):
        promote = workflows / f"{service}-promote.yml"
        inputs = yaml.safe_load(promote.read_text())[True]["workflow_dispatch"]["inputs"]
        assert inputs["stack"]["options"] == sorted({*stack_names(), STACK} - {"dev"})
        variable = new_service.role_variable(service, STACK)
        assert variable in printed
        arn = f"arn:aws:iam::210987654321:role/eks-platform-{STACK}-registry-{service}-ci"
        assert read_role(promote, STACK, {variable: arn}, tmp_path)[:2] == (0, arn)
    assert f"output ciRoleArns.<service> (`pulumi stack output ciRoleArns --stack {STACK}`)" in printed
    assert f"Actions > {EXISTING}-promote > Run workflow, stack {STACK}" in printed
    before = (ROOT / ".github" / "workflows" / f"{EXISTING}-promote.yml").read_text().splitlines()
    after = (workflows / f"{EXISTING}-promote.yml").read_text().splitlines()
    assert [d for d in difflib.ndiff(before, after) if d[:1] in "+-"] == ["+ " + " " * 10 + f"- {STACK}"]
    # Its values file says who sets its tag: the promotion, as in prod.
    values = (repo / "services" / EXISTING / "deploy" / f"{STACK}.yaml").read_text()
    assert "Set by the promotion's pull request (.github/workflows/propose-tag.yml)" in values


def test_names_whose_role_variables_would_collide_are_refused() -> None:
    """`-` becomes `_` in a variable name: `orders-eu` in prod and `orders` in eu-prod would read one."""
    new_service.check_role_variables(["catalog", "orders"], ["dev", "prod", "eu-west"])
    with pytest.raises(RefusedError, match="would share the repository variable ORDERS_EU_PROD_CI_ROLE_ARN"):
        new_service.check_role_variables(["orders", "orders-eu"], ["eu-prod", "prod"])


def test_the_guide_promotes_with_the_workflow_not_with_the_ci_roles_from_a_workstation() -> None:
    """The CI roles trust GitHub Actions tokens only (components/registry.py): the guide sends a new
    stack's images through the promote workflow and its variables."""
    guide = _words((ROOT / "docs" / "adding-a-stack.md").read_text())
    assert "with the dev CI role's credentials" not in guide
    assert "Run workflow" in guide and "stack staging" in guide
    assert new_service.role_variable("<service>", "staging") == "<SERVICE>_STAGING_CI_ROLE_ARN"
    assert "<SERVICE>_STAGING_CI_ROLE_ARN" in guide and "ciRoleArns.<service>" in guide


def test_the_generated_service_code_lints(repo: Path) -> None:
    lint = _run(repo, "-m", "ruff", "check", f"services/{SERVICE}")
    assert lint.returncode == 0, lint.stdout


def test_generated_docs_are_regenerated(repo: Path) -> None:
    assert f"registry-{SERVICE}" in (repo / "docs" / "architecture.md").read_text()


# -- refusals: exit 2, a message naming the problem, nothing written ------------------------------


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch, plans: dict[str, PlanResult]) -> None:
    """The commands' checks plan committed stacks: `make new-stack` the source stack (check_length:
    its IAM role names), `make new-service` every stack (platform_names: the names its plan uses).
    Here they read the session's plans of the same stack files, which they only read, instead of
    planning dev and prod again in each test (about 1.9 s of CPU); the `repo` fixture runs both
    commands whole, their own plans included."""
    monkeypatch.setattr(new_stack, "run_stack", plans.__getitem__)
    monkeypatch.setattr(new_service, "run_stack", plans.__getitem__)


def _snapshot() -> dict[str, bytes]:
    """Every file a command could create or edit."""
    paths = [*ROOT.glob("Pulumi.*.yaml"), ROOT / "docs" / "architecture.md"]
    for tree in ("services", "platform/gitops", ".github/workflows"):
        paths += [p for p in (ROOT / tree).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return {str(p): p.read_bytes() for p in paths}


def _refused(
    command: Callable[[list[str]], int],
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The command on this checkout, refusing: should it not refuse, it must not write here."""

    def no_write(self: Changes) -> None:
        raise AssertionError(f"{argv} was not refused and would have written into the checkout")

    monkeypatch.setattr(Changes, "write", no_write)
    before = _snapshot()
    assert command(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert _snapshot() == before, "a refused command changes nothing"
    return captured.err


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "no service name given"),
        ("Orders", "must be a DNS label"),
        ("1orders", "must be a DNS label"),
        ("orders_v2", "must be a DNS label"),
        ("orders-", "must be a DNS label"),
        ("o" * 64, "at most 63 characters"),
        ("kube-orders", "is reserved"),
        ("argocd", "is reserved"),
        ("default", "is reserved"),
        # The root Application argocd/root, whose file the service's Application would have been.
        ("root", "is reserved"),
        ("microservices", "is reserved"),
        ("monitoring", "is reserved"),
        ("kube-public", "is reserved"),
        (f"{SERVICE}-promote", "is reserved"),
        ("json", "would shadow the module"),
        ("tools", "would shadow the module"),
        (
            "o" * 40,
            f"IAM allows 64; use at most {64 - len(f'eks-platform-{LONGEST}-registry--ci')} characters",
        ),
        (EXISTING, f"service {EXISTING!r} exists (services/{EXISTING}"),
    ],
)
@pytest.mark.usefixtures("planned")
def test_new_service_refuses(
    name: str, problem: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _refused(new_service.main, [name], capsys, monkeypatch)
    assert err.startswith("make new-service: ") and problem in err, err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["Staging", "--from", "dev"], "must be a DNS label"),
        (["it-staging", "--from", "dev"], "is reserved: `make it-cleanup` destroys stacks named it-*"),
        (
            ["staging", "--from", "nope"],
            f"no stack 'nope' to copy (FROM=<stack>): the stacks are {', '.join(stack_names())}",
        ),
        (
            ["staging", "--from", ""],
            "FROM is required: the stack to copy, `make new-stack NAME=staging FROM=<stack>`",
        ),
        # A name extending another's, or extended by it: IAM scopes a stack by `<project>-<stack>-*`.
        (["dev-eu", "--from", "dev"], "stack name 'dev-eu' is refused next to stack 'dev'"),
        (
            ["prod-2", "--from", "dev"],
            "so prod's `eks-platform-prod-*` would cover prod-2's `eks-platform-prod-2-*`",
        ),
        (["dev", "--from", "prod"], "stack 'dev' exists (platform/gitops/dev"),
        (["s" * 40, "--from", "dev"], "is too long: the IAM role"),
    ],
)
@pytest.mark.usefixtures("planned")
def test_new_stack_refuses(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = _refused(new_stack.main, argv, capsys, monkeypatch)
    assert err.startswith("make new-stack: ") and problem in err, err


@pytest.mark.usefixtures("planned")
def test_the_platforms_names_come_from_the_plan(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every namespace and Argo CD object the plan creates is reserved, not only the listed ones."""
    names = new_service.platform_names("dev")
    assert {"root", "argocd", "kube-system", "external-secrets", "monitoring"} <= names
    assert EXISTING not in names, "the services' own namespaces are theirs"
    monkeypatch.setattr(new_service, "platform_names", lambda stack: names | {"platform-extra"})
    err = _refused(new_service.main, ["platform-extra"], capsys, monkeypatch)
    assert "is reserved: stack" in err and "plan uses it for the platform" in err, err


def test_a_command_never_overwrites_a_file(tmp_path: Path) -> None:
    (tmp_path / "platform" / "gitops" / "dev").mkdir(parents=True)
    (tmp_path / "platform" / "gitops" / "dev" / "root.yaml").write_text("kind: Application\n")
    changes = Changes(tmp_path)
    changes.create("platform/gitops/dev/other.yaml", "")
    changes.refuse_overwrites("service 'other'")
    changes.create("platform/gitops/dev/root.yaml", "")
    with pytest.raises(RefusedError, match=r"service 'root' would overwrite platform/gitops/dev/root\.yaml"):
        changes.refuse_overwrites("service 'root'")


def test_a_hand_added_entry_is_completed_not_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config error of an entry without files names `make new-service`: it creates the files and
    keeps the entries."""
    repo = copy_checkout(tmp_path / "repo")
    for stack in stack_names():
        path = repo / f"Pulumi.{stack}.yaml"
        text = path.read_text().replace(
            f"      - name: {EXISTING}\n",
            f"      - name: {SERVICE}\n        githubRepository: example-org/eks-platform\n"
            f"      - name: {EXISTING}\n",
            1,
        )
        path.write_text(text)
    monkeypatch.setattr(tools.mocks, "ROOT", repo)
    changes, _ = new_service.plan_changes(SERVICE, repo)
    edited = {p.relative_to(repo).as_posix() for p in changes.edited}
    assert edited == {".github/CODEOWNERS"}, (
        "the entries are kept as written (the owners file gains its lines)"
    )
    created = {p.relative_to(repo).as_posix() for p in changes.created}
    assert {f"services/{SERVICE}/deploy/{s}.yaml" for s in stack_names()} <= created


def _own_branch(stack_file: str) -> str:
    """A hand-made copy of dev's stack file with its own deploy branch (step 1 of the guide)."""
    return stack_file.replace(
        "githubRepository: example-org/eks-platform   # replace with your repository\n    branch: main",
        f"githubRepository: example-org/eks-platform   # replace with your repository\n    branch: {STACK}",
    )


def _new_values(repo: Path, stack: str) -> str:
    changes = new_stack.plan_changes(stack, "dev", repo)
    return changes.created[repo / "services" / EXISTING / "deploy" / f"{stack}.yaml"]


@pytest.mark.usefixtures("planned")
def test_a_new_stack_pulls_from_its_own_accounts_registry(tmp_path: Path) -> None:
    """docs/delivery-accounts.md: an account per stack. The source's registry account is not copied:
    the new values name the documentation account (a placeholder the plan lists) unless the new
    stack's own file names the source's account."""
    repo = copy_checkout(tmp_path / "repo")
    source = repo / "services" / EXISTING / "deploy" / "dev.yaml"
    source.write_text(source.read_text().replace("123456789012.dkr", "999999999999.dkr"))
    text = _new_values(repo, STACK)
    (repository,) = [line.split()[-1] for line in text.splitlines() if "repository:" in line]
    assert repository.startswith("123456789012.dkr.ecr.") and repository.endswith(
        f"/eks-platform-{STACK}/{EXISTING}"
    )
    assert any("AWS documentation account" in why for _, _, why in placeholders.find({"r": repository}))
    stack_file = (repo / "Pulumi.dev.yaml").read_text().replace("123456789012", "999999999999")
    (repo / f"Pulumi.{STACK}.yaml").write_text(_own_branch(stack_file))
    assert "repository: 999999999999.dkr.ecr." in _new_values(repo, STACK)


@pytest.mark.usefixtures("planned")
def test_a_new_stacks_tag_comment_says_who_sets_it_there(tmp_path: Path) -> None:
    repo = copy_checkout(tmp_path / "repo")
    text = _new_values(repo, STACK)
    assert "SHA it built" not in text
    before_tag = text.split('  tag: "')[0].splitlines()[-1]
    assert before_tag == f"  # {new_service.tag_comment(STACK)} The zeros are a placeholder until then."


def test_a_new_stack_whose_name_an_existing_stack_extends_is_refused(tmp_path: Path) -> None:
    """`a` next to `a-b`: a's `<project>-a-*` scope would cover a-b's names."""
    for stack in ("a-b", "c"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    with pytest.raises(
        RefusedError, match=r"stack name 'a' is refused next to stack 'a-b'.*give a power over a-b"
    ):
        new_stack.check_name("a", "c", tmp_path)
    new_stack.check_name("ab", "c", tmp_path)


def test_the_guide_names_the_shared_accounts_provider_keys() -> None:
    """A stack in an account that holds another: the two keys delivery-accounts.md names exist."""
    from stacks.delivery import DeliveryConfig, DeploymentsConfig

    guide = (ROOT / "docs" / "adding-a-stack.md").read_text()
    for model, field in (
        (DeliveryConfig, "github_oidc_provider_arn"),
        (DeploymentsConfig, "pulumi_oidc_provider_arn"),
    ):
        alias = model.model_fields[field].alias
        assert alias is not None and alias in guide


@pytest.mark.usefixtures("planned")
def test_a_new_stacks_service_keeps_its_secret_keys(tmp_path: Path) -> None:
    """externalSecrets names only keys: the new stack's store service-<service> reads them from the
    new stack's own `<project>-<stack>/<service>/` (components/secrets.py), so nothing is rewritten."""
    repo = copy_checkout(tmp_path / "repo")
    source = repo / "services" / EXISTING / "deploy" / "dev.yaml"
    source.write_text(source.read_text() + "externalSecrets:\n  secrets:\n    - {name: db, key: database}\n")
    text = _new_values(repo, STACK)
    assert yaml.safe_load(text)["externalSecrets"] == {"secrets": [{"name": "db", "key": "database"}]}
    assert f"eks-platform-{STACK}/{EXISTING}/<key>" in text and "eks-platform-dev" not in text


def test_a_stack_name_whose_deploy_identity_does_not_fit_iam_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stack name repeats in every ARN of its deploy identity's three policies (review 20:
    `preproduction` from prod made the old single inline policy 10,277 of IAM's 10,240, and only
    the identity plan said so). The command checks the sizes before it writes anything."""
    from components import deploy_policy
    from tools import new_stack

    real = deploy_policy.policy_sizes
    # Today every name IAM's role-name length allows fits; a data file that grows may not.
    monkeypatch.setattr(
        new_stack,
        "policy_sizes",
        lambda *a, **k: {
            what: (size + (2_000 if "boundary" in what else 0), limit)
            for what, (size, limit) in real(*a, **k).items()
        },
    )
    with pytest.raises(
        RefusedError,
        match=(
            r"stack name 'staging' is too long for its deploy identity in eu-west-1: the permissions "
            r"boundary eks-platform-staging-boundary would have [\d,]+ characters, IAM allows 6,144"
        ),
    ):
        new_stack.check_policy_sizes("staging", "prod", "eks-platform")
    monkeypatch.setattr(new_stack, "policy_sizes", real)
    new_stack.check_policy_sizes("preproduction", "prod", "eks-platform")  # fits with the managed policy


def test_the_placeholder_tag_is_one_the_plan_lists() -> None:
    """adding-a-stack.md says the new stack's `image.tag: "0000…"` is listed by `make plan`."""
    from stacks import placeholders
    from tools.new_service import ZERO_TAG

    assert (
        placeholders.why(ZERO_TAG)
        == "no image yet: the build (dev) or a promotion (other stacks) sets the tag"
    )


def test_the_new_stack_deploys_from_its_own_branch(repo: Path) -> None:
    """A copy kept the source's push-to-deploy branch (review 20: a stack copied from prod would
    deploy on every merge to `production`, alongside prod)."""
    config = yaml.safe_load((repo / f"Pulumi.{STACK}.yaml").read_text())["config"]
    assert config["eks-platform:deployments"]["branch"] == STACK
    printed = (repo.parent / "printed.txt").read_text()
    assert f"a push to branch `{STACK}` deploys {STACK}" in printed


def test_the_new_service_names_the_files_its_ci_roles_trust_for_codeowners(repo: Path) -> None:
    """Review of those two files is what keeps another change from pushing as the service: the
    command says which they are, the very files components/registry.py puts in the roles' trust."""
    from components.registry import service_workflows

    printed = _words((repo.parent / "printed.txt").read_text())
    trusted = [
        w.split("/.github/workflows/")[1].split("@")[0] for w in service_workflows("o/r", SERVICE, "main")
    ]
    assert trusted == [f"{SERVICE}.yml", f"{SERVICE}-promote.yml"]
    assert f".github/workflows/{trusted[0]} and {trusted[1]} on main" in printed
    assert "CODEOWNERS" in printed
    assert all((repo / ".github" / "workflows" / name).is_file() for name in trusted)
    # The lines it added: the service's code and both files, owned by a team named after it.
    before = (ROOT / ".github" / "CODEOWNERS").read_text().splitlines()
    after = (repo / ".github" / "CODEOWNERS").read_text().splitlines()
    added = [d[2:].split() for d in difflib.ndiff(before, after) if d[:1] in "+-"]
    assert added == [
        [path, f"@example-org/{SERVICE}"]
        for path in (f"/services/{SERVICE}/", *(f"/.github/workflows/{name}" for name in trusted))
    ]


def test_a_kept_stack_file_on_another_stacks_deploy_branch_is_refused(tmp_path: Path) -> None:
    """docs/adding-a-stack.md step 1 by hand (`cp Pulumi.dev.yaml Pulumi.<new>.yaml`) keeps dev's
    `deployments.branch`: every merge meant for dev would deploy the new stack too (review 20)."""
    repo = copy_checkout(tmp_path / "repo")
    (repo / f"Pulumi.{STACK}.yaml").write_text((repo / "Pulumi.dev.yaml").read_text())
    with pytest.raises(
        RefusedError, match=rf"Pulumi.{STACK}.yaml deploys on a push to branch 'main', as Pulumi.dev.yaml"
    ):
        new_stack.plan_changes(STACK, "dev", repo)
    (repo / f"Pulumi.{STACK}.yaml").write_text(_own_branch((repo / "Pulumi.dev.yaml").read_text()))
    assert new_stack.plan_changes(STACK, "dev", repo).created, "its own branch: accepted"


def test_no_two_stacks_deploy_on_the_same_branch() -> None:
    """The committed stack files (and, in `make test-day-two`, the ones the commands add)."""
    project = project_name()
    branches: dict[str | None, str] = {}
    for stack in stack_names():
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        branch = new_stack.deploy_branch(config, project)
        assert branch is None or branch not in branches, (
            f"{stack} and {branches.get(branch)} deploy on {branch}"
        )
        branches[branch] = stack


def test_the_source_stacks_secrets_are_not_copied_and_the_command_says_to_set_them(tmp_path: Path) -> None:
    """Pulumi encrypts a secret for one stack: a copy of prod's ciphertext is unreadable in the new
    stack, so the copy leaves it out and the command names it (review 20)."""
    repo = copy_checkout(tmp_path / "repo")
    with (repo / "Pulumi.prod.yaml").open("a") as f:
        f.write("  eks-platform:alertReceiverUrl:\n    secure: v1:AAAABBBBCCCC\n")
    assert new_stack.copied_secrets("prod", repo) == ["eks-platform:alertReceiverUrl"]
    changes = new_stack.plan_changes(STACK, "prod", repo)
    text = changes.created[repo / f"Pulumi.{STACK}.yaml"]
    assert "secure:" not in text and "alertReceiverUrl" not in text


def test_a_new_service_takes_the_repositorys_immutable_subject_from_its_neighbours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository with GitHub's immutable subject claims: the services it holds name the subject
    (githubSubject), and a new service of the same repository names it too, or its CI role would
    trust a `sub` GitHub never issues."""
    repo = copy_checkout(tmp_path / "repo")
    subject = "repo:example-org@1234567/eks-platform@89012345"
    for stack in stack_names():
        path = repo / f"Pulumi.{stack}.yaml"
        text = path.read_text().replace(
            f"      - name: {EXISTING}\n", f"      - name: {EXISTING}\n        githubSubject: {subject}\n", 1
        )
        path.write_text(text)
    monkeypatch.setattr(tools.mocks, "ROOT", repo)
    changes, _ = new_service.plan_changes(SERVICE, repo)
    for stack in stack_names():
        config = yaml.safe_load(changes.edited[repo / f"Pulumi.{stack}.yaml"])["config"]
        (entry,) = [s for s in config["eks-platform:delivery"]["services"] if s["name"] == SERVICE]
        assert entry["githubSubject"] == subject
