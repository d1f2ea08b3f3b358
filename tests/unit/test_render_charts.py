"""`make charts` (tools/charts.py): Helm's own pull, the sha256 lock, offline on loopback only.

A test chart is packaged with helm_python.package and served from a Helm repository index
(helm_python.repo_index_generate) by an HTTP server on 127.0.0.1 that the test starts and stops.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest

from components.helm import ChartSpec
from model import charts as chart_cache
from model.charts import sha256
from stacks.data import read_lock
from tools import charts
from tools.charts import PullError, fetch, sync
from tools.mocks import ROOT

CHART = ROOT / "tests" / "charts" / "widgets"


class Repo:
    """A Helm HTTP repository on 127.0.0.1 serving the packages in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []
        repo = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                repo.requests.append(self.path)

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, chart_dir: Path) -> None:
        """(Re)package `chart_dir` into the repository and regenerate its index."""
        helm_python.package(chart_dir, destination=self.folder)
        (self.folder / "index.yaml").unlink(missing_ok=True)
        helm_python.repo_index_generate(self.folder, base_url=self.url)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    served = tmp_path / "repo"
    served.mkdir()
    r = Repo(served)
    thread = threading.Thread(target=r.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        thread.join(timeout=5)


def altered_chart(tmp_path: Path) -> Path:
    """The same chart name and version with different bytes (a republished package)."""
    copy = tmp_path / "altered" / "widgets"
    shutil.copytree(CHART, copy)
    (copy / "values.yaml").write_text("size: 4\nmystery: false\n")
    return copy


def test_first_pull_records_the_sha256_and_later_pulls_verify_it(repo: Repo, tmp_path: Path) -> None:
    repo.publish(CHART)
    specs = {"widgets": ChartSpec(chart="widgets", version="0.1.0", repo=repo.url)}
    cache, lock = tmp_path / "cache", tmp_path / "charts-lock.yaml"

    assert sync(specs, cache, lock) == ({"widgets": "recorded"}, {})
    package = cache / "widgets-0.1.0.tgz"
    assert read_lock(lock)["widgets"].sha256 == sha256(package) == sha256(repo.folder / "widgets-0.1.0.tgz")
    assert "sha256" in lock.read_text() and lock.read_text().startswith("# Written by `make charts`")

    pulls = len(repo.requests)
    assert sync(specs, cache, lock) == ({"widgets": "verified"}, {})
    assert len(repo.requests) == pulls, "a cached package that matches the lock is not pulled again"

    package.unlink()
    assert sync(specs, cache, lock) == ({"widgets": "verified"}, {})
    assert len(repo.requests) > pulls and package.exists()


def test_a_republished_package_is_refused_and_the_cache_keeps_the_locked_one(
    repo: Repo, tmp_path: Path
) -> None:
    repo.publish(CHART)
    spec = ChartSpec(chart="widgets", version="0.1.0", repo=repo.url)
    cache, lock = tmp_path / "cache", tmp_path / "charts-lock.yaml"
    sync({"widgets": spec}, cache, lock)
    locked = read_lock(lock)["widgets"].sha256

    repo.publish(altered_chart(tmp_path))
    (cache / "widgets-0.1.0.tgz").write_bytes(b"corrupted")  # force a pull
    done, errors = sync({"widgets": spec}, cache, lock)
    assert done == {} and "the pulled package has sha256" in errors["widgets"]
    assert locked in errors["widgets"]
    assert read_lock(lock)["widgets"].sha256 == locked, "the lock is never rewritten by a mismatch"
    assert (cache / "widgets-0.1.0.tgz").read_bytes() == b"corrupted", "the refused package is discarded"


def test_a_version_bump_records_the_new_package_and_drops_stale_entries(repo: Repo, tmp_path: Path) -> None:
    repo.publish(CHART)
    cache, lock = tmp_path / "cache", tmp_path / "charts-lock.yaml"
    sync({"widgets": ChartSpec(chart="widgets", version="0.1.0", repo=repo.url)}, cache, lock)
    bumped = tmp_path / "bumped"
    bumped.mkdir()
    helm_python.package(CHART, destination=bumped, version="0.2.0")
    shutil.copy(bumped / "widgets-0.2.0.tgz", repo.folder)
    (repo.folder / "index.yaml").unlink()
    helm_python.repo_index_generate(repo.folder, base_url=repo.url)

    done, errors = sync({"shop": ChartSpec(chart="widgets", version="0.2.0", repo=repo.url)}, cache, lock)
    assert (done, errors) == ({"shop": "recorded"}, {})
    assert set(read_lock(lock)) == {"shop"} and read_lock(lock)["shop"].version == "0.2.0"


def test_an_unknown_version_is_an_error_naming_chart_and_repository(repo: Repo, tmp_path: Path) -> None:
    repo.publish(CHART)
    spec = ChartSpec(chart="widgets", version="9.9.9", repo=repo.url)
    with pytest.raises(PullError, match=rf"could not pull widgets 9\.9\.9 from {repo.url}: .*not found"):
        fetch(spec, tmp_path / "cache", None)


def test_unreachable_repository_exits_1_with_a_clean_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A loopback port nobody listens on: refused at once, no network involved.
    with http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as probe:
        dead = f"http://127.0.0.1:{probe.server_address[1]}"
    lock = tmp_path / "charts-lock.yaml"
    monkeypatch.setattr(
        charts, "chart_specs", lambda: {"w": ChartSpec(chart="widgets", version="0.1.0", repo=dead)}
    )
    monkeypatch.setattr(charts, "LOCK_FILE", lock)
    monkeypatch.setattr(charts, "sync", functools.partial(sync, lock_path=lock))
    assert charts.main(["--cache", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert f"could not pull widgets 0.1.0 from {dead}" in err and "Traceback" not in err
    assert not lock.exists(), "nothing pulled, nothing locked"


def test_a_malformed_lock_is_refused_with_its_name(tmp_path: Path) -> None:
    lock = tmp_path / "charts-lock.yaml"
    lock.write_text("widgets:\n  chart: widgets\n  sha: abc\n")
    with pytest.raises(ValueError, match=r"charts-lock\.yaml: malformed entry"):
        read_lock(lock)


def test_the_cache_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKS_PLATFORM_CHARTS", str(tmp_path))
    assert chart_cache.cache_dir() == tmp_path
    monkeypatch.delenv("EKS_PLATFORM_CHARTS")
    assert chart_cache.cache_dir() == ROOT / ".charts"
    assert (
        chart_cache.package_name("oci://public.ecr.aws/karpenter/karpenter", "1.14.1")
        == "karpenter-1.14.1.tgz"
    )
