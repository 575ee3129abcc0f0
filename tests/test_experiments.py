"""The experiment suite: variants, the run plan, intervals; and a reduced run on config/ci.yaml."""

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from qiskit.quantum_info import Statevector

from conftest import ROOT, run_snakemake
from qtlmnist import experiments, quantum, variants


def test_plan_shares_runs_between_experiments():
    plan = variants.plan([1, 2, 3], [16, 1024], 1024)
    assert plan["seeds"] == [
        ("latents", 1),
        ("aer1024_seed1", 1),
        ("latents", 2),
        ("aer1024_seed2", 2),
        ("latents", 3),
        ("aer1024_seed3", 3),
    ]
    assert plan["shots"] == [("aer16_seed1", 1), ("aer1024_seed1", 1), ("exact", 1)]
    runs = variants.all_runs([1, 2, 3], [16, 1024], 1024)
    # seeds; aer16, exact; noisy; the controls but the hybrid and the two runs the others have (exact, latents)
    assert len(runs) == len(set(runs)) == 6 + 2 + 1 + len(plan["controls"]) - 3
    assert plan["controls"][0] == ("aer1024_seed1", 1) and ("chunks_seed1", 1) in plan["controls"]
    assert all(re.fullmatch(variants.PATTERN, v) for v, _ in runs)


@pytest.mark.parametrize(
    "name, kind, shots, seed",
    [
        ("latents", "latents", None, None),
        ("aer1024_seed3", "aer", 1024, 3),
        ("noisy_seed12", "noisy", None, 12),
        ("chunks_seed1", "chunks", None, 1),
        ("random", "random", None, None),
    ],
)
def test_variant_names_parse_and_print_back(name, kind, shots, seed):
    variant = variants.Variant.parse(name)
    assert (variant.kind, variant.shots, variant.seed) == (kind, shots, seed)
    assert variant.name == name


@pytest.mark.parametrize("name", ["aer_seed1", "aer16", "latents_seed1", "pca5", "noisy", "exact2", "chunks_seedx"])
def test_malformed_variant_names_are_refused(name):
    assert not re.fullmatch(variants.PATTERN, name)
    with pytest.raises(ValueError, match=f"unknown experiment variant '{name}'"):
        variants.Variant.parse(name)


def test_labels_and_widths_follow_the_config():
    dims = variants.Dims(latent_dim=32, n_qubits=5)
    chunks = variants.Variant.parse("chunks_seed1")
    assert chunks.n_features(dims) == 7 * 32 and "all 32 dims (7 circuits, 224)" in chunks.label(dims)
    assert variants.Variant.parse("latents").label(dims).startswith("32-d latents")
    assert variants.Variant.parse("aer256_seed2").label(dims) == "hybrid: circuit counts (Aer, 256 shots)"
    assert variants.Dims(64, 5).chunk_circuits == 13  # 64 dims padded to 65: 13 circuits of 5


def config_values(shots=1024, noise_backend="FakeManilaV2", random_seed=0, n_qubits=5) -> dict:
    """The config sections variants read, with these values (the readings' section as config/config.yaml has it)."""
    defaults = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    return {
        "quantum": {"shots": shots, "n_qubits": n_qubits},
        "experiments": {"noise_backend": noise_backend, "random_features_seed": random_seed},
        "classifier": defaults["classifier"],
        "readings": defaults["readings"],
    }


def test_settings_carry_only_what_each_variant_reads():
    base, changed = config_values(), config_values(noise_backend="FakeLimaV2")
    for name in ("latents", "inputs", "exact", "random", "aer1024_seed1", "noisy_seed1", "first_seed1", "chunks_seed1"):
        variant = variants.Variant.parse(name)
        same = variant.settings(base) == variant.settings(changed)
        assert same == (variant.kind != "noisy"), name
    assert variants.Variant.parse("aer16_seed1").settings(base) == {}  # shots and seed are in its name
    assert variants.Variant.parse("random").settings(base) == {"random_seed": 0, "width": 32}


# --- every kind of KINDS, whatever it is (a new feature set is covered by these) ------------------------------


def example(kind: str) -> variants.Variant:
    entry = variants.KINDS[kind]
    return variants.Variant(
        kind,
        shots=256 if "shots" in entry.fields else None,
        seed=7 if "seed" in entry.fields else None,
        index=1 if "index" in entry.fields else None,  # reading 1: our pipeline's reading
    )


@pytest.mark.parametrize("kind", list(variants.KINDS))
def test_every_kind_has_a_name_that_parses_back_and_a_label(kind):
    variant = example(kind)
    assert re.fullmatch(variants.PATTERN, variant.name) and variants.Variant.parse(variant.name) == variant
    dims = variants.Dims(latent_dim=16, n_qubits=5)
    others = {other: example(other).label(dims) for other in variants.KINDS if other != kind}
    assert variant.label(dims) and variant.label(dims) not in others.values()  # tables tell the rows apart


@pytest.mark.parametrize("kind", list(variants.KINDS))
def test_every_kind_builds_features_of_its_width_for_every_split_from_its_settings(kind):
    """Its features from small latents and circuit inputs (the pipeline's shapes), with only the config values
    its settings carry: one row per image, as many columns as its width says, finite."""
    rng = np.random.default_rng(2)
    latents = {s: np.abs(rng.normal(size=(n, 16))) for s, n in (("train", 12), ("val", 4), ("test", 5))}
    reduction = quantum.fit_reduction(latents["train"], "pca", 5)
    inputs = {s: quantum.apply_reduction(v, reduction, 5) for s, v in latents.items()}
    variant = example(kind)
    config = config_values(shots=64)
    features = variant.features(latents, inputs, variant.settings(config), threads=1)
    width = variant.n_features(variants.Dims(latent_dim=16, n_qubits=5))
    for split, x in latents.items():
        assert features[split].shape == (len(x), width) and np.isfinite(features[split]).all(), split
    controls = {variants.Variant.parse(name).kind for name, _ in variants.plan([7], [64], 1024)["controls"]}
    assert (kind in controls) == (variants.KINDS[kind].control or kind == "aer")  # the paper's hybrid leads them


def statevector_probabilities(x):
    """The paper's circuit on inputs x (5,), by Qiskit's Statevector: independent of the closed form."""
    circuit, theta = quantum.build_circuit(len(x))
    bound = circuit.remove_final_measurements(inplace=False).assign_parameters(dict(zip(theta, quantum.angles(x))))
    return Statevector(bound).probabilities()


def test_variants_from_inputs_and_latents():
    rng = np.random.default_rng(0)
    latents = {s: np.abs(rng.normal(size=(n, 64))) for s, n in (("train", 40), ("val", 10), ("test", 12))}
    reduction = quantum.fit_reduction(latents["train"], "pca", 5)
    inputs = {s: quantum.apply_reduction(v, reduction, 5) for s, v in latents.items()}
    settings = config_values(shots=64)

    def features(name):
        variant = variants.Variant.parse(name)
        return experiments.variant_features(variant, latents, inputs, variant.settings(settings), threads=1)

    np.testing.assert_array_equal(features("inputs")["test"], inputs["test"][:, 0, :])
    np.testing.assert_array_equal(features("latents")["val"], latents["val"])
    exact = features("exact")["val"]
    reference = np.array([statevector_probabilities(x) for x in inputs["val"][:, 0, :]])
    np.testing.assert_allclose(exact, reference, atol=1e-12)
    random_map = features("random")["train"]
    assert random_map.shape == (40, 32) and np.abs(random_map).max() <= 1
    chunks = features("chunks_seed1")["train"]
    assert chunks.shape == (40, 416)
    np.testing.assert_allclose(chunks.reshape(40, 13, 32).sum(axis=2), 1.0)


def test_aer_variant_counts_follow_the_exact_distribution_and_the_seed_in_the_name():
    # Many shots: Aer's frequencies must sit within shot noise of Statevector's probabilities; another seed in
    # the name must draw other shots.
    rng = np.random.default_rng(3)
    x = rng.uniform(0.05, 0.65, (6, 1, 5))  # away from the fold point 1/sqrt(2)
    inputs = {"train": x, "val": x, "test": x}
    latents = {s: np.zeros((6, 64)) for s in inputs}
    shots = 50_000
    first = experiments.variant_features(variants.Variant.parse(f"aer{shots}_seed3"), latents, inputs, {}, 1)
    other = experiments.variant_features(variants.Variant.parse(f"aer{shots}_seed4"), latents, inputs, {}, 1)
    reference = np.array([statevector_probabilities(row) for row in x[:, 0, :]])
    sigma = np.sqrt(reference * (1 - reference) / shots)
    assert np.all(np.abs(first["test"] - reference) <= 5 * sigma + 1e-9)
    assert not np.array_equal(first["test"], other["test"])
    assert not np.array_equal(first["train"], first["test"])  # each split has its own seed range


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
    out = ci_run / "results/mnist/experiments"
    seeds = pd.read_csv(out / "seeds.csv")
    assert sorted(zip(seeds["model"], seeds["seed"])) == [
        ("baseline", 1),
        ("baseline", 2),
        ("hybrid", 1),
        ("hybrid", 2),
    ]
    summary = pd.read_csv(out / "seeds_summary.csv")
    assert (
        len(summary) == 6
        and (summary["ci95_low"] <= summary["mean"]).all()
        and (summary["mean"] <= summary["ci95_high"]).all()
    )
    shots = pd.read_csv(out / "shots.csv")
    assert list(shots["shots"].fillna(0)) == [16, 128, 0] and shots["variant"].iloc[-1] == "exact"
    assert list(pd.read_csv(out / "noise.csv")["setting"]) == ["noiseless", "device noise"]
    controls = pd.read_csv(out / "controls.csv")
    plan = variants.plan([1, 2], [16, 128], 128)  # config/ci.yaml's seeds and shots lists, quantum.shots
    assert list(controls["variant"]) == [name for name, _ in plan["controls"]]
    # the width of each run's features as its kind states it (64-d latents, 5 qubits): 32, 5, 32, 32, 64, 32, 416
    dims = variants.Dims(latent_dim=64, n_qubits=5)
    assert list(controls["n_features"]) == [
        variants.Variant.parse(name).n_features(dims) for name, _ in plan["controls"]
    ]
    assert controls["test_accuracy"].between(0, 1).all()
    replication = pd.read_csv(out / "replication.csv")
    assert (replication["seeds_n"] == 2).sum() == 6
    for name in ("seeds", "shots", "controls"):
        assert (ci_run / f"results/mnist/figures/experiments_{name}.png").stat().st_size > 10_000
    # whole-pipeline seeds: each retrained its own autoencoder, so the seeds' latents differ
    pipeline = pd.read_csv(out / "pipeline_seeds.csv")
    assert pipeline["seed"].tolist() == [1, 2]
    latents = [np.load(out / f"pipeline/seed_{s}/autoencoder/latents_test.npz")["features"] for s in (1, 2)]
    assert latents[0].shape == latents[1].shape and not np.allclose(latents[0], latents[1])
    comparison = pd.read_csv(out / "pipeline_comparison.csv").iloc[0]
    assert comparison["baseline_mean"] > comparison["hybrid_mean"] + 15  # as the main run: floors, not values
    assert comparison["primary_test"] == "paired_t" and 0 <= comparison["p"] <= 1


def test_pipeline_comparison_pairs_each_seed_and_tests_across_seeds():
    """Hand-computed: 3 seeds, 4 test images. Seed 1: hybrid right on images 0, 1; baseline on 0, 2, 3 ->
    only-hybrid 1, only-baseline 2, McNemar p = P(Binom(3, 1/2) <= 1) * 2 = 1. The differences -25, -25, -50 pp
    all share a sign: the exact sign flip's p is its floor 2/2^3 = 0.25."""
    from qtlmnist.experiments import pipeline_comparison

    hybrid = [np.array([1, 1, 0, 0], bool), np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 0], bool)]
    baseline = [np.array([1, 0, 1, 1], bool), np.array([1, 1, 1, 0], bool), np.array([1, 1, 1, 0], bool)]
    accuracies = {"hybrid": [c.mean() for c in hybrid], "baseline": [c.mean() for c in baseline]}
    per_seed, summary = pipeline_comparison(
        [1, 2, 3], accuracies, {"hybrid": hybrid, "baseline": baseline}, "sign_flip", 0.05
    )
    assert per_seed["difference_pp"].tolist() == [-25.0, -25.0, -50.0]
    assert per_seed[["only_hybrid_right", "only_baseline_right"]].values.tolist() == [[1, 2], [0, 1], [0, 2]]
    assert per_seed["mcnemar_p"].tolist() == pytest.approx([1.0, 1.0, 0.5])
    s = summary.iloc[0]
    assert s["difference_pp_mean"] == pytest.approx(-100 / 3)
    # t interval by hand: sd of (-25, -25, -50) = 14.434, t(0.975, 2) = 4.3027, half-width 35.86
    assert s["difference_pp_high"] - s["difference_pp_mean"] == pytest.approx(4.302653 * 14.433757 / 3**0.5, rel=1e-5)
    assert s["p"] == pytest.approx(0.25) and s["smallest_p"] == pytest.approx(0.25) and not s["significant"]


def test_single_runs_are_paired_with_the_hybrid_by_mcnemar_and_holm_per_table():
    """Hand-computed: 10 test images; the paper's hybrid (first seed, configured shots) is right on images 0-4.
    One control is right on all 10 (5 images only it gets right, none only the hybrid): McNemar's exact p =
    2 * (1/2)^5 = 0.0625; every other run predicts as the hybrid does (no disagreement: p = 1). Holm over the
    table's m non-reference rows multiplies the smallest p by m."""
    from qtlmnist.experiments import tables

    seeds, shots_list, shots = [1], [16, 128], 128
    dims = variants.Dims(latent_dim=64, n_qubits=5)
    labels = list(range(10))
    as_hybrid = labels[:5] + [(y + 1) % 10 for y in labels[5:]]
    plan = variants.plan(seeds, shots_list, shots)
    better = plan["controls"][1][0]  # the first control after the hybrid itself

    def run(name):
        predictions = labels if name == better else as_hybrid
        accuracy = float(np.mean(np.array(predictions) == labels))
        scores = {"train_accuracy": 1.0, "val_accuracy": 1.0, "test_accuracy": accuracy, "test_n": 10}
        return {"n_features": 5, **scores, "test_predictions": predictions, "test_labels": labels}

    runs = {(name, seed): run(name) for name, seed in variants.all_runs(seeds, shots_list, shots)}
    out = tables(runs, seeds, shots_list, shots, dims, alpha=0.05)
    controls = out["controls"]
    assert pd.isna(controls["mcnemar_p"].iloc[0])  # the hybrid itself: the reference
    row = controls[controls["variant"] == better].iloc[0]
    assert (row["only_this_right"], row["only_hybrid_right"]) == (5, 0)
    assert row["mcnemar_p"] == pytest.approx(0.0625)
    m = len(controls) - 1
    assert row["mcnemar_p_holm"] == pytest.approx(min(1.0, 0.0625 * m))
    others = controls[(controls["variant"] != better) & controls["mcnemar_p"].notna()]
    assert (others["mcnemar_p"] == 1.0).all() and (others["mcnemar_p_holm"] == 1.0).all()
    assert not controls["significant"].fillna(False).any()
    for name in ("shots", "noise"):  # every row but the reference predicts as the hybrid
        table = out[name]
        assert table["mcnemar_p"].isna().sum() == 1 and (table["mcnemar_p"].dropna() == 1.0).all()
    runs[plan["noise"][1]].pop("test_predictions")
    with pytest.raises(ValueError, match="no per-image test predictions"):
        tables(runs, seeds, shots_list, shots, dims)
