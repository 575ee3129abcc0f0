"""The readings (issue 17): the covering array, the factors' numbers against independent references, the checks
that stop bad input before any job, the analysis against hand computations, and the CI design end to end."""

import itertools
import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import Statevector

from conftest import ROOT, SNAKEMAKE, copy_repo, run_snakemake
from qtlmnist import classifier, covering, quantum, readings, readings_tables, report
from qtlmnist.config import ConfigError, check_consistency, check_schema, with_defaults

DEFAULTS = yaml.safe_load((ROOT / "config/config.yaml").read_text())
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def config_with(change: dict) -> dict:
    config = with_defaults(change, DEFAULTS)
    check_schema(config, SCHEMA)
    return config


# --- the covering array -----------------------------------------------------------------------------------


def all_pairs(levels: dict[str, list]) -> list[tuple]:
    """Every pair of values of any two factors, enumerated here (not by qtlmnist.covering)."""
    return [
        (f, a, g, b) for f, g in itertools.combinations(levels, 2) for a, b in itertools.product(levels[f], levels[g])
    ]


def test_the_default_design_holds_every_pair_of_values_of_any_two_factors():
    rows = readings.design(DEFAULTS)
    levels = readings.levels(DEFAULTS["readings"])
    pairs = all_pairs(levels)
    assert len(pairs) == 4 * 3 * 4 + 3 * 3 * 6 + 3 * 2 * 4 + 4 * 2  # 134: every factor pair's values multiplied
    for f, a, g, b in pairs:
        assert any(row[f] == a and row[g] == b for row in rows), (f, a, g, b)
    size = readings.design_size(DEFAULTS)
    print(f"default design: {size}")  # its size, printed (make readings prints it too: tools/readings_design)
    # 12 = 4 reductions x 3 scalings: no covering array can be smaller, and the search found that size
    assert size["covering_array"] == size["lower_bound"] == 12
    assert size["readings"] == len(rows) == size["coefficients"] + DEFAULTS["readings"]["residual_df"] == 16
    assert rows[0] == readings.OURS and len({tuple(r.items()) for r in rows}) == len(rows)


def katona_kleitman_spencer(k: int) -> int:
    """The fewest rows of a strength-2 covering array of k binary factors: the smallest N with
    C(N - 1, ceil(N / 2)) >= k (Katona 1973; Kleitman and Spencer 1973)."""
    return next(n for n in itertools.count(2) if math.comb(n - 1, math.ceil(n / 2)) >= k)


@pytest.mark.parametrize("k", [3, 4, 5, 7])  # optima 4, 5, 6, 6
def test_binary_covering_arrays_reach_the_known_optimum(k):
    levels = {f"f{i}": [0, 1] for i in range(k)}
    rows = covering.covering_array(levels)
    assert covering.uncovered(rows, levels) == []
    # fewer rows than the proven optimum would mean the pair check is wrong; more, that the search is weak
    assert len(rows) == katona_kleitman_spencer(k)


# Taguchi's standard L9(3^4) orthogonal array, OA(9, 4, 3, 2), as tabulated in Taguchi's orthogonal-array tables:
# every pair of values of two columns exactly once, so 9 rows is the optimum for four 3-valued factors.
L9 = [
    [1, 1, 1, 1],
    [1, 2, 2, 2],
    [1, 3, 3, 3],
    [2, 1, 2, 3],
    [2, 2, 3, 1],
    [2, 3, 1, 2],
    [3, 1, 3, 2],
    [3, 2, 1, 3],
    [3, 3, 2, 1],
]


def test_the_l9_orthogonal_array_is_a_minimal_covering_array_and_the_search_matches_its_size():
    levels = {f"f{i}": [1, 2, 3] for i in range(4)}
    rows = [dict(zip(levels, row)) for row in L9]
    assert covering.uncovered(rows, levels) == []
    for dropped in range(len(rows)):  # each pair appears exactly once: any row is needed
        assert covering.uncovered(rows[:dropped] + rows[dropped + 1 :], levels)
    assert len(covering.covering_array(levels)) == 9 == covering.lower_bound(levels)


def test_uncovered_names_the_missing_pairs_and_the_first_row_is_ours():
    levels = {"a": ["x", "y"], "b": [1, 2]}
    rows = [{"a": "x", "b": 1}, {"a": "x", "b": 2}, {"a": "y", "b": 1}]
    assert covering.uncovered(rows, levels) == [(("a", "y"), ("b", 2))]
    made = covering.covering_array({"a": ["x", "y", "z"], "b": [1, 2], "c": [0, 1]}, first={"a": "z", "b": 2, "c": 1})
    assert made[0] == {"a": "z", "b": 2, "c": 1}


def test_the_design_is_the_same_on_every_call_and_grows_with_residual_df():
    again = readings._design.__wrapped__(json.dumps(DEFAULTS["readings"]))
    assert [dict(r) for r in again[0]] == readings.design(DEFAULTS)
    more = config_with({"readings": {"residual_df": 6}})
    rows = readings.design(more)
    assert len(rows) == 19 and rows[:16] == readings.design(DEFAULTS)
    x = readings.dummies(rows, readings.levels(more["readings"]))
    assert np.linalg.matrix_rank(x) == x.shape[1] == 13


# --- bad input: a clear error before any job ----------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"readings": {"factors": {"scaling": {"zscore": "why"}}}},
            "readings.factors.scaling.zscore: unknown value (allowed: minmax, squash, rank)",
        ),
        ({"readings": {"factors": {"colour": {"red": "why"}}}}, "readings.factors.colour: unknown factor (allowed: "),
        (
            {"readings": {"vary": {"width": ["narrower"]}}},
            "readings.vary.width: must include 'ours'",
        ),
        (
            {"readings": {"vary": {"angle": ["arccos", "two_pi"]}}},
            "readings.vary.angle: 'two_pi' is not a value of readings.factors.angle (allowed: arccos, pi, half_pi)",
        ),
        (
            {"readings": {"factors": {"angle": {"two_pi": "a full turn"}}}},
            "readings.factors.angle.two_pi: with scaling 'minmax' it maps the inputs to angles [0, 6.283], outside "
            "the circuit's domain [0, pi]",
        ),
        (
            {"readings": {"vary": {"angle": ["arccos", "pi"], "input": ["frequencies", "log"]}, "design": [{}]}},
            "readings.design: its 1 readings do not cover every pair of values of two factors: missing "
            "angle=arccos with input=log; angle=pi with input=frequencies; angle=pi with input=log",
        ),
    ],
    ids=["unknown value", "unknown factor", "vary without ours", "vary outside factors", "domain", "not covering"],
)
def test_bad_readings_config_is_refused_naming_the_key_and_what_is_allowed(change, message):
    config = config_with(change)
    with pytest.raises(ConfigError) as error:
        check_consistency(config)
    assert message in str(error.value)


def test_a_given_design_that_covers_every_pair_is_taken_as_it_is():
    design = [{}, {"angle": "pi", "input": "log"}, {"angle": "arccos", "input": "log"}, {"angle": "pi"}]
    config = config_with({"readings": {"vary": {"angle": ["arccos", "pi"], "input": ["frequencies", "log"]}}})
    config["readings"]["design"] = design
    check_consistency(config)
    assert readings.design(config) == [readings.OURS | row for row in design]


def test_a_bad_readings_value_stops_the_workflow_before_any_job(tmp_path):
    workdir = copy_repo(tmp_path / "repo")
    (workdir / "bad.yaml").write_text("readings:\n  vary: {reduction: [pca, umap]}\n")
    result = subprocess.run(
        [SNAKEMAKE, "readings", "--cores", "1", "--configfile", "bad.yaml"], cwd=workdir, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert (
        "readings.vary.reduction: 'umap' is not a value of readings.factors.reduction (allowed: pca, first, "
        "bottleneck, random)" in result.stderr
    )
    assert list((workdir / "results").iterdir()) == []


# --- the numbers of each factor -----------------------------------------------------------------------------


def statevector_p(angles_: np.ndarray) -> np.ndarray:
    """The paper's circuit with Ry(t_i) on qubit i written directly (no x -> angle map), by Statevector."""
    n = len(angles_)
    circuit = QuantumCircuit(n)
    for q, t in enumerate(angles_):
        circuit.ry(float(t), q)
    for q in range(n):
        circuit.h(q)
    for q in range(n - 1):
        circuit.cx(q, q + 1)
    return Statevector(circuit).probabilities()


@pytest.mark.parametrize("angle", ["arccos", "pi", "half_pi"])
def test_each_angle_map_reaches_the_circuit_as_the_angle_it_names(angle):
    x = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    t = {"arccos": 2 * np.arccos(x), "pi": np.pi * x, "half_pi": np.pi * x / 2}[angle]  # as the factor says
    np.testing.assert_allclose(readings.angles(x, angle), t)
    given = readings.paper_inputs(x, angle)
    np.testing.assert_allclose(quantum.exact_probabilities(given[None, :])[0], statevector_p(t), atol=1e-12)


def test_which_maps_fold_where_the_docs_say():
    p0 = lambda x, angle: quantum.exact_probabilities(readings.paper_inputs(np.full((1, 5), x), angle))[0, 0]  # noqa: E731
    # arccos: x and sqrt(1 - x^2) give one probability (fold at 1/sqrt(2)); pi: 0.5 - d and 0.5 + d
    assert p0(0.3, "arccos") == pytest.approx(p0(math.sqrt(1 - 0.09), "arccos"), abs=1e-12)
    assert p0(0.3, "pi") == pytest.approx(p0(0.7, "pi"), abs=1e-12)
    values = [p0(x, "half_pi") for x in np.linspace(0, 1, 21)]
    assert all(np.diff(values) != 0) and (np.all(np.diff(values) > 0) or np.all(np.diff(values) < 0))
    assert readings.folds("minmax", "arccos") and readings.folds("minmax", "pi")
    assert not readings.folds("minmax", "half_pi")
    with pytest.raises(ValueError, match="allowed: arccos, pi, half_pi"):
        readings.paper_inputs(np.zeros(3), "two_pi")


def latents_example(d=16, seed=0):
    rng = np.random.default_rng(seed)
    return {s: np.abs(rng.normal(size=(n, d))) for s, n in (("train", 40), ("val", 10), ("test", 12))}


def test_our_reading_gives_the_pipelines_own_circuit_inputs_to_the_bit():
    latents = latents_example()
    fitted = quantum.fit_reduction(latents["train"], "pca", 5)
    ours = readings.circuit_inputs(latents, {"reduction": "pca", "scaling": "minmax", "n_qubits": 5})
    for split, x in latents.items():
        np.testing.assert_array_equal(ours[split], quantum.apply_reduction(x, fitted, 5)[:, 0, :])


def test_first_and_random_reductions():
    latents = latents_example()
    first = readings.reduce(latents, {"reduction": "first", "n_qubits": 5})
    np.testing.assert_array_equal(first["val"], latents["val"][:, :5])
    settings = {"reduction": "random", "n_qubits": 5, "projection_seed": 3}
    a, b = readings.reduce(latents, settings), readings.reduce(latents, settings)
    np.testing.assert_array_equal(a["test"], b["test"])
    assert a["test"].shape == (12, 5)
    np.testing.assert_allclose(a["train"].mean(axis=0), 0, atol=1e-12)  # projected after centring on train
    other = readings.reduce(latents, settings | {"projection_seed": 4})
    assert not np.allclose(other["test"], a["test"])


def test_rank_and_squash_scaling_by_hand():
    # rank: train column [3, 1, 2, 2]: values 1, 2, 3 at mean 0-based ranks 0, 1.5, 3, over n - 1 = 3
    projected = {"train": np.array([[3.0], [1.0], [2.0], [2.0]]), "val": np.array([[2.5], [5.0], [0.0], [1.5]])}
    ranked = readings.scale(projected, "rank")
    np.testing.assert_allclose(ranked["train"][:, 0], [1.0, 0.0, 0.5, 0.5])
    np.testing.assert_allclose(ranked["val"][:, 0], [0.75, 1.0, 0.0, 0.25])
    # squash: train [0, 2] has mean 1 and std 1; x = 1 -> 1/2, x = 2 -> 1 / (1 + e^-1)
    squashed = readings.scale({"train": np.array([[0.0], [2.0]]), "val": np.array([[1.0], [2.0]])}, "squash")
    np.testing.assert_allclose(squashed["val"][:, 0], [0.5, 1 / (1 + math.exp(-1))])
    constant = readings.scale({"train": np.ones((3, 1)), "val": np.array([[4.0]])}, "rank")
    assert constant["val"][0, 0] == 0.0


def test_log_frequencies_add_half_a_count():
    f = np.array([[0.0, 0.25, 0.75]])
    np.testing.assert_allclose(readings.classifier_input(f, "log", 8), np.log([[1 / 16, 0.25 + 1 / 16, 0.75 + 1 / 16]]))
    assert readings.classifier_input(f, "unnormalised", 8) is f


def test_widths_controls_and_classifier_settings_follow_the_config():
    assert readings.units(DEFAULTS, "narrower") == [128, 64, 32]
    assert readings.units(DEFAULTS, "wider") == [512, 256, 128]
    rows = [readings.OURS, readings.OURS | {"angle": "pi", "input": "log"}, readings.OURS | {"input": "unnormalised"}]
    assert [readings.control_index(rows, i) for i in (1, 2, 3)] == [1, 1, 3]  # angle and log: the same control


def test_the_classifier_without_normalization_has_no_such_layer():
    from qtlmnist.runtime import seed_tensorflow

    keras = seed_tensorflow(0, 1)
    x = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    names = lambda model: [layer.name for layer in model.layers]  # noqa: E731
    assert "standardise" in names(classifier.build(keras, 4, x, [8], 0.1))
    assert "standardise" not in names(classifier.build(keras, 4, x, [8], 0.1, normalize=False))
    codes, history = readings.train_bottleneck(keras, latents_example(8), 5, 6, 2, 16, 0.01, 0)
    assert {s: c.shape for s, c in codes.items()} == {"train": (40, 5), "val": (10, 5), "test": (12, 5)}
    assert len(history) == 2 and np.isfinite(codes["test"]).all()


# --- the analysis ---------------------------------------------------------------------------------------------


def test_main_effects_match_a_hand_computed_two_by_two():
    """2 x 2 full factorial, accuracies 70 (A0 B0), 72 (A0 B1), 75 (A1 B0), 81 (A1 B1). Additive least squares with
    A0, B0 as references: effect A = ((75 + 81) - (70 + 72)) / 2 = 7, effect B = ((72 + 81) - (70 + 75)) / 2 = 4,
    intercept = (3*70 + 72 + 75 - 81) / 4 = 69; fitted 69, 73, 76, 80; residuals +1, -1, -1, +1; residual variance
    4 / (4 - 3) = 4, and each effect's variance is 4 * (X'X)^-1 = 4 * 1: standard error 2."""
    levels = {"a": ["a0", "a1"], "b": ["b0", "b1"]}
    rows = [{"a": a, "b": b} for a in levels["a"] for b in levels["b"]]
    effects, fit = readings_tables.main_effects(rows, np.array([70.0, 72.0, 75.0, 81.0]), levels)
    by = effects.set_index("value")
    assert by.loc["a1", "effect_pp"] == pytest.approx(7) and by.loc["b1", "effect_pp"] == pytest.approx(4)
    assert by.loc["a1", "se_pp"] == pytest.approx(2) and by.loc["b1", "se_pp"] == pytest.approx(2)
    assert fit["intercept"] == pytest.approx(69) and fit["residual_df"] == 1 and fit["residual_sd"] == pytest.approx(2)
    assert list(effects["factor"].drop_duplicates()) == ["a", "b"]  # ordered by span: 7 before 4
    assert by.loc["a0", "effect_pp"] == 0 and by.loc["a0", "reference"]


def test_main_effects_on_an_unbalanced_design_recover_an_additive_truth():
    """On the default design (unbalanced) accuracies made exactly additive come back exactly, where per-value
    means would not."""
    rows = readings.design(DEFAULTS)
    levels = readings.levels(DEFAULTS["readings"])
    truth = {("reduction", "first"): -4.0, ("scaling", "rank"): 2.5, ("angle", "half_pi"): 6.0, ("width", "wider"): 1.0}
    y = np.array([65.0 + sum(truth.get((f, row[f]), 0.0) for f in row) for row in rows])
    effects, fit = readings_tables.main_effects(rows, y, levels)
    got = {(r.factor, r.value): r.effect_pp for r in effects.itertuples()}
    for key, value in got.items():
        assert value == pytest.approx(truth.get(key, 0.0), abs=1e-9), key
    assert fit["r_squared"] == pytest.approx(1.0)

    def naive(factor, value):  # the value's mean minus ours' mean
        mean = lambda v: np.mean([a for a, row in zip(y, rows) if row[factor] == v])  # noqa: E731
        return mean(value) - mean(readings.OURS[factor])

    # the design is unbalanced: some difference of means mixes in other factors' effects
    assert max(abs(naive(f, v) - effect) for (f, v), effect in truth.items()) > 0.1
    with pytest.raises(ValueError, match="cannot separate"):
        readings_tables.main_effects(rows[:5], y[:5], levels)


def run(val, test, train=0.5):
    return {"train_accuracy": train, "val_accuracy": val, "test_accuracy": test, "test_n": 1000}


def test_the_best_readings_are_chosen_on_validation_never_test():
    first = {1: run(0.60, 0.90), 2: run(0.70, 0.50), 3: run(0.70, 0.55), 4: run(0.65, 0.99)}
    assert readings.select(first, 2) == [2, 3]  # 3 ties 2 on validation: the lower index first


def test_claims_and_the_replication_table_over_every_reading():
    table = pd.DataFrame(
        {
            "reading": [1, 2, 3],
            "hybrid_train_accuracy": [66.0, 70.0, 97.0],
            "hybrid_val_accuracy": [65.0, 74.0, 80.0],
            "hybrid_test_accuracy": [64.0, 73.5, 79.0],
        }
    )
    best = pd.DataFrame(
        [{"reading": 3, "n_seeds": 3} | {f"{m}_{k}": v for m in readings_tables.METRICS for k, v in
                                          (("mean", 78.0), ("low", 77.0), ("high", 79.0))}]
    )  # fmt: skip
    claims = readings_tables.claims(table, best, 2.0).set_index("metric")
    # test: 75 claimed; 73.5 is within 2 pp (reproduced by 1), 79 reaches it too
    assert claims.loc["test_accuracy", "verdict"] == "reproduced by 1 of 3 readings"
    assert claims.loc["test_accuracy", "readings_reaching"] == 2
    # validation: 94.5 claimed, 80 the highest
    assert claims.loc["val_accuracy", "verdict"] == "not reproduced in any of 3 readings (highest 80.00%, reading 3)"
    assert claims.loc["train_accuracy", "readings_within_tolerance"] == 1  # 97 within 2 of 96.2
    assert claims.loc["val_accuracy", "validated_mean"] == 78.0
    metrics = {
        "autoencoder": {"train_mse": 0.02, "val_mse": 0.02},
        "baseline": {f"{s}_accuracy": 0.98 for s in ("train", "val", "test")},
        "hybrid": {f"{s}_accuracy": 0.65 for s in ("train", "val", "test")},
    }
    replication = report.with_readings(report.replication_table(metrics, 2.0, 0.005), claims.reset_index())
    verdicts = dict(zip(replication["claim"], replication["readings_verdict"]))
    assert verdicts["Hybrid test accuracy (~75%)"] == "reproduced by 1 of 3 readings"
    assert pd.isna(verdicts["Classical test accuracy (~98%)"])
    assert "over every reading (make readings)" in report.table_markdown(replication)
    foreign = readings_tables.claims(table, best, 2.0, comparable=False)
    assert set(foreign["verdict"]) == {report.NOT_COMPARABLE}


# --- the CI design, end to end (config/ci.yaml: angle x input, 2 values each) ------------------------------------


@pytest.mark.integration
def test_readings_on_ci_config(ci_run):
    run_snakemake(ci_run, "readings")
    ci = with_defaults(yaml.safe_load((ROOT / "config/ci.yaml").read_text()), DEFAULTS)
    rows = readings.design(ci)
    out = ci_run / "results/mnist/readings"
    table = pd.read_csv(out / "readings.csv")
    assert len(rows) == len(table) == 4
    assert [tuple(r[f] for f in readings.FACTORS) for r in rows] == list(
        table[list(readings.FACTORS)].itertuples(index=False, name=None)
    )
    for f, a, g, b in all_pairs(readings.levels(ci["readings"])):
        assert ((table[f] == a) & (table[g] == b)).any()
    features = lambda i, split: np.load(out / f"features/reading{i}_seed1/{split}.npz")["features"]  # noqa: E731
    index = {(r["angle"], r["input"]): i for i, r in enumerate(rows, start=1)}
    # our reading: the pipeline's own circuit inputs through Aer with shot seed 1, computed here independently
    with np.load(ci_run / "results/mnist/quantum/inputs_test.npz") as data:
        inputs = data["inputs"]
    shots = ci["quantum"]["shots"]
    expected = quantum.circuit_features(inputs, shots, quantum.split_seed(1, "test"))
    np.testing.assert_array_equal(features(index[("arccos", "frequencies")], "test"), expected)
    # log-frequencies are the same counts, logged with half a count
    np.testing.assert_allclose(features(index[("arccos", "log")], "test"), np.log(expected + 0.5 / shots), rtol=1e-12)
    assert not np.array_equal(features(index[("half_pi", "frequencies")], "test"), expected)
    # one control serves all four (its inputs: the pipeline's), with the reading's classifier
    assert set(table["control_of"]) == {1}
    np.testing.assert_allclose(
        np.load(out / "features/readinginputs1/test.npz")["features"], inputs[:, 0, :], atol=1e-12
    )
    # the best reading is the first seed's best on validation, run over both seeds
    selected = json.loads((out / "selected.json").read_text())["best"]
    assert selected == [
        int(table.sort_values(["hybrid_val_accuracy", "reading"], ascending=[False, True])["reading"].iloc[0])
    ]
    intervals = pd.read_csv(out / "intervals.csv")
    assert intervals["reading"].tolist() == selected and intervals["n_seeds"].tolist() == [2]
    assert (intervals["test_accuracy_low"] <= intervals["test_accuracy_mean"]).all()
    # main effects: on a 2 x 2 full factorial, each effect is the difference of the two halves' means
    effects = pd.read_csv(out / "main_effects.csv").set_index("value")
    y = table["hybrid_test_accuracy"]
    for factor, value in (("angle", "half_pi"), ("input", "log")):
        by_hand = y[table[factor] == value].mean() - y[table[factor] != value].mean()
        assert effects.loc[value, "effect_pp"] == pytest.approx(by_hand, abs=1e-9)
    claims = pd.read_csv(out / "claims.csv")
    assert len(claims) == 3 and claims["readings"].eq(4).all()
    replication = pd.read_csv(out / "replication.csv")
    assert replication["readings_verdict"].notna().sum() == 3
    assert (ci_run / "results/mnist/figures/readings_accuracy.png").stat().st_size > 10_000
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["target"] == "readings" and "results/mnist/readings/claims.csv" in provenance["files"]


@pytest.mark.integration
def test_the_default_design_plans_its_jobs_up_to_the_checkpoint(ci_run):
    """The default design on the CI data, dry run: one reading run and feature job per reading (forced, so a run the
    CI design made too is counted), before the best are chosen; the autoencoder without augmentation once and a
    bottleneck autoencoder per augmentation (in the fixture's run, nothing of them exists yet)."""
    (ci_run / "full_design.yaml").write_text("readings:\n  vary: null\n")
    command = [SNAKEMAKE, "readings", "--dry-run", "--cores", "2", "--forcerun", "reading_features", "reading_run"]
    result = subprocess.run(
        [*command, "--configfile", "config/ci.yaml", "full_design.yaml"],
        cwd=ci_run,
        capture_output=True,
        text=True,
        check=True,
    )
    table = (result.stdout + result.stderr).split("Job stats:")[1].split("total")[0]
    planned = {rule: int(count) for rule, count in (line.split() for line in table.splitlines()[3:] if line.strip())}
    full = with_defaults({"readings": {"vary": None}}, yaml.safe_load((ROOT / "config/ci.yaml").read_text()))
    assert len(readings.design(with_defaults(full, DEFAULTS))) == 16
    assert planned["reading_features"] == planned["reading_run"] == 16 and planned["readings_select"] == 1
    assert planned["readings_autoencoder"] == planned["readings_latents"] == 1 and planned["readings_bottleneck"] == 2
