"""Shared fixtures: the repository root and one run of the whole workflow on config/ci.yaml."""

from __future__ import annotations

import collections
import contextlib
import fcntl
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


# `make test` runs two pytest-xdist workers: the CI-config run keeps its 2 cores busy only part of the time (one
# chain of jobs at its head and tail), and the unit tests fill the other core. Its tests fall in three groups:
# - "ci_run": the tests that read the run or run more targets in its workdir (no-ops there, but each Snakemake
#   takes the workdir's lock), all on one worker, first in the queue, so that the run starts at once;
# - the other tests, by file (a module's fixtures are built once);
# - "ci_copy": the tests marked `ci_copy` that read the run but work in copies of it (reruns, the module
#   deployment), one group per test (per file where they share a module fixture), last in the queue: the
#   worker that finished its unit tests takes them, waiting for the run (`ci_run` is made once per session,
#   under a lock, in a folder both workers see), instead of queueing them behind it on the run's worker.
# xdist's own `--dist loadgroup` cannot group under pytest 9.2 (it renames `item._nodeid`, which pytest no
# longer reads), so each worker writes every test's group to a file at collection (GROUPS_ENV names it) and the
# controller's scheduler reads it: xdist's LoadScopeScheduling, with our groups as its scopes, in our order.
GROUPS_ENV = "QTL_PYTEST_GROUPS"
CI_COPY = "ci_copy"


def _group_of(item) -> str:
    if "ci_run" not in item.fixturenames:
        return item.path.name
    if item.get_closest_marker(CI_COPY) is None:
        return "ci_run"
    # a module-scoped fixture (test_module's deployment) is built once per worker: keep its users together
    shared = any(defs[-1].scope == "module" for defs in item._fixtureinfo.name2fixturedefs.values() if defs)
    return f"{CI_COPY}:{item.path.name}" if shared else f"{CI_COPY}:{item.nodeid.split('[')[0]}"


def _rank(group: str, size: int) -> tuple[int, int]:
    """A group's place in the queue: the run's first, the unit tests by file, then the copies of the run, the
    larger groups first (the module deployment's, the longest), so that the two workers end together."""
    return (0, 0) if group == "ci_run" else (2, -size) if group.startswith(CI_COPY) else (1, 0)


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
        config.option.loadscopereorder = False  # our order (below), not xdist's largest-scope-first


def pytest_unconfigure(config):
    if _controls_workers(config) and os.environ.get(GROUPS_ENV):
        shutil.rmtree(os.environ.pop(GROUPS_ENV), ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    # the same order on every worker and without xdist: the run's group, the unit tests, the copies of the run
    groups = {item.nodeid: _group_of(item) for item in items}
    sizes = collections.Counter(groups.values())
    items.sort(key=lambda item: _rank(groups[item.nodeid], sizes[groups[item.nodeid]]))
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker and os.environ.get(GROUPS_ENV):
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


@contextlib.contextmanager
def _locked(path: Path):
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory) -> Path:
    """A copy of the repository in which the whole workflow has run on config/ci.yaml (real MNIST). Made once
    per session: under xdist in the session's folder that both workers share, by whichever asks first, while the
    other waits on the lock; a failed run fails every test that reads it, with the run's message."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-N/popen-gwK: pytest-N is this session's, shared by its workers
    folder = base / "ci_shared"
    folder.mkdir(exist_ok=True)
    workdir, done, failed = folder / "repo", folder / "done", folder / "failed"
    with _locked(folder / "lock"):
        if failed.exists():
            pytest.fail(failed.read_text())
        if not done.exists():
            copy_repo(workdir)
            try:
                # every target at once, so one timeout covers them all: on a shared machine (load ~10) it ran past
                # 20 minutes
                result = run_snakemake(workdir, *ci_targets(), timeout=5400)
            except (pytest.fail.Exception, subprocess.TimeoutExpired) as error:
                failed.write_text(f"the shared CI-config run failed:\n{error}")
                raise
            (workdir / CI_LOG).write_text(result.stderr)
            done.touch()
    return workdir
