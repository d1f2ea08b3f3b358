"""Pull every pinned Helm chart into the local cache and lock each package's sha256.

    python -m tools.charts [--cache DIR]        (make charts)

Reads platform/charts.yaml and downloads each chart's released package from its own repository with
Helm's engine (`helm_python.pull`: HTTP repositories and `oci://` references alike) into the cache
(`.charts/`, or the folder named by `EKS_PLATFORM_CHARTS`). On a package's first pull its sha256 is
recorded in platform/charts-lock.yaml; every later pull must produce the same bytes, otherwise the
package is refused and the cache keeps what it had. A cached package that matches the lock is not
pulled again. The plan (analysis/render.py) renders from this cache; the deploy itself still pulls
from the upstream repositories.

Exit codes: 0 every chart cached and locked, 1 a chart could not be pulled or did not match its lock.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import helm_python
import yaml
from rich.console import Console
from rich.markup import escape

from components.helm import ChartSpec
from model.charts import CACHE_ENV, cache_dir, locked_sha, package_name, sha256
from stacks.data import LOCK_FILE, LOCK_HEADER, LockEntry, chart_specs, read_lock


def write_lock(entries: Mapping[str, LockEntry], path: Path = LOCK_FILE) -> None:
    body = {key: {"chart": e.chart, "version": e.version, "sha256": e.sha256} for key, e in entries.items()}
    path.write_text(LOCK_HEADER + yaml.safe_dump(body, sort_keys=True), encoding="utf-8")


def helm_pull(spec: ChartSpec, destination: Path) -> None:
    """Download one chart package into `destination` with Helm's own pull (HTTP repo or OCI)."""
    if spec.repo:
        helm_python.pull(spec.chart, destination=destination, version=spec.version, repo_url=spec.repo)
    else:
        helm_python.pull(spec.chart, destination=destination, version=spec.version)


class PullError(Exception):
    """A chart that could not be pulled or did not match its lock; the message says which and why."""


Puller = Callable[[ChartSpec, Path], None]


def fetch(spec: ChartSpec, cache: Path, expected: str | None, puller: Puller = helm_pull) -> tuple[Path, str]:
    """Make sure the cache holds `spec`'s package with the `expected` sha256 (any, when None).

    Returns the package path and its sha256. A cached package that matches is kept without a pull.
    A pulled package that differs from `expected` is discarded and raises PullError.
    """
    target = cache / package_name(spec.chart, spec.version)
    if expected and target.exists() and sha256(target) == expected:
        return target, expected
    cache.mkdir(parents=True, exist_ok=True)
    source = f"{spec.chart} {spec.version}" + (f" from {spec.repo}" if spec.repo else "")
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pull-") as tmp:
        try:
            puller(spec, Path(tmp))
        except helm_python.HelmError as err:
            raise PullError(f"could not pull {source}: {err}") from err
        pulled = sorted(Path(tmp).glob("*.tgz"))
        if len(pulled) != 1:
            raise PullError(f"pulling {source} produced {len(pulled)} packages, not 1")
        digest = sha256(pulled[0])
        if expected and digest != expected:
            raise PullError(
                f"{source}: the pulled package has sha256 {digest}, but charts-lock.yaml "
                f"recorded {expected}. Refused: the published package changed (or the lock is wrong)."
            )
        pulled[0].replace(target)
    return target, digest


def sync(
    specs: Mapping[str, ChartSpec], cache: Path, lock_path: Path = LOCK_FILE, puller: Puller = helm_pull
) -> tuple[dict[str, str], dict[str, str]]:
    """Pull every chart, record new packages in the lock, verify known ones.

    Returns (status by release key: "verified" | "recorded", error by release key). The lock keeps
    the entries of charts that failed and drops those of releases no longer in charts.yaml.
    """
    lock = read_lock(lock_path)
    done: dict[str, str] = {}
    errors: dict[str, str] = {}
    new_lock: dict[str, LockEntry] = {}
    for key, spec in sorted(specs.items()):
        expected = locked_sha(lock, spec)
        try:
            _, digest = fetch(spec, cache, expected, puller)
        except PullError as err:
            errors[key] = str(err)
            if key in lock:
                new_lock[key] = lock[key]
            continue
        done[key] = "verified" if expected else "recorded"
        new_lock[key] = LockEntry(chart=spec.chart, version=spec.version, sha256=digest)
    if new_lock != lock:
        write_lock(new_lock, lock_path)
    return done, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make charts", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help=f"cache folder (default: ${CACHE_ENV} or .charts/)")
    args = parser.parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    cache = args.cache or cache_dir()
    try:
        done, failed = sync(chart_specs(), cache)
    except ValueError as err:
        errors.print(f"[red]{escape(str(err))}[/]")
        return 1
    for key, status in done.items():
        console.print(f"[green]✓[/] {key}: {status}")
    for key, message in failed.items():
        errors.print(f"[red]✗ {key}[/]: {escape(message)}", soft_wrap=True)
    console.print(f"{len(done)} chart(s) in {cache}, {len(failed)} failed.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
