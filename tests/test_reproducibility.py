"""Golden results for config/ci.yaml, and a run killed during the quantum stage that resumes to the same bytes."""

import base64
import contextlib
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

GOLDEN = json.loads((ROOT / "tests/expected/ci_golden.json").read_text())


@pytest.mark.integration
def test_ci_run_matches_the_golden_file(ci_run):
    assert repro.check_run(ci_run / "results/mnist", GOLDEN) == []


def test_golden_comparison_catches_a_changed_hash_or_metric_and_allows_the_tolerances():
    summary = copy.deepcopy({key: GOLDEN[key] for key in ("exact_arrays", "metrics", "latents", "inputs")})
    assert repro.compare_with_golden(summary, GOLDEN) == []
    # within the tolerances: what another CPU's oneDNN code path may do
    summary["metrics"]["hybrid"]["test_accuracy"] += 0.5 * repro.TOLERANCES["accuracy"]
    summary["latents"]["mean"] *= 1 + 0.5 * repro.TOLERANCES["latent_mean_relative"]
    summary["inputs"]["std"][2] -= 0.5 * repro.TOLERANCES["input_moments"]
    assert repro.compare_with_golden(summary, GOLDEN) == []
    # beyond them, or any change of an exact array
    summary["exact_arrays"]["data/test.npz"]["features"] = "0" * 64
    summary["metrics"]["autoencoder"]["val_mse"] += 2 * repro.TOLERANCES["mse"]
    summary["inputs"]["mean"][4] += 2 * repro.TOLERANCES["input_moments"]
    problems = repro.compare_with_golden(summary, GOLDEN)
    assert len(problems) == 3, problems
    assert problems[0].startswith("data/test.npz:features sha256 0000")
    assert "metrics/autoencoder.json val_mse" in problems[1] and "circuit input 4 mean" in problems[2]


def test_hash_table_marks_differences():
    lines, differences = repro.hash_table({"a": "1" * 64, "b": "2" * 64}, {"a": "1" * 64, "b": "3" * 64, "c": "4" * 64})
    assert differences == 2
    assert lines[1].endswith("yes") and lines[2].endswith("NO") and "missing" in lines[3]


def upstream_copy(ci_run: Path, dest: Path) -> Path:
    """A copy of the repository holding ci_run's results up to the circuit inputs (mtimes kept), so that only the
    quantum stage and what follows it run again."""
    workdir = copy_repo(dest)
    shutil.copytree(ci_run / "results", workdir / "results", dirs_exist_ok=True)
    for generated in ("quantum/shards", "quantum/train.npz", "quantum/val.npz", "quantum/test.npz"):
        target = workdir / "results/mnist" / generated
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return workdir


QUANTUM_TARGETS = ["results/mnist/quantum/train.npz", "results/mnist/quantum/val.npz", "results/mnist/quantum/test.npz"]
# More shards than ci.yaml (12 jobs), so that the quantum stage is still running when its first shard is done;
# shots and seed stay ci.yaml's, so ci_run's own counts are the uninterrupted reference.
SLOW_QUANTUM = "quantum:\n  shards: 4\n  chunk_size: 50\n"


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
        with contextlib.suppress(ValueError, UnicodeDecodeError):  # not a marker Snakemake wrote
            markers.add(base64.b64decode(marker.name, validate=True).decode())
    shards = workdir / "results/mnist/quantum/shards"
    # pathlib's glob also matches a writer's hidden temp file (.name.npz.*.tmp.npz), which the rerun deletes
    finished = [p for p in shards.glob("*.npz") if not p.name.startswith(".")]
    return {p.name: p.stat().st_mtime_ns for p in finished if f"results/mnist/quantum/shards/{p.name}" not in markers}


@pytest.mark.ci_copy
@pytest.mark.integration
def test_killed_run_resumes_only_unfinished_jobs_with_identical_results(ci_run, tmp_path):
    # The reference is ci_run's quantum stage, run uninterrupted with ci.yaml's single shard: the resumed run in
    # 4 shards must give its bytes, so this also checks that sharding changes no count.
    interrupted = upstream_copy(ci_run, tmp_path / "interrupted")
    (interrupted / "slow.yaml").write_text(SLOW_QUANTUM)

    shards = interrupted / "results/mnist/quantum/shards"
    process = subprocess.Popen(
        snakemake_command(),
        cwd=interrupted,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
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

    resumed_hashes, reference = repro.result_hashes(interrupted / "results"), repro.result_hashes(ci_run / "results")
    gathered = [target.removeprefix("results/") for target in QUANTUM_TARGETS]
    assert {name: resumed_hashes[name] for name in gathered} == {name: reference[name] for name in gathered}
    assert len(list(shards.glob("*.npz"))) == 12  # 3 splits x 4 shards, every one there
    assert not list((interrupted / "results").rglob(".*.tmp*")), "a killed writer's temp file was left behind"


# The experiments' Aer counts of the main pipeline's circuit inputs with ci.yaml's shots and shot seed 1 (not
# quantum.seed, 42): what the quantum stage writes with its seed flipped to 1 (the same quantum.circuit_features
# and split_seed), already made in ci_run by the experiments, so the seed case needs no run of its own.
SEED_1_COUNTS = "results/mnist/experiments/features/aer128_seed1"


@pytest.mark.ci_copy
@pytest.mark.integration
@pytest.mark.parametrize("change", ["seed", "shots"])
def test_a_flipped_seed_or_changed_shots_fails_the_golden_check(ci_run, tmp_path, change):
    workdir = upstream_copy(ci_run, tmp_path / "repo")
    if change == "seed":
        counts = [f"{SEED_1_COUNTS}/{split}.npz" for split in ("train", "val", "test")]
        # made by ci_run's experiments target; never run Snakemake in ci_run from here: this test may run on
        # another worker (conftest, ci_copy) while that worker's tests run targets there
        assert all((ci_run / c).is_file() for c in counts), "ci_run's experiments make the seed-1 counts"
        for source, target in zip(counts, QUANTUM_TARGETS):
            shutil.copy2(ci_run / source, workdir / target)
    else:
        (workdir / "change.yaml").write_text("quantum:\n  shots: 64\n")
        subprocess.run(
            [SNAKEMAKE, *QUANTUM_TARGETS, "--cores", "2", "--configfile", "config/ci.yaml", "change.yaml"],
            cwd=workdir,
            check=True,
            capture_output=True,
        )
    problems = repro.check_run(workdir / "results/mnist", GOLDEN)
    assert [p.split(":")[0] for p in problems] == ["quantum/train.npz", "quantum/val.npz", "quantum/test.npz"]


@pytest.mark.ci_copy
@pytest.mark.integration
def test_another_cpu_code_path_still_matches_the_golden_file(ci_run, tmp_path):
    # ONEDNN_MAX_CPU_ISA=AVX2 makes TensorFlow take the code path of a CPU without AVX-512: on an AVX-512
    # machine the trained weights, latents and accuracies come out different, as on another laptop.
    workdir = copy_repo(tmp_path / "repo")
    shutil.copytree(
        ci_run / "results/mnist/raw", workdir / "results/mnist/raw"
    )  # the data stage is not under test here
    subprocess.run(
        [
            SNAKEMAKE,
            "results/mnist/metrics/baseline.json",
            "results/mnist/metrics/hybrid.json",
            "--cores",
            "2",
            "--configfile",
            "config/ci.yaml",
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
        env=os.environ | {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    )
    assert repro.check_run(workdir / "results/mnist", GOLDEN) == []
