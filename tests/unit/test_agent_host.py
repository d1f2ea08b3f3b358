"""The agent host's boot script, run for real: bash executes the user data the prod plan carries,
with stub `aws`, `curl`, `docker`, `systemctl`, `dnf`, `sleep` and `logger` first on PATH and
the real coreutils, tar and awk behind them, in a scratch root (AGENT_HOST_ROOT).

The stubs log every call and answer from files in a state folder: the secret's value (or an AWS
error), IMDS (instance id, the Auto Scaling target lifecycle state), the release archive and its
checksums.txt (built here: a fake agent in the layout .goreleaser.yaml gives the linux-x64
archive at v2.2.0), running containers, and whether systemd reports the agent active.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from model.records import PlanResult

INSTANCE = "i-0agent0000000000"
TOKEN = "pul-0123456789abcdef0123456789abcdef01234567"
ARCHIVE = "customer-managed-workflow-agent-v2.2.0-linux-x64.tar.gz"

STUBS = {
    "aws": r"""
echo "aws $*" >> "$STATE/calls"
case "$1 $2" in
  "secretsmanager get-secret-value")
    if [ -e "$STATE/secret-error" ]; then cat "$STATE/secret-error" >&2; exit 254; fi
    cat "$STATE/secret" ;;
  "autoscaling "*) [ ! -e "$STATE/autoscaling-error" ] || exit 254 ;;
  *) echo "stub aws: unexpected $*" >&2; exit 2 ;;
esac
""",
    "curl": r"""
echo "curl $*" >> "$STATE/calls"
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift ;;
    -H|-X|--retry) shift ;;
    http*) url="$1" ;;
  esac
  shift
done
case "$url" in
  */latest/api/token) echo "imds-session" ;;
  */meta-data/instance-id) cat "$STATE/instance-id" ;;
  */meta-data/autoscaling/target-lifecycle-state) cat "$STATE/lifecycle" ;;
  https://github.com/*)
    src="$STATE/releases/${url#https://github.com/pulumi/customer-managed-workflow-agent/releases/download/}"
    [ -e "$src" ] || { echo "curl: (22) 404 $url" >&2; exit 22; }
    cp "$src" "$out" ;;
  *) echo "stub curl: unexpected $url" >&2; exit 2 ;;
esac
""",
    "docker": r"""
echo "docker $*" >> "$STATE/calls"
if [ "$*" = "ps --quiet" ]; then
  left=$(cat "$STATE/busy")
  if [ "$left" -gt 0 ]; then echo "c0ffee"; echo $((left - 1)) > "$STATE/busy"; fi
fi
""",
    "systemctl": r"""
echo "systemctl $*" >> "$STATE/calls"
if [ "$1" = "is-active" ] && [ -e "$STATE/agent-down" ]; then exit 3; fi
exit 0
""",
    "dnf": 'echo "dnf $*" >> "$STATE/calls"',
    "logger": "exit 0",
    # Each sleep is one poll; the lifecycle state turns to Terminated after `terminate-after` polls.
    "sleep": r"""
echo "sleep $*" >> "$STATE/calls"
n=$(( $(cat "$STATE/sleeps") + 1 )); echo "$n" > "$STATE/sleeps"
if [ -e "$STATE/terminate-after" ] && [ "$n" -ge "$(cat "$STATE/terminate-after")" ]; then
  echo Terminated > "$STATE/lifecycle"
fi
""",
}


@dataclass
class Host:
    root: Path
    state: Path
    bin: Path

    def run(self, script: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "AGENT_HOST_ROOT": str(self.root),
            "STATE": str(self.state),
            "TMPDIR": str(self.state),
            "HOME": str(self.state),
        }
        return subprocess.run(
            ["bash", str(script)], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    @property
    def calls(self) -> list[str]:
        path = self.state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def aws(self, *words: str) -> list[str]:
        return [c for c in self.calls if c.startswith("aws ") and all(w in c.split() for w in words)]

    def lifecycle(self, hook: str, result: str) -> list[str]:
        return self.aws("complete-lifecycle-action", hook, result, INSTANCE)

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")


def _release(folder: Path, *, listed: bool = True, corrupt: bool = False) -> None:
    """The v2.2.0 linux-x64 archive (a fake agent in the release's layout) and checksums.txt."""
    build = folder / "build" / "customer-managed-workflow-agent"
    build.mkdir(parents=True)
    for binary in ("customer-managed-workflow-agent", "workflow-runner", "workflow-runner-embeddable"):
        (build / binary).write_text("#!/bin/sh\nexit 0\n")
        (build / binary).chmod(0o755)
    (build / "pulumi-workflow-agent.yaml.sample").write_text("token: REPLACE_WITH_TOKEN\n")
    out = folder / "v2.2.0"
    out.mkdir()
    with tarfile.open(out / ARCHIVE, "w:gz") as tar:
        tar.add(build, arcname="customer-managed-workflow-agent")
    digest = hashlib.sha256((out / ARCHIVE).read_bytes()).hexdigest()
    if corrupt:
        digest = "0" * 64
    lines = [f"{'1' * 64}  customer-managed-workflow-agent-v2.2.0-linux-arm64.tar.gz"]
    if listed:
        lines.append(f"{digest}  {ARCHIVE}")
    (out / "checksums.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path / "root", tmp_path / "state", tmp_path / "bin")
    for folder in (h.root, h.state, h.bin):
        folder.mkdir()
    for name, body in STUBS.items():
        (h.bin / name).write_text(f"#!/bin/bash\n{body}")
        (h.bin / name).chmod(0o755)
    (h.state / "instance-id").write_text(INSTANCE)
    (h.state / "lifecycle").write_text("InService")
    (h.state / "secret").write_text(TOKEN + "\n")
    (h.state / "busy").write_text("0")
    (h.state / "sleeps").write_text("0")
    _release(h.state / "releases")
    return h


@pytest.fixture(scope="module")
def boot_script(tmp_path_factory: pytest.TempPathFactory, plans: dict[str, PlanResult]) -> Path:
    """The user data of prod's agent launch template, exactly as the plan records it."""
    (template,) = [
        r
        for r in plans["prod"].of_type("aws:ec2/launchTemplate:LaunchTemplate")
        if r.name.endswith("deploy-agent-lt")
    ]
    path = tmp_path_factory.mktemp("user-data") / "user-data.sh"
    path.write_bytes(base64.b64decode(template.get("userData")))
    return path


def _unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(path.read_text())
    return unit


def test_a_good_boot_installs_the_release_and_puts_the_host_in_service(host: Host, boot_script: Path) -> None:
    done = host.run(boot_script)
    assert done.returncode == 0, done.stderr
    config = host.file("/opt/pulumi-agent/pulumi-workflow-agent.yaml")
    assert f'token: "{TOKEN}"' in config.read_text()
    assert "workflow_runners_embeddable: /opt/pulumi-agent/workflow-runner-embeddable" in config.read_text()
    assert config.stat().st_mode & 0o777 == 0o600
    assert os.access(host.file("/opt/pulumi-agent/customer-managed-workflow-agent"), os.X_OK)
    agent = _unit(host.file("/etc/systemd/system/pulumi-agent.service"))
    assert agent["Service"]["ExecStart"] == "/opt/pulumi-agent/customer-managed-workflow-agent run"
    assert agent["Service"]["Restart"] == "always"
    assert agent["Unit"]["OnFailure"] == "pulumi-agent-unhealthy.service"
    assert int(agent["Unit"]["StartLimitBurst"]) >= 2 and "docker.service" in agent["Unit"]["Requires"]
    unhealthy = _unit(host.file("/etc/systemd/system/pulumi-agent-unhealthy.service"))
    assert unhealthy["Service"]["ExecStart"] == "/usr/local/lib/pulumi-agent/report-unhealthy"
    assert "systemctl enable --now pulumi-agent.service pulumi-agent-drain.service" in host.calls
    # In service only once the agent has stayed up: the launch hook is completed last.
    assert host.lifecycle("agent-running", "CONTINUE") == [host.aws()[-1]]
    assert not host.lifecycle("agent-running", "ABANDON")
    assert host.calls.index("systemctl is-active --quiet pulumi-agent.service") < host.calls.index(
        host.lifecycle("agent-running", "CONTINUE")[0]
    )
    assert TOKEN not in "".join(host.calls) + done.stdout + done.stderr


def test_the_token_is_read_by_the_name_the_identity_project_gives_its_secret(
    host: Host, boot_script: Path, identity_plans: dict[str, PlanResult]
) -> None:
    """The pool and its token secret are the identity project's; the host knows the secret only
    by its derived name (components/deploy_roles.py agent_token_secret_name)."""
    (secret,) = identity_plans["prod"].of_type("aws:secretsmanager/secret:Secret")
    assert host.run(boot_script).returncode == 0
    (call,) = host.aws("secretsmanager", "get-secret-value")
    words = call.split()
    name = words[words.index("--secret-id") + 1]
    assert name == secret.get("name") == "eks-platform-prod/deploy-agent-token"
    assert words[words.index("--region") + 1] == "eu-west-1"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda s: (s / "secret").write_text("\n"), "is empty"),
        (lambda s: (s / "secret").write_text("None\n"), "is empty"),
        (lambda s: (s / "secret").write_text('pul-1" \n'), "is not a Pulumi access token"),
        (
            lambda s: (s / "secret-error").write_text(
                "An error occurred (AccessDeniedException) when calling the GetSecretValue operation"
            ),
            "AccessDeniedException",
        ),
    ],
    ids=["empty", "null", "not-a-token", "unreadable"],
)
def test_no_usable_token_fails_loudly_and_abandons_the_host(
    host: Host, boot_script: Path, setup, message: str
) -> None:
    setup(host.state)
    done = host.run(boot_script)
    assert done.returncode != 0
    assert message in done.stderr and "FAILED" in done.stderr, done.stderr
    assert len(host.lifecycle("agent-running", "ABANDON")) == 1
    assert not host.lifecycle("agent-running", "CONTINUE")
    assert not host.file("/opt/pulumi-agent/pulumi-workflow-agent.yaml").exists()
    assert not [c for c in host.calls if c.startswith("systemctl enable --now pulumi-agent")]


@pytest.mark.parametrize(
    ("release", "message"),
    [
        ({"corrupt": True}, "FAILED"),
        ({"listed": False}, "does not list customer-managed-workflow-agent-v2.2.0-linux-x64.tar.gz"),
    ],
    ids=["checksum-mismatch", "not-in-checksums"],
)
def test_an_archive_that_does_not_match_its_checksum_is_refused(
    host: Host, boot_script: Path, release: dict[str, bool], message: str
) -> None:
    releases = host.state / "releases"
    subprocess.run(["rm", "-rf", str(releases)], check=True)
    _release(releases, **release)
    done = host.run(boot_script)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert host.lifecycle("agent-running", "ABANDON") and not host.lifecycle("agent-running", "CONTINUE")
    assert not host.file("/opt/pulumi-agent/customer-managed-workflow-agent").exists()


def test_a_missing_release_is_refused(host: Host, boot_script: Path) -> None:
    (host.state / "releases" / "v2.2.0" / ARCHIVE).unlink()
    done = host.run(boot_script)
    assert done.returncode == 22 and "404" in done.stderr
    assert host.lifecycle("agent-running", "ABANDON")


def test_an_agent_that_does_not_stay_up_keeps_the_host_out_of_service(host: Host, boot_script: Path) -> None:
    (host.state / "agent-down").touch()
    done = host.run(boot_script)
    assert done.returncode != 0 and "the agent did not stay up" in done.stderr
    assert host.lifecycle("agent-running", "ABANDON") and not host.lifecycle("agent-running", "CONTINUE")


def test_a_failing_agent_reports_its_host_unhealthy(host: Host, boot_script: Path) -> None:
    assert host.run(boot_script).returncode == 0
    done = host.run(host.file("/usr/local/lib/pulumi-agent/report-unhealthy"))
    assert done.returncode == 0, done.stderr
    (call,) = host.aws("set-instance-health")
    assert call.split()[call.split().index("--instance-id") + 1] == INSTANCE
    assert "--health-status Unhealthy --no-should-respect-grace-period" in call


def test_the_drain_holds_termination_until_the_job_ends(host: Host, boot_script: Path) -> None:
    assert host.run(boot_script).returncode == 0
    start = len(host.calls)
    (host.state / "sleeps").write_text("0")
    (host.state / "terminate-after").write_text("3")  # in service for three polls, then terminating
    (host.state / "busy").write_text("2")  # a job runs for two more polls
    done = host.run(host.file("/usr/local/lib/pulumi-agent/drain"))
    assert done.returncode == 0, done.stderr
    calls = host.calls[start:]
    stop = calls.index("systemctl stop pulumi-agent.service")
    (release,) = [i for i, c in enumerate(calls) if "agent-idle" in c and "complete-lifecycle-action" in c]
    heartbeats = [i for i, c in enumerate(calls) if "record-lifecycle-action-heartbeat" in c]
    assert [c for c in calls if c.startswith("sleep 15")] == ["sleep 15"] * 3, "polled until Terminated"
    assert len(heartbeats) == 2 and max(heartbeats) < stop < release
    assert "--lifecycle-action-result CONTINUE" in calls[release] and INSTANCE in calls[release]
    assert release == len(calls) - 1


def test_the_drain_lets_an_idle_host_go_at_once(host: Host, boot_script: Path) -> None:
    assert host.run(boot_script).returncode == 0
    (host.state / "lifecycle").write_text("Terminated")
    done = host.run(host.file("/usr/local/lib/pulumi-agent/drain"))
    assert done.returncode == 0, done.stderr
    assert not host.aws("record-lifecycle-action-heartbeat")
    assert len(host.lifecycle("agent-idle", "CONTINUE")) == 1


def test_no_instance_id_fails_loudly(host: Host, boot_script: Path) -> None:
    """IMDS answering no instance ID stopped the script before its ERR trap existed: silent, the
    hook's timeout abandoning the host 10 minutes later (review 19, round 5). Now the FAILED line
    says so; without an ID the abandon call itself cannot name the host, so the timeout still ends it."""
    (host.state / "instance-id").unlink()
    done = host.run(boot_script)
    assert done.returncode != 0
    assert "FAILED" in done.stderr and "no instance ID" in done.stderr, done.stderr
    assert not host.lifecycle("agent-running", "CONTINUE")
    assert not [c for c in host.calls if c.startswith("systemctl enable --now pulumi-agent")]
