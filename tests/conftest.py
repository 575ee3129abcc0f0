"""Shared fixtures: the repository root and one run of the whole workflow on config/ci.yaml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
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


# `make test` runs two pytest-xdist workers: one CI-config run keeps its 2 cores busy only part of the time (one
# chain of jobs at its head and tail), and the unit tests fill the other core. Every test that reads `ci_run` must
# go to one worker, so that the session makes that run once, not once per worker; the others go by file, so that
# a module's fixtures are built once. xdist's own `--dist loadgroup` cannot do it under pytest 9.2 (it renames
# `item._nodeid`, which pytest no longer reads), so each worker writes every test's group to a file at collection
# (GROUPS_ENV names it) and the controller's scheduler reads it: xdist's LoadScopeScheduling, with our groups as
# its scopes (the largest first: the CI-config group starts at once).
GROUPS_ENV = "QTL_PYTEST_GROUPS"


def _group_of(item) -> str:
    return "ci_run" if "ci_run" in item.fixturenames else item.path.name


def _controls_workers(config) -> bool:
    return (
        getattr(config, "workerinput", None) is None
        and config.pluginmanager.hasplugin("xdist")
        and bool(config.getoption("numprocesses", None))
        and config.getoption("dist", "no") == "loadgroup"
    )


def pytest_configure(config):
    if _controls_workers(config):
        os.environ[GROUPS_ENV] = tempfile.mkdtemp(prefix="qtl-groups-")  # the workers, started later, inherit it


def pytest_unconfigure(config):
    if _controls_workers(config) and os.environ.get(GROUPS_ENV):
        shutil.rmtree(os.environ.pop(GROUPS_ENV), ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker and os.environ.get(GROUPS_ENV):
        groups = {item.nodeid: _group_of(item) for item in items}
        (Path(os.environ[GROUPS_ENV]) / f"{worker}.json").write_text(json.dumps(groups))


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist (e.g. .venv-slurm) skips it
def pytest_xdist_make_scheduler(config, log):
    if not os.environ.get(GROUPS_ENV):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        """Scopes are our groups (read once every worker has collected, which is when xdist schedules)."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                files = sorted(Path(os.environ[GROUPS_ENV]).glob("*.json"))
                self.groups = json.loads(files[0].read_text()) if files else {}
            return self.groups.get(nodeid, nodeid)

    return ByGroup(config, log)


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """A copy of the repository in which the whole workflow has run on config/ci.yaml (real MNIST)."""
    workdir = copy_repo(tmp_path_factory.mktemp("ci") / "repo")
    # every target at once, so one timeout covers them all: on a shared machine (load ~10) it ran past 20 minutes
    result = run_snakemake(workdir, *ci_targets(), timeout=5400)
    (workdir / CI_LOG).write_text(result.stderr)
    return workdir
