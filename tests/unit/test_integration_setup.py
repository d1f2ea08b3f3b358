"""The integration harness itself, offline: its stack config stays valid, the GitOps folder it syncs
exists, its workloads select what they mean to, its waits time out, and it refuses to run (non-zero,
naming what is missing) instead of skipping once it has been asked to run."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from stacks.config import PROJECT, ConfigError, validate
from tests.integration import conftest as it
from tests.integration import test_ephemeral_stack as checks
from tests.schemas import validate_custom_resource
from tools.mocks import ROOT, run_program

STACK = "it-0000abcd"


def raw_config(**delivery: Any) -> dict[str, str]:
    config = it.it_config("eu-west-1")
    config["eks-platform:delivery"] = {**config["eks-platform:delivery"], **delivery}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def test_the_ephemeral_stack_config_is_valid_and_small() -> None:
    cfg = validate(raw_config(), PROJECT, STACK, "integration config")
    assert cfg.network.nat_strategy == "single" and not cfg.production and not cfg.protect
    assert cfg.deployments.enabled is False and cfg.delivery.services == ()
    assert cfg.capacity_report().max_nodes <= 40


def test_the_ephemeral_stack_plans_offline_and_syncs_a_folder_that_exists() -> None:
    result = run_program(STACK, raw_config())
    assert not any(r.protect for r in result.records), "an ephemeral stack must be destroyable"
    assert result.outputs["clusterName"] == f"eks-platform-{STACK}"
    (root,) = [r for r in result.records if r.name.endswith("-gitops-root")]
    path = root.inputs["spec"]["source"]["path"]
    assert path == it.IT_GITOPS_PATH and (ROOT / path).is_dir()


def test_a_stack_without_its_gitops_folder_fails_validation_saying_what_to_create() -> None:
    raw = raw_config()
    delivery = json.loads(raw["eks-platform:delivery"])
    del delivery["gitops"]["path"]
    raw["eks-platform:delivery"] = json.dumps(delivery)
    with pytest.raises(ConfigError) as info:
        validate(raw, PROJECT, STACK, "Pulumi.it-0000abcd.yaml")
    (issue,) = info.value.issues
    assert issue.key == "eks-platform:delivery.gitops.path"
    assert f"create platform/gitops/{STACK}/" in issue.message and "delivery.gitops.path" in issue.message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("platform/gitops/nowhere", "does not exist in this repository"),
        ("/etc", "relative folder inside the repository"),
        ("platform/../..", "relative folder inside the repository"),
        ("", "relative folder inside the repository"),
    ],
)
def test_a_bad_gitops_path_is_rejected(path: str, message: str) -> None:
    raw = raw_config(gitops={"path": path})
    with pytest.raises(ConfigError, match=message):
        validate(raw, PROJECT, STACK, "integration config")


def test_the_committed_stacks_sync_their_own_folder() -> None:
    for stack in ("dev", "prod"):
        cfg = validate(raw_config(gitops={}), PROJECT, stack, "integration config")
        assert cfg.delivery.gitops.folder(stack) == f"platform/gitops/{stack}"


####################################################################################################
# The Karpenter check: its own NodePool, a workload only that pool can host, claims by selector


def test_the_test_node_pool_is_a_valid_nodepool_on_the_platforms_node_class() -> None:
    pool = checks.it_node_pool()
    validate_custom_resource(pool)
    template = pool["spec"]["template"]
    assert template["spec"]["nodeClassRef"]["name"] == "default"
    key, value = checks.IT_LABEL
    assert template["metadata"]["labels"][key] == value
    assert {"key": key, "value": value, "effect": "NoSchedule"} in template["spec"]["taints"]
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert f"karpenter.sh/nodepool={pool['metadata']['name']}" == checks.IT_CLAIMS


def test_the_workload_fits_only_the_test_pool() -> None:
    pool, workload = checks.it_node_pool(), checks.it_workload()
    pod = workload["spec"]["template"]
    labels = pool["spec"]["template"]["metadata"]["labels"]
    assert pod["spec"]["nodeSelector"].items() <= labels.items(), "selects the pool's label"
    (taint,) = pool["spec"]["template"]["spec"]["taints"]
    (toleration,) = pod["spec"]["tolerations"]
    assert {k: toleration[k] for k in ("key", "value", "effect")} == taint
    assert checks.IT_LABEL[0] in pod["metadata"]["labels"], "the workload carries the test label"


def _claim(name: str, node: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"nodeName": node} if node else {}}


def _pod(node: str | None, phase: str = "Running") -> dict[str, Any]:
    return {"spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def test_claims_hosting_picks_only_claims_whose_node_runs_the_workload() -> None:
    claims = [_claim("a", "node-a"), _claim("b", "node-b"), _claim("launching", None)]
    assert checks.claims_hosting(claims, [_pod("node-a")]) == {"a"}
    assert checks.claims_hosting(claims, [_pod(None, "Pending")]) == set()
    assert checks.claims_hosting(claims, [_pod("node-b", "Pending")]) == set()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_for_returns_the_first_truthy_result() -> None:
    clock, answers = FakeClock(), iter([set(), set(), {"claim-1"}])
    got = checks.wait_for(lambda: next(answers), "x", timeout=60, clock=clock, sleep=clock.sleep)
    assert got == {"claim-1"} and clock.now == 20


def test_wait_for_times_out_naming_what_it_waited_for_and_the_last_answer() -> None:
    clock = FakeClock()
    with pytest.raises(AssertionError, match=r"timed out after 30s waiting for the claims \(last: set\(\)\)"):
        checks.wait_for(set, "the claims", timeout=30, clock=clock, sleep=clock.sleep)


def test_the_hpa_example_image_is_pinned_to_the_architecture_it_is_built_for() -> None:
    # registry.k8s.io/hpa-example is amd64-only; the default NodePool offers arm64 first.
    source = (ROOT / "tests" / "integration" / "test_ephemeral_stack.py").read_text()
    assert checks.HPA_IMAGE == "registry.k8s.io/hpa-example"
    assert '"nodeSelector": {"kubernetes.io/arch": "amd64"}' in source


####################################################################################################
# Opt-in and prerequisites


def test_skips_unless_asked_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(it.OPT_IN, raising=False)
    assert "make integration" in (it.skip_reason() or "")
    monkeypatch.setenv(it.OPT_IN, "1")
    assert it.skip_reason() is None


def test_names_every_missing_prerequisite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    missing = "\n".join(it.missing_prerequisites())
    assert "`pulumi` CLI is not installed" in missing and "`kubectl` CLI is not installed" in missing
    assert "no usable AWS credentials (Unable to locate credentials)" in missing


def test_make_integration_without_prerequisites_exits_non_zero_saying_what_is_missing(
    tmp_path: Any,
) -> None:
    env = {
        "PATH": "/nonexistent",
        it.OPT_IN: "1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(tmp_path),
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "tests/integration",
        "-m",
        "integration",
        "-x",
        "-p",
        "no:cacheprovider",
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == it.PREREQUISITE_EXIT, result.stdout[-2000:] + result.stderr[-2000:]
    assert "cannot run the integration tests" in result.stdout
    assert "`pulumi` CLI is not installed" in result.stdout and "no usable AWS credentials" in result.stdout


####################################################################################################
# What the leak check searches for is what the platform sets


def test_the_ebs_csi_driver_tags_volumes_with_the_cluster_and_the_stack() -> None:
    result = run_program(STACK, raw_config())
    (addon,) = [
        r for r in result.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "aws-ebs-csi-driver"
    ]
    controller = json.loads(addon.inputs["configurationValues"])["controller"]
    cluster = result.outputs["clusterName"]
    # tools/leak_check.py finds PVC volumes by `kubernetes.io/cluster/<k8sTagClusterId>` or by
    # the `platform:stack` tag; both must be what the driver writes.
    assert controller["k8sTagClusterId"] == cluster == f"{PROJECT}-{STACK}"
    assert controller["extraVolumeTags"]["platform:stack"] == STACK
    assert controller["extraVolumeTags"]["platform:project"] == PROJECT
