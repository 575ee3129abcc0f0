"""Shared fixtures: the repository root and one run of the whole workflow on config/ci.yaml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# Snakemake's log of the shared CI-config run (`ci_run`), in its workdir
CI_LOG = "ci_run.log"
# What a checkout holds besides generated files; copied so tests never touch the developer's results/.
IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", ".snakemake", "results", "ledger", "__pycache__", "*.egg-info", ".pytest_cache"
)


def copy_repo(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=IGNORE)
    (dest / "results").mkdir(exist_ok=True)
    return dest


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1200) -> subprocess.CompletedProcess:
    result = subprocess.run(
        # targets and flags first: --configfile takes every following word as a config file
        [SNAKEMAKE, *args, "--cores", "2", "--configfile", "config/ci.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "results").rglob("*.log")))
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stderr[-6000:]}\n{logs[-8000:]}")
    return result


def ci_targets() -> list[str]:
    """What the integration tests read, made by one Snakemake run so that its scheduler overlaps the targets
    (one target's serial chain, e.g. autoencoder -> latents -> circuit inputs, beside another's jobs) where
    separate runs leave a core idle at each one's tail: the default target (MNIST), the experiments, the
    readings (MNIST), the study, and, where Fashion-MNIST's offline source is there (Debian's package, via
    apt-get), its replication (its provenance and landing page need every output of its default target) and the
    systems (004 reads its latents). Tests still run their own targets; in this workdir those are no-ops. What
    the run printed (e.g. the study's plan, printed before its first job) is in the workdir's `CI_LOG`."""
    targets = ["all", "experiments", "readings", "study"]
    if shutil.which("apt-get") is not None:
        fashion = ["results/fashion_mnist/provenance.json", "results/fashion_mnist/report_landing.rst"]
        targets += ["systems", *fashion]
    return targets


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """`make test` runs two pytest-xdist workers (`--dist loadgroup`): one CI-config run keeps its 2 cores busy
    only part of the time (one chain of jobs at its head and tail), and the unit tests fill the other core. Every
    test that reads `ci_run` goes to one worker, so the session makes that run once, not once per worker; the
    others go by file, so a module's fixtures are built once. The groups are only read under `--dist loadgroup`."""
    for item in items:
        group = "ci_run" if "ci_run" in item.fixturenames else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """A copy of the repository in which the whole workflow has run on config/ci.yaml (real MNIST)."""
    workdir = copy_repo(tmp_path_factory.mktemp("ci") / "repo")
    # every target at once, so one timeout covers them all: on a shared machine (load ~10) it ran past 20 minutes
    result = run_snakemake(workdir, *ci_targets(), timeout=5400)
    (workdir / CI_LOG).write_text(result.stderr)
    return workdir
