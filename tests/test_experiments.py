"""The experiment suite: variants, the run plan, intervals; and a reduced run on config/ci.yaml."""

import numpy as np
import pandas as pd
import pytest

from conftest import run_snakemake
from qtlmnist import experiments, quantum


def test_plan_shares_runs_between_experiments():
    plan = experiments.plan([1, 2, 3], [16, 1024], 1024)
    assert plan["seeds"] == [("latent64", 1), ("aer1024_seed1", 1), ("latent64", 2), ("aer1024_seed2", 2), ("latent64", 3), ("aer1024_seed3", 3)]
    assert plan["shots"] == [("aer16_seed1", 1), ("aer1024_seed1", 1), ("exact", 1)]
    runs = experiments.all_runs([1, 2, 3], [16, 1024], 1024)
    assert len(runs) == len(set(runs)) == 6 + 2 + 1 + 4  # seeds; aer16, exact; noisy; pca5, random32, first, chunks
    assert all(experiments.VARIANT.match(v) for v, _ in runs)


def test_intervals():
    mean, std, low, high = experiments.t_interval(np.array([0.70, 0.72, 0.74]))
    assert (round(mean, 6), round(std, 6)) == (0.72, 0.02)
    assert round(high - mean, 4) == round(4.302653 * 0.02 / np.sqrt(3), 4)  # t(0.975, 2) = 4.3027
    assert experiments.t_interval(np.array([0.5]))[2:] == (0.5, 0.5)
    low, high = experiments.wilson_interval(0.9, 10000)
    assert 0.893 < low < 0.9 < high < 0.907


def test_variants_from_inputs_and_latents():
    rng = np.random.default_rng(0)
    latents = {s: np.abs(rng.normal(size=(n, 64))) for s, n in (("train", 40), ("val", 10), ("test", 12))}
    reduction = quantum.fit_reduction(latents["train"], "pca", 5)
    inputs = {s: quantum.apply_reduction(v, reduction, 5) for s, v in latents.items()}
    kwargs = dict(shots=64, noise_backend="FakeManilaV2", random_seed=0, n_qubits=5, threads=1)
    pca5 = experiments.variant_features("pca5", latents, inputs, **kwargs)
    np.testing.assert_array_equal(pca5["test"], inputs["test"][:, 0, :])
    exact = experiments.variant_features("exact", latents, inputs, **kwargs)
    np.testing.assert_allclose(exact["val"], quantum.exact_probabilities(inputs["val"][:, 0, :]))
    random32 = experiments.variant_features("random32", latents, inputs, **kwargs)
    assert random32["train"].shape == (40, 32) and np.abs(random32["train"]).max() <= 1
    aer = experiments.variant_features("aer64_seed3", latents, inputs, **kwargs)
    np.testing.assert_array_equal(aer["test"], quantum.circuit_features(inputs["test"], 64, quantum.split_seed(3, "test")))
    chunks = experiments.variant_features("chunks_seed1", latents, inputs, **kwargs)
    assert chunks["train"].shape == (40, 416)
    with pytest.raises(ValueError, match="unknown experiment variant 'aer_seed1'"):
        experiments.variant_features("aer_seed1", latents, inputs, **kwargs)


def test_device_noise_moves_counts_away_from_the_exact_distribution():
    x = np.random.default_rng(1).random((200, 5))
    exact = quantum.exact_probabilities(x)
    noiseless = quantum.aer_features(x, 4096, 1)
    noisy = quantum.aer_features(x, 4096, 1, noise_backend="FakeManilaV2")
    l1 = lambda f: np.abs(f - exact).sum(axis=1).mean()  # noqa: E731
    assert l1(noisy) > 2 * l1(noiseless)
    np.testing.assert_allclose(noisy.sum(axis=1), 1.0)


def test_resplit_keeps_every_row_once():
    train = (np.arange(80, dtype=float)[:, None], np.arange(80) % 10)
    val = (np.arange(80, 100, dtype=float)[:, None], np.arange(20) % 10)
    (x_train, _), (x_val, y_val) = experiments.resplit(train, val, 0.2, seed=4)
    assert sorted(np.concatenate([x_train, x_val])[:, 0]) == list(range(100))
    np.testing.assert_array_equal(np.bincount(y_val), np.full(10, 2))


@pytest.mark.integration
def test_reduced_experiment_suite_on_ci_config(ci_run):
    run_snakemake(ci_run, "experiments")
    out = ci_run / "results/experiments"
    seeds = pd.read_csv(out / "seeds.csv")
    assert sorted(zip(seeds["model"], seeds["seed"])) == [("baseline", 1), ("baseline", 2), ("hybrid", 1), ("hybrid", 2)]
    summary = pd.read_csv(out / "seeds_summary.csv")
    assert len(summary) == 6 and (summary["ci95_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci95_high"]).all()
    assert list(pd.read_csv(out / "shots.csv")["shots"].astype(str)) == ["16", "128", "exact"]
    assert list(pd.read_csv(out / "noise.csv")["setting"]) == ["noiseless", "device noise"]
    controls = pd.read_csv(out / "controls.csv")
    assert list(controls["n_features"]) == [32, 5, 32, 32, 64, 32, 416]
    assert controls["test_accuracy"].between(0, 1).all()
    replication = pd.read_csv(out / "replication.csv")
    assert replication["over seeds (95% CI)"].fillna("").str.contains(r"\(n=2\)").sum() == 6
    for name in ("seeds", "shots", "controls"):
        assert (ci_run / f"results/figures/experiments_{name}.png").stat().st_size > 10_000
