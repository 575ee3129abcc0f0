"""Golden results for config/ci.yaml, and a run killed during the quantum stage that resumes to the same bytes."""

import base64
import copy
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, SNAKEMAKE, copy_repo
from tools import repro

GOLDEN = json.loads((ROOT / "tests/expected/ci_metrics.json").read_text())


@pytest.mark.integration
def test_ci_run_matches_the_golden_file(ci_run):
    assert repro.compare_with_golden(repro.golden_summary(ci_run / "results"), GOLDEN) == []


def test_golden_comparison_catches_a_changed_hash_or_metric():
    summary = copy.deepcopy(GOLDEN)
    assert repro.compare_with_golden(summary, GOLDEN) == []
    summary["arrays"]["quantum/test.npz"]["features"] = "0" * 64
    summary["metrics"]["hybrid"]["test_accuracy"] += 1e-3
    problems = repro.compare_with_golden(summary, GOLDEN)
    assert len(problems) == 2
    assert problems[0].startswith("quantum/test.npz:features sha256 0000")
    assert "metrics/hybrid.json test_accuracy" in problems[1]


def test_hash_table_marks_differences():
    lines, differences = repro.hash_table({"a": "1" * 64, "b": "2" * 64}, {"a": "1" * 64, "b": "3" * 64, "c": "4" * 64})
    assert differences == 2
    assert lines[1].endswith("yes") and lines[2].endswith("NO") and "missing" in lines[3]


QUANTUM_TARGETS = ["results/quantum/train.npz", "results/quantum/val.npz", "results/quantum/test.npz"]
# More shots and shards than ci.yaml, so the quantum stage lasts long enough to be interrupted.
SLOW_QUANTUM = "quantum:\n  shots: 16384\n  shards: 4\n  chunk_size: 50\n"


def snakemake_command(*extra):
    return [SNAKEMAKE, *QUANTUM_TARGETS, *extra, "--cores", "2", "--configfile", "config/ci.yaml", "slow.yaml"]


def finished_shards(workdir: Path) -> dict[str, int]:
    """Shard files whose job Snakemake recorded as done, with their mtimes.

    A job killed between its (atomic) write and that record keeps an incomplete marker,
    .snakemake/incomplete/<base64 of the output path> (--summary does not show it), and is rightly rerun,
    since nothing can tell that its output is complete.
    """
    markers = set()
    for marker in (workdir / ".snakemake/incomplete").glob("*"):
        try:
            markers.add(base64.b64decode(marker.name, validate=True).decode())
        except (ValueError, UnicodeDecodeError):
            pass
    shards = workdir / "results/quantum/shards"
    return {p.name: p.stat().st_mtime_ns for p in shards.glob("*.npz") if f"results/quantum/shards/{p.name}" not in markers}


@pytest.mark.integration
def test_killed_run_resumes_only_unfinished_jobs_with_identical_results(tmp_path):
    reference = copy_repo(tmp_path / "reference")
    interrupted = copy_repo(tmp_path / "interrupted")
    for workdir in (reference, interrupted):
        (workdir / "slow.yaml").write_text(SLOW_QUANTUM)
    subprocess.run(snakemake_command(), cwd=reference, check=True, capture_output=True)

    shards = interrupted / "results/quantum/shards"
    process = subprocess.Popen(snakemake_command(), cwd=interrupted, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None and not finished_shards(interrupted):
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)  # a hard crash: no clean-up by Snakemake
    process.wait()
    finished = finished_shards(interrupted)
    assert 1 <= len(finished) < 12, sorted(finished)

    # The documented recovery after a hard crash: release Snakemake's lock, run again.
    subprocess.run(snakemake_command("--unlock"), cwd=interrupted, check=True, capture_output=True)
    resumed = subprocess.run(snakemake_command("--rerun-incomplete"), cwd=interrupted, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name, mtime in finished.items():  # finished shards were not recomputed
        assert (shards / name).stat().st_mtime_ns == mtime, f"{name} was rerun"
    assert "rule train_autoencoder" not in resumed.stderr
    assert "rule quantum_features" in resumed.stderr

    assert repro.result_hashes(interrupted / "results") == repro.result_hashes(reference / "results")
    assert not list((interrupted / "results").rglob(".*.tmp*")), "a killed writer's temp file was left behind"


@pytest.mark.integration
def test_flipping_one_seed_fails_the_golden_comparison(ci_run, tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    shutil.copytree(ci_run / "results", workdir / "results", dirs_exist_ok=True)
    (workdir / "flip.yaml").write_text("quantum:\n  seed: 43\n")
    subprocess.run(
        # The copy has no Snakemake metadata to notice the changed params, so the quantum jobs are forced.
        [SNAKEMAKE, *QUANTUM_TARGETS, "--forcerun", "quantum_features", "--cores", "2", "--configfile", "config/ci.yaml", "flip.yaml"],
        cwd=workdir, check=True, capture_output=True,
    )
    problems = repro.compare_with_golden(repro.golden_summary(workdir / "results"), GOLDEN)
    assert sorted(p.split(":")[0] for p in problems) == ["quantum/test.npz", "quantum/train.npz", "quantum/val.npz"]
