"""The study (qtlmnist.study, `snakemake study`): its grids and checks against hand-written expectations, its
folds against their definition (a stratified partition of the training images), selection blind to the test
set (its labels changed, its images NaN: the scores do not move), and the CI-config study end to end in the
session's CI workdir."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import CI_LOG, ROOT
from qtlmnist import study
from qtlmnist.config import with_defaults
from qtlmnist.systems import SYSTEMS
from qtlmnist.systems.common import Task

SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


def merged(*files: str) -> dict:
    config = {}
    for name in files:
        config = with_defaults(yaml.safe_load((ROOT / name).read_text()), config)
    return config


DEFAULT = merged("config/config.yaml")
CI = merged("config/config.yaml", "config/ci.yaml")


def with_study(config: dict, system: str, **section) -> dict:
    changed = copy.deepcopy(config)
    changed["study"]["run"] = [system]
    changed["study"][system] = section
    return changed


# --- grids and checks -------------------------------------------------------------------------------------


def test_the_default_and_ci_studies_pass_their_checks():
    assert study.errors(DEFAULT, SCHEMA) == []
    assert study.errors(CI, SCHEMA) == []


def test_a_grid_is_the_product_of_the_shared_and_the_model_keys_in_written_order():
    config = with_study(
        DEFAULT,
        "reuploading",
        grid={"learning_rate": [0.1, 0.2], "batch_size": [8]},
        models={"quantum": {"n_layers": [2, 3]}, "control": {"control_hidden": [1, 6]}},
    )
    assert study.grid(config, "reuploading", "quantum") == [
        {"learning_rate": 0.1, "batch_size": 8, "n_layers": 2},
        {"learning_rate": 0.1, "batch_size": 8, "n_layers": 3},
        {"learning_rate": 0.2, "batch_size": 8, "n_layers": 2},
        {"learning_rate": 0.2, "batch_size": 8, "n_layers": 3},
    ]
    assert study.configurations(config, "reuploading", "control") == ["c0", "c1", "c2", "c3"]
    values = study.configuration_values(config, "reuploading", "control", "c3")
    assert (values["model"], values["learning_rate"], values["control_hidden"]) == ("control", 0.2, 6)
    assert values["shots"] == DEFAULT["systems"]["shots"] and "seeds" not in values and "settings" not in values
    assert values["n_layers"] == DEFAULT["systems"]["reuploading"]["n_layers"]  # the system's own value


@pytest.mark.parametrize(
    ("section", "named"),
    [
        (
            {"grid": {"learning_rate": []}, "models": {"quantum": {}, "control": {}}},
            "study.reuploading.grid.learning_rate",
        ),
        ({"grid": {"dropout": [0.1]}, "models": {"quantum": {}, "control": {}}}, "study.reuploading.grid.dropout"),
        ({"models": {"quantum": {"n_qubits": [6]}, "control": {}}}, "study.reuploading.models.quantum.n_qubits"),
        ({"models": {"quantum": {}, "classic": {}}}, "study.reuploading.models.classic"),
        ({"grid": {"model": ["control"]}, "models": {"quantum": {}}}, "study.reuploading.grid.model"),
        ({"models": {}}, "study.reuploading.models"),
        ({"values": {"entanglement": "product"}, "models": {"quantum": {}}}, "study.reuploading.values.entanglement"),
        # 3 configurations against 2, no reason given
        ({"models": {"quantum": {"n_layers": [1, 2, 3]}, "control": {"control_hidden": [1, 6]}}}, "study.reuploading"),
        # equal sizes, unequal images x epochs
        ({"models": {"quantum": {"epochs": [1, 2]}, "control": {"epochs": [1, 3]}}}, "unequal training budgets"),
        # a value the system's schema refuses
        ({"models": {"quantum": {"n_layers": [0]}, "control": {}}}, "n_layers = 0"),
    ],
)
def test_bad_study_sections_are_refused_naming_the_key(section, named):
    problems = study.errors(with_study(DEFAULT, "reuploading", **section), SCHEMA)
    assert problems and any(named in line for line in problems), problems


def test_a_study_key_that_is_neither_shared_nor_a_system_is_named():
    config = copy.deepcopy(DEFAULT)
    config["study"]["reuploadin"] = {"models": {"quantum": {}}}
    assert any(line.startswith("study.reuploadin: neither") for line in study.errors(config, SCHEMA))


def test_unequal_grids_pass_with_a_stated_reason():
    section = {"models": {"quantum": {"n_layers": [1, 2, 3]}, "control": {"control_hidden": [1, 6]}}}
    assert study.errors(with_study(DEFAULT, "reuploading", **section, reason="layers have no width"), SCHEMA) == []


def test_more_folds_than_the_smallest_class_can_hold_is_refused_before_any_job():
    config = with_study(DEFAULT, "quantum_mnist", values={"train_images": 10}, models={"quantum": {}, "control": {}})
    config["study"]["folds"] = 6  # 10 images of 2 classes: a class holds 5 in the balanced case
    (problem,) = study.errors(config, SCHEMA)
    assert problem.startswith("study.folds = 6") and "<= 5" in problem
    config["study"]["folds"] = 5
    assert study.errors(config, SCHEMA) == []


def test_a_model_whose_key_the_system_lacks_is_not_planned_and_said():
    config = copy.deepcopy(DEFAULT)
    values = study._system_values(config, "paradoxical7_qnn")
    planned = study.models(config, "paradoxical7_qnn")
    assert ("separable" in planned) == ("entanglement" in values)
    assert "quantum" in planned and "control" in planned
    notes = study.not_offered(config)
    assert all("has no key" in note for note in notes)
    assert ("entanglement" in values) or any("paradoxical7_qnn.models.separable" in note for note in notes)


# --- folds and selection ------------------------------------------------------------------------------------


def synthetic_task(rows: int = 90, seed: int = 0, test_rows: int = 40) -> Task:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], [rows * 2 // 3, rows - rows * 2 // 3])  # unbalanced: 60 vs 30
    x = rng.normal(size=(rows, 11)) + y[:, None]
    test = (rng.normal(size=(test_rows, 11)), rng.integers(0, 2, test_rows))
    return Task(train=(x, y), evaluation={"test": test})


def test_folds_partition_the_training_images_stratified_and_hold_no_test_image():
    task = synthetic_task()
    folds = study.fold_tasks(task, 3, split_seed=5)
    x, y = task.train
    held_rows = [np.flatnonzero((x[:, None, :] == f.evaluation["val"][0][None]).all(-1).any(1)) for f in folds]
    # the held-out folds partition the 90 training rows
    assert sorted(np.concatenate(held_rows).tolist()) == list(range(90))
    for fold, held in zip(folds, held_rows):
        assert set(fold.evaluation) == {"val"}  # the test set is in none of them
        # each held-out fold keeps the classes' shares: 20 of the 60 zeros and 10 of the 30 ones
        assert np.bincount(y[held]).tolist() == [20, 10]
        trained = np.flatnonzero((x[:, None, :] == fold.train[0][None]).all(-1).any(1))
        assert not set(trained) & set(held) and len(trained) == 60
    # seeded: the same seed, the same folds; another seed, others
    again = study.fold_tasks(task, 3, split_seed=5)
    assert all(np.array_equal(a.evaluation["val"][0], b.evaluation["val"][0]) for a, b in zip(folds, again))
    other = study.fold_tasks(task, 3, split_seed=6)
    assert not np.array_equal(folds[0].evaluation["val"][0], other[0].evaluation["val"][0])


def test_unequal_folds_train_on_equal_rows_and_too_many_folds_are_refused():
    task = synthetic_task(rows=91)  # 60 + 31: folds of 31, 30, 30
    folds = study.fold_tasks(task, 3, split_seed=0)
    assert {len(f.train[1]) for f in folds} == {60}
    with pytest.raises(study.StudyError, match=r"study\.folds = 32"):
        study.fold_tasks(task, 32, split_seed=0)


def test_choose_takes_the_highest_mean_and_the_first_of_a_tie():
    table = pd.DataFrame(
        {"configuration": ["c0", "c0", "c1", "c1", "c2", "c2"], "accuracy": [0.8, 0.9, 0.9, 0.8, 0.5, 0.6]}
    )
    assert study.choose(table) == "c0"  # c0 and c1 tie at 0.85
    table.loc[5, "accuracy"] = 1.3
    assert study.choose(table) == "c2"


def test_selection_does_not_read_the_test_set(monkeypatch):
    """Change the test labels (and make the test images NaN): the fold scores and the choice stay exactly."""
    from qtlmnist.runtime import seed_tensorflow
    from qtlmnist.systems import load

    seed_tensorflow(0, 1)
    system = load("paradoxical7_qnn")
    values = study.configuration_values(DEFAULT, "paradoxical7_qnn", "control") | {"epochs": 2, "batch_size": 8}

    def search(task):
        monkeypatch.setattr(system, "load_task", lambda inputs, values, seed: task)
        scores = {}
        for name, rate in (("c0", 0.01), ("c1", 0.1)):
            scores[name] = study.cross_validate(system, {}, values | {"learning_rate": rate}, 3, 0, [1, 2, 3])
        table = study.search_table(scores, {"c0": {"learning_rate": 0.01}, "c1": {"learning_rate": 0.1}})
        return table, study.choose(table)

    task = synthetic_task()
    table, chosen = search(task)
    x_test, y_test = task.evaluation["test"]
    poisoned = Task(train=task.train, evaluation={"test": (np.full_like(x_test, np.nan), 1 - y_test)})
    table_after, chosen_after = search(poisoned)
    assert chosen_after == chosen
    pd.testing.assert_frame_equal(table_after, table)
    assert table["accuracy"].between(0, 1).all() and table["n"].eq(30).all() and table["train_rows"].eq(60).all()


class _Built(Exception):
    """Raised in place of building the models: the test has the circuit it needed."""


@pytest.mark.parametrize("model, nonlocal_gates", [("quantum", 55), ("separable", 0)])
def test_the_search_and_the_curves_train_each_models_own_circuit(monkeypatch, model, nonlocal_gates):
    """001's QNN: Ry encoding (no two-qubit gate) + RealAmplitudes(11, reps=1, full entanglement): 11 * 10 / 2 = 55
    CX by hand; its separable version none. The fold scores (and the learning curves, through the same function)
    must train that circuit, not the system's entangled one."""
    from qtlmnist.systems import load, training

    built = []

    def capture(system, values, seeds, circuit):
        built.append(circuit)
        raise _Built

    monkeypatch.setattr(training, "build_models", capture)
    system = load("paradoxical7_qnn")
    values = study.configuration_values(DEFAULT, "paradoxical7_qnn", model, "c0")
    with pytest.raises(_Built):
        study.fit_and_score(system, [synthetic_task()], values, [1], "val")
    assert built[0].circuit.num_nonlocal_gates() == nonlocal_gates


# --- the CI-config study end to end -------------------------------------------------------------------------


@pytest.mark.integration
def test_the_ci_study_prints_its_plan_and_writes_every_table(ci_run):
    # the session's CI-config run made the study (conftest.ci_targets) and kept what it printed
    workdir = ci_run
    ci = CI["study"]
    planned = [(s, m) for s in ci["run"] for m in study.models(CI, s)]
    assert f"study: {len(study.jobs(CI))} training jobs" in (workdir / CI_LOG).read_text()
    summary = pd.read_csv(workdir / "results/study/summary.csv")
    assert list(zip(summary["system"], summary["model"])) == planned
    search = pd.read_csv(workdir / "results/study/search.csv")
    for system, model in planned:
        rows = search[(search["system"] == system) & (search["model"] == model)]
        # every configuration of the grid, every fold, each fold's held-out images a third ... of the training rows
        assert len(rows) == len(study.grid(CI, system, model)) * ci["folds"]
        values = study._system_values(CI, system)
        assert rows["n"].sum() == values["train_images"] * len(study.grid(CI, system, model))
        chosen = json.loads((workdir / f"results/study/{system}/{model}/chosen.json").read_text())
        means = rows.groupby("configuration")["accuracy"].mean()
        assert means[chosen["configuration"]] == means.max()
        row = summary[(summary["system"] == system) & (summary["model"] == model)].iloc[0]
        finals = [
            json.loads((workdir / f"results/study/{system}/{model}/final/seed_{seed}.json").read_text())
            for seed in ci["seeds"]
        ]
        accuracies = [100 * m["sets"]["test"]["accuracy"] for m in finals]
        assert row["test_mean"] == pytest.approx(np.mean(accuracies))
        # the 95% t interval over seeds, by scipy's t quantile
        half = stats.t.ppf(0.975, len(accuracies) - 1) * np.std(accuracies, ddof=1) / np.sqrt(len(accuracies))
        assert (row["test_low"], row["test_high"]) == pytest.approx(
            (max(np.mean(accuracies) - half, 0), min(np.mean(accuracies) + half, 100))  # bounded to what can be
        )
        assert (row["test_median"], row["test_min"], row["test_max"]) == pytest.approx(
            (np.median(accuracies), min(accuracies), max(accuracies))
        )
        # trained: train accuracy above the majority rate by z(0.99) = 2.326 standard errors at that rate
        sets = [m["sets"]["train"] for m in finals]
        margin = [2.3263 * np.sqrt(t["majority_rate"] * (1 - t["majority_rate"]) / t["n"]) for t in sets]
        assert row["n_trained"] == sum(t["accuracy"] > t["majority_rate"] + e for t, e in zip(sets, margin))
        assert row["test_n"] == CI["systems"]["paradoxical7_qnn"]["test_images"]
        assert all(m["train_rows"] == values["train_images"] for m in finals)
        assert all(m["configuration"]["point"] == chosen["point"] for m in finals)
    comparisons = pd.read_csv(workdir / "results/study/comparisons.csv")
    assert set(zip(comparisons["model"], comparisons["against"])) == {
        pair for system in ci["run"] for pair in study.comparisons(CI, system)
    }
    assert (workdir / "results/study/study.md").read_text().startswith("# Tuned at equal budget")
    for system in ci["run"]:
        assert (workdir / f"results/study/figures/{system}_learning_curves.png").stat().st_size > 10_000
    assert set(SYSTEMS) >= set(ci["run"])


def test_the_plan_counts_every_training_job_and_sums_their_measured_costs():
    from qtlmnist import resources

    config = copy.deepcopy(CI)
    planned = study.models(config, "paradoxical7_qnn")
    curves = [m for m in config["study"]["curve_models"] if m in planned]
    # by hand: 2 configurations per model, one final retrain per model, one curve job per curve model and size
    count = 2 * len(planned) + len(planned) + len(curves) * len(config["study"]["curve_sizes"])
    jobs = study.jobs(config)
    assert len(jobs) == count
    assert sum(j.rule == "study_cv" and j.members == 2 for j in jobs) == 2 * len(planned)  # folds in one group
    assert all(j.members == 2 for j in jobs if j.rule == "study_final")  # the CI's two final seeds
    seconds = [resources.system_run_seconds(j.system, j.values, j.members) for j in jobs]
    line = study.estimate(config, cores=2).splitlines()[0]
    assert line.startswith(f"study: {count} training jobs")
    # two jobs at a time, at least the longest job
    wall = max(sum(seconds) / 2, max(seconds))
    assert f"estimated {wall / 3600:.1f} h ({wall / 60:.0f} min) on 2 core(s)" in line


def test_the_comparisons_name_the_higher_model_of_each_pair():
    """10 seeds, 20 images: the circuit right on 18 of them every seed, its control on 10, its separable version
    on 19. By hand: circuit - control = +40 pp on every seed (exact sign flip p = 2/2^10, significant after Holm
    over the 2 comparisons); circuit - separable = -5 pp on every seed (same p): "separable higher", never the
    verdicts' "control higher"."""
    from qtlmnist.systems.report import Rules

    labels = [0, 1] * 10

    def run(right: int) -> dict:
        predictions = [label if i < right else 1 - label for i, label in enumerate(labels)]
        return {"sets": {"test": {"labels": labels, "predictions": predictions, "n": 20}}}

    finals = {
        ("s", model): {seed: run(right) for seed in range(1, 11)}
        for model, right in (("quantum", 18), ("control", 10), ("separable", 19))
    }
    table, per_seed = study.comparison_tables(
        finals, {"s": [("quantum", "control"), ("quantum", "separable")]}, Rules()
    )
    rows = table.set_index("against")
    assert rows.loc["control", "mean_difference"] == pytest.approx(40.0)
    assert rows.loc["separable", "mean_difference"] == pytest.approx(-5.0)
    assert rows.loc["control", "p"] == pytest.approx(2 / 2**10) and bool(rows.loc["control", "significant"])
    assert rows.loc["control", "verdict"].startswith("quantum higher, +40.0 pp")
    assert rows.loc["separable", "verdict"].startswith("separable higher, -5.0 pp")
    assert len(per_seed) == 20 and set(per_seed["against"]) == {"control", "separable"}


@pytest.mark.integration
def test_a_bad_study_stops_snakemake_before_any_job_naming_the_key(tmp_path):
    import subprocess

    from conftest import SNAKEMAKE

    bad = tmp_path / "bad.yaml"
    bad.write_text("study:\n  paradoxical7_qnn:\n    grid: {learning_rate: [], batch_size: [8]}\n")
    result = subprocess.run(
        [
            SNAKEMAKE,
            "-s",
            str(ROOT / "Snakefile"),
            "-n",
            "study",
            "--cores",
            "1",
            "--configfile",
            str(ROOT / "config/ci.yaml"),
            str(bad),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "study.paradoxical7_qnn.grid.learning_rate = []: an empty grid" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
