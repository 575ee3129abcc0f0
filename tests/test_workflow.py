"""The whole Snakemake workflow on config/ci.yaml (real MNIST, a few hundred images), plus lint, bad config
and a corrupted raw file."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, SNAKEMAKE, copy_repo, run_snakemake
from qtlmnist import report
from qtlmnist.data import DATASETS, md5sum

pytestmark = pytest.mark.integration

FIGURES = [
    "autoencoder_reconstruction",
    "quantum_circuit",
    "training_curves",
    "paper_vs_measured",
    *(f"confusion_{m}_{s}" for m in ("baseline", "hybrid") for s in ("val", "test")),
]


def test_raw_files_are_the_verified_release(ci_run):
    for name, expected in DATASETS["mnist"].files.items():
        assert md5sum(ci_run / "results/mnist/raw" / name) == expected


def test_splits_and_latents_have_the_configured_sizes(ci_run):
    sizes = {}
    for split in ("train", "val", "test"):
        with np.load(ci_run / f"results/mnist/data/{split}.npz", allow_pickle=False) as data:
            assert data["features"].shape[1] == 784 and data["features"].dtype == np.float32
            sizes[split] = len(data["labels"])
        with np.load(ci_run / f"results/mnist/autoencoder/latents_{split}.npz", allow_pickle=False) as data:
            assert data["features"].shape == (sizes[split], 64) and data["features"].min() >= 0
    assert sizes == {"train": 2700, "val": 300, "test": 1000}
    with np.load(ci_run / "results/mnist/data/train_augmented.npz", allow_pickle=False) as data:
        assert data["features"].shape == (5400, 784)


def test_quantum_features_are_distributions_with_labels(ci_run):
    for split, n in (("train", 2700), ("val", 300), ("test", 1000)):
        with np.load(ci_run / f"results/mnist/quantum/{split}.npz", allow_pickle=False) as data:
            features, labels = data["features"], data["labels"]
        assert features.shape == (n, 32) and labels.shape == (n,)
        np.testing.assert_allclose(features.sum(axis=1), 1.0)
        counts = features * 128  # ci.yaml: 128 shots, so every entry is a whole count
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
        with np.load(ci_run / f"results/mnist/data/{split}.npz", allow_pickle=False) as data:
            np.testing.assert_array_equal(labels, data["labels"])


def test_models_learn_visibly(ci_run):
    # Floors with a wide margin below what config/ci.yaml reaches on every CPU code path tried (AE validation MSE
    # 0.039 against 0.067 for the mean image; test accuracy baseline 0.86-0.87, hybrid 0.56-0.57, chance 0.1):
    # a pipeline that stopped learning fails here, whatever the golden file says.
    with np.load(ci_run / "results/mnist/data/train.npz", allow_pickle=False) as data:
        mean_image = data["features"].mean(axis=0)
    with np.load(ci_run / "results/mnist/data/val.npz", allow_pickle=False) as data:
        mean_image_mse = float(np.mean((data["features"] - mean_image) ** 2))
    ae = json.loads((ci_run / "results/mnist/metrics/autoencoder.json").read_text())
    assert ae["val_mse"] < 0.75 * mean_image_mse
    baseline, hybrid = (
        json.loads((ci_run / f"results/mnist/metrics/{m}.json").read_text()) for m in ("baseline", "hybrid")
    )
    assert baseline["test_accuracy"] > 0.7
    assert hybrid["test_accuracy"] > 0.3
    assert baseline["test_accuracy"] > hybrid["test_accuracy"] + 0.15


def test_metrics_have_per_class_detail_and_histories(ci_run):
    for model, width in (("baseline", 64), ("hybrid", 32)):
        m = json.loads((ci_run / f"results/mnist/metrics/{model}.json").read_text())
        assert m["n_features"] == width
        for split in ("train", "val", "test"):
            confusion = np.array(m[f"{split}_confusion"])
            assert confusion.sum() == m[f"{split}_n"]
            assert np.trace(confusion) / m[f"{split}_n"] == pytest.approx(m[f"{split}_accuracy"])
            per_class = np.diag(confusion) / confusion.sum(axis=1)
            np.testing.assert_allclose(m[f"{split}_per_class_accuracy"], per_class)
        history = pd.read_csv(ci_run / f"results/mnist/classifier/{model}_history.csv")
        assert len(history) == 15 and {"accuracy", "val_accuracy", "learning_rate"} <= set(history.columns)


def test_replication_table_has_every_claim(ci_run):
    table = pd.read_csv(ci_run / "results/mnist/replication.csv")
    assert list(table["claim"]) == [c.claim for c in report.CLAIMS]
    assert set(table["verdict"]) <= {"reproduced", "not reproduced"}
    markdown = (ci_run / "results/mnist/replication.md").read_text()
    assert all(c.claim in markdown for c in report.CLAIMS) and "contradicts itself" in markdown


@pytest.mark.parametrize("name", FIGURES)
def test_figures_are_non_empty_images(ci_run, name):
    folder = "results/figures" if name == "quantum_circuit" else "results/mnist/figures"  # the circuit is shared
    image = matplotlib.image.imread(ci_run / folder / f"{name}.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01  # not a blank canvas


def test_every_rule_wrote_its_log_and_benchmark(ci_run):
    benchmarks = list((ci_run / "results/mnist/benchmarks").rglob("*.tsv"))
    logs = list((ci_run / "results/mnist/logs").rglob("*.log"))
    assert len(benchmarks) == len(logs) >= 20
    assert "Epoch 15/15" in (ci_run / "results/mnist/logs/autoencoder/train_autoencoder.log").read_text()


def test_rerun_has_nothing_to_do(ci_run):
    result = run_snakemake(ci_run, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_lint_and_format_are_clean():
    lint = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    snakefmt = str(Path(sys.executable).with_name("snakefmt"))
    fmt = subprocess.run([snakefmt, "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    ruff = str(Path(sys.executable).with_name("ruff"))  # its rule set: pyproject.toml [tool.ruff]
    for command in ([ruff, "check", "."], [ruff, "format", "--check", "."]):
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_bad_config_fails_before_any_job_naming_the_key(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    (workdir / "bad.yaml").write_text("quantum:\n  shots: -1\n")
    result = subprocess.run(
        [SNAKEMAKE, "--cores", "1", "--configfile", "bad.yaml"], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "quantum.shots = -1: -1 is less than the minimum of 1" in result.stderr
    assert list((workdir / "results").iterdir()) == []


@pytest.mark.ci_copy
def test_corrupted_raw_file_stops_the_stage_that_reads_it(ci_run, tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    raw = workdir / "results/mnist/raw"
    shutil.copytree(ci_run / "results/mnist/raw", raw)
    target = raw / "train-images-idx3-ubyte"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0x01
    target.write_bytes(bytes(data))
    result = run_snakemake(workdir, "results/mnist/data/train.npz", check=False)
    assert result.returncode != 0
    log = (workdir / "results/mnist/logs/data/preprocess.log").read_text()
    assert f"checksum mismatch for {Path('results/mnist/raw/train-images-idx3-ubyte')}" in log
    assert "expected md5 6bbc9ace898e44ae57da46a324031adb" in log
    assert not (workdir / "results/mnist/data/train.npz").exists()


def test_no_data_source_lists_what_was_tried_and_how_to_fix(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    (workdir / "nosource.yaml").write_text(
        f"data:\n  mnist:\n    local_dir: {tmp_path / 'nowhere'}\n    mirrors: ['http://127.0.0.1:9/mnist']\n"
        "    package: false\n"
    )
    result = subprocess.run(
        [SNAKEMAKE, "results/mnist/data/train.npz", "--cores", "1", "--configfile", "config/ci.yaml", "nosource.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    log = (workdir / "results/mnist/logs/data/fetch_data.log").read_text()
    assert "could not obtain MNIST from any source" in log
    assert f"local folder {tmp_path / 'nowhere'}" in log and "mirror http://127.0.0.1:9/mnist" in log
    assert "set `data.mnist.local_dir`" in log
    assert not (workdir / "results/mnist/raw").exists() or not any((workdir / "results/mnist/raw").iterdir())
    assert not (workdir / "results/mnist/data").exists()


@pytest.mark.ci_copy
def test_hand_edited_features_with_nan_stop_the_classifier_naming_the_file(ci_run, tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    shutil.copytree(ci_run / "results", workdir / "results", dirs_exist_ok=True)  # keeps mtimes
    path = workdir / "results/mnist/quantum/train.npz"
    with np.load(path, allow_pickle=False) as data:
        features, labels = data["features"].copy(), data["labels"]
    features[3, 7] = np.nan
    np.savez(path, features=features, labels=labels)
    result = run_snakemake(workdir, "results/mnist/metrics/hybrid.json", check=False)
    assert result.returncode != 0
    log = (workdir / "results/mnist/logs/classify/train_classifier_hybrid.log").read_text()
    assert "results/mnist/quantum/train.npz: array 'features' holds 1 NaN/inf value(s) (first at flat index 103)" in log
    assert not (workdir / "results/mnist/metrics/hybrid.json").exists()


def planned_jobs(workdir: Path, change: str) -> dict[str, int]:
    """Jobs a dry run of `all` and `experiments` plans after `change` (YAML) is merged over config/ci.yaml,
    from Snakemake's 'Job stats' table; the two target rules themselves are left out."""
    (workdir / "change.yaml").write_text(change)
    result = subprocess.run(
        [SNAKEMAKE, "all", "experiments", "--dry-run", "--cores", "2", "--configfile", "config/ci.yaml", "change.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    rows = [line.split() for line in table.splitlines()[3:] if line.strip()]
    return {rule: int(count) for rule, count in rows if rule not in ("all", "experiments")}


REPORT_JOBS = {
    "plot_confusion": 4,
    "plot_training_curves": 1,
    "replication_table": 1,
    "report_landing": 1,
    "experiment_tables": 1,
    "provenance_replication": 1,
    "provenance_experiments": 1,
}


@pytest.mark.parametrize(
    "change, expected",
    [
        # the workflow's classifiers and their figures; the experiments' runs carry their own seeds
        ("classifier:\n  seed: 7\n", {"train_classifier": 2, **REPORT_JOBS}),
        (
            "experiments:\n  noise_backend: FakeLimaV2\n",
            {"experiment_features": 1, "experiment_run": 1, "experiment_tables": 1, "provenance_experiments": 1},
        ),
        (
            "report:\n  accuracy_tolerance_pp: 3.0\n",
            {
                "replication_table": 1,
                "report_landing": 1,
                "experiment_tables": 1,
                "provenance_replication": 1,
                "provenance_experiments": 1,
            },
        ),
        (
            "autoencoder:\n  threads: 2\nclassifier:\n  threads: 2\nquantum:\n  threads: 2\n"
            "experiments:\n  threads: 2\n",
            {},
        ),
        (
            # counts of every split and shard, the hybrid (not the baseline), and the experiments that read shots:
            # aer64 for both seeds (new names), the noisy, first and chunks counts
            "quantum:\n  shots: 64\n",
            {
                "quantum_features": 3,
                "gather_quantum": 3,
                "train_classifier": 1,
                "plot_confusion": 2,
                "plot_training_curves": 1,
                "replication_table": 1,
                "report_landing": 1,
                "experiment_features": 5,
                "experiment_run": 5,
                "experiment_tables": 1,
                # each whole-pipeline seed's counts (3 splits, one shard each), their hybrid, and the paired table
                "pipeline_features": 6,
                "pipeline_gather": 6,
                "pipeline_classifier": 2,
                "pipeline_table": 1,
                "provenance_replication": 1,
                "provenance_experiments": 1,
            },
        ),
    ],
    ids=["classifier.seed", "experiments.noise_backend", "report.tolerance", "threads", "quantum.shots"],
)
def test_changing_one_key_plans_only_the_jobs_that_read_it(ci_run, change, expected):
    # ci_run made `all` and `experiments` (conftest.ci_targets): only what the change reruns is planned
    assert planned_jobs(ci_run, change) == expected


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="Fashion-MNIST's offline source is Debian's package")
def test_fashion_mnist_runs_beside_mnist_without_touching_it(ci_run):
    mnist = {p: p.stat().st_mtime_ns for p in (ci_run / "results/mnist").rglob("*") if p.is_file()}
    run_snakemake(ci_run, "--config", "dataset=fashion_mnist")
    out = ci_run / "results/fashion_mnist"
    for name, expected in DATASETS["fashion_mnist"].files.items():
        assert md5sum(out / "raw" / name) == expected
    # its own augmentation settings took effect: flips on, unlike MNIST's
    from qtlmnist.augment import augment

    settings = yaml.safe_load((ROOT / "config/config.yaml").read_text())["augment"]["fashion_mnist"]
    assert settings["horizontal_flip"] is True
    with np.load(out / "data/train.npz", allow_pickle=False) as data:
        expected_x, _ = augment(data["features"], data["labels"], **settings)
    with np.load(out / "data/train_augmented.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["features"], expected_x)
    table = pd.read_csv(out / "replication.csv")
    assert set(table["verdict"].iloc[:-1]) == {report.NOT_COMPARABLE}
    assert (out / "replication.md").read_text().startswith("Sarkar 2024 (paper: MNIST), measured on Fashion-MNIST")
    assert json.loads((out / "metrics/baseline.json").read_text())["test_accuracy"] > 0.6  # learns here too
    # MNIST's results were neither rewritten nor planned again
    assert {p: p.stat().st_mtime_ns for p in (ci_run / "results/mnist").rglob("*") if p.is_file()} == mnist
    again = run_snakemake(ci_run, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr


def scheduled_models() -> dict[str, str]:
    """Each rule's resource model, as its `resources: **scheduled("...")` (or `scheduled_per_seed`) line names it
    in workflow/rules."""
    models = {}
    for path in (ROOT / "workflow/rules").glob("*.smk"):
        for rule, body in re.findall(
            r"(?ms)^(?:rule|checkpoint) (\w+):\n(.*?)(?=^rule |^checkpoint |\Z)", path.read_text()
        ):
            found = re.search(r'scheduled(?:_per_seed)?\("(\w+)"\)', body)
            if found:
                models[rule] = found.group(1)
    for path in (ROOT / "workflow/rules").glob("*.smk"):  # a reused rule keeps its original's resources
        for original, name in re.findall(r"(?m)^use rule (\w+) as (\w+) with:", path.read_text()):
            models[name] = models[original]
    return models


def test_every_job_stayed_within_what_it_asks_a_scheduler_for(ci_run):
    # A cluster kills a job that outgrows its mem_mb or runtime: every job of the CI run must have fit.
    from qtlmnist import resources
    from tools.bench import rule_names

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for section, values in yaml.safe_load((ROOT / "config/ci.yaml").read_text()).items():
        config[section] = config[section] | values if isinstance(values, dict) else values
    models = scheduled_models()
    rules = rule_names(ROOT / "workflow/rules")
    assert set(rules) - set(models) <= {"all", "experiments", "systems", "readings", "study"}, (
        "a rule declares no resources"
    )
    checked = 0
    for path in (ci_run / "results").rglob("benchmarks/**/*.tsv"):
        rule = max((r for r in rules if path.stem == r or path.stem.startswith(r + "_")), key=len)
        if rule not in models:
            continue
        measured = pd.read_csv(path, sep="\t").iloc[-1]
        asked = resources.declared(models[rule], config)
        assert measured["max_rss"] < asked["mem_mb"], f"{path.name}: {measured['max_rss']} MB > {asked['mem_mb']}"
        assert measured["s"] < 60 * asked["runtime"], f"{path.name}: {measured['s']} s > {asked['runtime']} min"
        checked += 1
    assert checked >= 20


def test_html_report_opens_on_the_headline_table(ci_run, tmp_path):
    report_path = tmp_path / "report.html"
    run_snakemake(ci_run, "--report", str(report_path))
    html = report_path.read_text()
    assert "Sarkar 2024, replicated on MNIST" in html and "Paper vs measured" in html
    table = pd.read_csv(ci_run / "results/mnist/replication.csv")
    hybrid_test = table[table["claim"] == "Hybrid test accuracy (~75%)"].iloc[0]
    assert f"{hybrid_test['measured']:.2f} %" in html  # the measured number itself, as the table formats it
    for page in (ROOT / "docs").glob("*.md"):  # links to every findings page, by the question it opens with
        question = page.read_text().splitlines()[0].removeprefix("# ")
        assert question in html and f"../../docs/{page.name}" in html, page.name
