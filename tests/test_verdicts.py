"""The claims table's verdicts and the quantum-vs-control comparisons on hand-made runs, against hand
computations and published reference values (each says where it comes from)."""

import numpy as np
import pandas as pd
import pytest

from qtlmnist.systems import Pair, common
from qtlmnist.systems import report as sysreport

RULES = sysreport.Rules(tolerance_pp=2.0, alpha=0.05, primary_test="sign_flip", trained_confidence=0.99)
LABELS = np.arange(20) % 2  # 20 test images, two classes


def run(test_accuracy, train_accuracy=0.9, right=None, labels=LABELS, best=None):
    """One run as training.run writes it: 80 training images (half of each class), 20 test images with the
    per-image labels and predictions (the first `right` of them correct, the rest wrong)."""
    right = round(test_accuracy * len(labels)) if right is None else right
    predictions = np.where(np.arange(len(labels)) < right, labels, 1 - labels)
    test = {"n": len(labels), "accuracy": test_accuracy, "accuracy_exact": test_accuracy, "accuracy_shots": None}
    test |= {"majority_rate": 0.5, "labels": labels.tolist(), "predictions": predictions.tolist()}
    test |= {"predictions_shots": None}
    if best is not None:
        test["best_epoch_accuracy"] = best
    train = {"n": 80, "accuracy": train_accuracy, "accuracy_exact": train_accuracy, "accuracy_shots": None}
    train |= {"majority_rate": 0.5, "labels": [0, 1] * 40, "predictions": [0, 1] * 40, "predictions_shots": None}
    return {"sets": {"train": train, "test": test}, "parameters": {"total": 24}, "precision": 0.0, "shots": 1024}


def test_a_split_setting_is_read_on_its_trained_runs_with_the_trained_fraction():
    # 7 of 10 seeds train and reach 80 +- 1%; 3 stick at 50% on train and test
    accuracies = [0.79, 0.80, 0.81, 0.80, 0.79, 0.81, 0.80, 0.5, 0.5, 0.5]
    runs = {("s", "split", k + 1): run(a, 0.9 if a > 0.6 else 0.5) for k, a in enumerate(accuracies)}
    runs |= {("s", "stuck", k): run(0.5, 0.5) for k in (1, 2, 3)}
    claims = {"s": (common.Claim("80%", "src", 80.0, "split", "test"), common.Claim("x", "src", 80.0, "stuck", "test"))}
    table = sysreport.claims_table(runs, claims, RULES).set_index("claim")
    row = table.loc["80%"]
    # the issue's own example; Wilson (7, 10) = [0.3968, 0.8922] (statsmodels 0.15.0 proportion_confint)
    assert row["verdict"] == "consistent when it trains (7 of 10 runs; [40, 89]% of seeds)"
    assert (row["n_trained"], row["n_seeds"]) == (7, 10)
    assert row["trained_mean"] == pytest.approx(80.0) and row["measured_as_run"] == pytest.approx(71.0)
    assert (row["median"], row["min"], row["max"]) == (79.5, 50.0, 81.0)  # by hand over the 10 values
    assert table.loc["x", "verdict"] == "not reproduced (0 of 3 runs train)"


def test_the_claim_carries_its_sources_resolution():
    runs = {("s", "a", k): run(a) for k, a in zip((1, 2, 3), (0.79, 0.80, 0.81))}
    claims = {
        "s": (
            common.Claim("80% on 20", "src", 80.0, "a", "test", source_n=20),
            common.Claim("96% on 20", "src", 96.0, "a", "test", source_n=20),
            common.Claim("90% on 2000", "src", 90.0, "a", "test", source_n=2000),
            common.Claim("70% on 200", "src", 70.0, "a", "test", source_n=200),
        )
    }
    table = sysreport.claims_table(runs, claims, RULES).set_index("claim")
    # statsmodels 0.15.0 proportion_confint(16, 20, method="wilson") = (0.58398, 0.91934)
    assert table.loc["80% on 20", ["claim_low", "claim_high"]].tolist() == pytest.approx([58.398, 91.934], abs=1e-3)
    assert table.loc["80% on 20", "verdict"] == (
        "not resolvable by the source's test set: its 20 images put 80% in [58, 92]%"
    )
    # ours [77.5, 82.5] vs Wilson(0.96, 20) = [80.5, 99.3]: they overlap, the source's is 19 pp wide
    assert table.loc["96% on 20", "verdict"].startswith("not resolvable by the source's test set")
    assert table.loc["90% on 2000", "verdict"] == "below the claim"  # Wilson [88.6, 91.2] at n = 2,000
    assert table.loc["70% on 200", "verdict"] == "above the claim"  # Wilson [63.3, 75.9]
    markdown = sysreport.claims_markdown(table.reset_index(), rules=RULES)
    assert "| 80.0% [58, 92] (n=20) |" in markdown


def test_best_epoch_on_the_test_set_beside_final_and_selected_epochs():
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_accuracy": [0.5, 0.9, 0.8], "test_accuracy": [0.6, 0.85, 0.9]})
    with_val = history.assign(val_accuracy=[0.5, 0.6, 0.7])  # val picks epoch 3
    runs = {("s", "a", k): run(0.8, best=0.9) for k in (1, 2)}
    runs |= {("s", "b", k): run(0.8, best=0.9) for k in (1, 2)}
    histories = {("s", "a", 1): history, ("s", "a", 2): history, ("s", "b", 1): with_val, ("s", "b", 2): with_val}
    claims = {
        "s": (
            common.Claim("best a", "src", 80.0, "a", "test", "best_epoch", source_n=20),
            common.Claim("best b", "src", 80.0, "b", "test", "best_epoch"),
        )
    }
    table = sysreport.claims_table(runs, claims, RULES, histories).set_index("claim")
    a, b = table.loc["best a"], table.loc["best b"]
    # by hand: the first best train epoch is 2, where test reads 85%: best 90 - 85 = 5 pp of inflation
    assert (a["measured_as_run"], a["final_epoch"], a["selected_epoch"], a["selected_by"]) == (90, 80, 85, "train")
    assert (a["inflation"], a["inflation_low"], a["inflation_high"]) == pytest.approx((5.0, 5.0, 5.0))
    assert (b["selected_epoch"], b["selected_by"], b["inflation"]) == (pytest.approx(90), "val", pytest.approx(0))
    markdown = sysreport.claims_markdown(table.reset_index(), rules=RULES)
    assert "| s | best a | 90.0% | 80.0% | 85.0% (train) | +5.0 [5.0, 5.0] |" in markdown
    assert "best epoch on the test set" in markdown


def comparison_runs(setting_q, setting_c, seeds, right_q=18, right_c=14):
    return {("s", setting_q, k): run(right_q / 20, right=right_q) for k in seeds} | {
        ("s", setting_c, k): run(right_c / 20, right=right_c) for k in seeds
    }


def test_paired_comparisons_mcnemar_primary_test_and_holm():
    runs = comparison_runs("q7", "c7", range(1, 8)) | comparison_runs("q3", "c3", (1, 2, 3))
    runs |= comparison_runs("same", "c_same", (1, 2), right_q=15, right_c=15)
    pairs = {"s": (Pair("q7", "c7"), Pair("q3", "c3"), Pair("same", "c_same"), Pair("q9", "c9"))}
    table, per_seed = sysreport.comparisons_table(runs, pairs, RULES)
    table = table.set_index("quantum")
    # per seed, by hand: the quantum model alone is right on images 14-17, the control alone on none:
    # McNemar exact p = 2 * (1/2)^4 = 0.125
    assert per_seed[["only_quantum_right", "only_control_right"]].drop_duplicates().values.tolist()[:1] == [[4, 0]]
    assert per_seed.loc[per_seed["quantum"] == "q7", "mcnemar_p"].tolist() == pytest.approx([0.125] * 7)
    # across seeds (sign flip, every difference +20 pp): p = 2/2^7 = 0.015625 and 2/2^3 = 0.25; "same": 1.
    # Holm over the family of three (by hand): sorted 0.015625, 0.25, 1 at levels 0.05/3, 0.05/2, 0.05:
    # adjusted 3 * 0.015625 = 0.046875, max(0.046875, 2 * 0.25) = 0.5, 1.
    assert table.loc["q7", "p"] == pytest.approx(2 / 2**7) and table.loc["q3", "p"] == pytest.approx(0.25)
    assert table.loc["q7", "p_holm"] == pytest.approx(0.046875) and table.loc["q3", "p_holm"] == pytest.approx(0.5)
    assert table.loc["q7", "holm_threshold"] == pytest.approx(0.05 / 3)
    assert table.loc["q7", "mean_difference"] == pytest.approx(20.0) and table.loc["q7", "mcnemar_below_alpha"] == 0
    assert table.loc["q7", "verdict"] == "quantum higher, +20.0 pp (significant after Holm)"
    assert bool(table.loc["q7", "significant"]) and not bool(table.loc["q3", "significant"])
    # 3 seeds: the sign flip's smallest p, 0.25, is above its level 0.025: it cannot be significant; with no
    # spread the t power is 1 at n = 2, so the floor decides: 2/2^n <= 0.025 first at n = 7
    assert not bool(table.loc["q3", "reachable"]) and table.loc["q3", "seeds_to_resolve"] == 7
    assert table.loc["q3", "verdict"].startswith("inconclusive: 3 seeds cannot reach its Holm level 0.025")
    assert table.loc["same", "verdict"] == "no difference (the same accuracy on every seed)"
    assert table.loc["q9", "verdict"] == sysreport.NOT_RUN and table.loc["q9", "n_seeds"] == 0
    markdown = sysreport.claims_markdown(pd.DataFrame(columns=sysreport.CLAIMS_COLUMNS), table.reset_index(), RULES)
    assert "One family: the 3 comparisons above, Holm-Bonferroni at alpha = 0.05" in markdown
    assert "| s | q7 vs c7 (test, 20) | 7 | 90.0% | 70.0% | +20.0 [20.0, 20.0] | 0.016 |" in markdown


def test_paired_t_as_the_primary_test_on_students_sleep_data():
    # per-seed accuracies set to Student's sleep data (R: t.test(extra ~ group, sleep, paired = TRUE):
    # p = 0.002833): the table's p is the paired t-test's on the per-seed accuracies
    sleep_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
    sleep_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
    labels = np.arange(1000) % 2
    runs = {}
    for seed, (x, y) in enumerate(zip(sleep_2, sleep_1)):  # accuracy 50 + x percent: 10 right per point
        runs[("s", "q", seed)] = run(0.5 + x / 100, right=round(500 + 10 * x), labels=labels)
        runs[("s", "c", seed)] = run(0.5 + y / 100, right=round(500 + 10 * y), labels=labels)
    rules = sysreport.Rules(primary_test="paired_t")
    table, _ = sysreport.comparisons_table(runs, {"s": (Pair("q", "c"),)}, rules)
    assert table.loc[0, "p"] == pytest.approx(0.002833, abs=5e-7)
    assert table.loc[0, ["difference_low", "difference_high"]].tolist() == pytest.approx([0.7001142, 2.4598858])


def test_pairs_refuse_different_seeds_images_or_runs_without_predictions():
    runs = comparison_runs("q", "c", (1, 2)) | {("s", "c", 3): run(0.7)}
    with pytest.raises(ValueError, match=r"q vs c ran seeds \[1, 2\] vs \[1, 2, 3\]: a paired comparison needs"):
        sysreport.comparisons_table(runs, {"s": (Pair("q", "c"),)}, RULES)
    runs = comparison_runs("q", "c", (1, 2))
    runs[("s", "c", 2)] = run(0.7, labels=LABELS[::-1])
    with pytest.raises(ValueError, match="seed 2, set 'test': the two runs' images differ"):
        sysreport.comparisons_table(runs, {"s": (Pair("q", "c"),)}, RULES)
    runs = comparison_runs("q", "c", (1, 2))
    del runs[("s", "q", 1)]["sets"]["test"]["predictions"]
    with pytest.raises(ValueError, match="no per-image 'predictions'"):
        sysreport.comparisons_table(runs, {"s": (Pair("q", "c"),)}, RULES)
    with pytest.raises(ValueError, match="primary_test 'wilcoxon'"):
        sysreport.Rules(primary_test="wilcoxon")


# --- config: the rules are named before any run, and bad ones fail before any job ---------------------


def test_bad_verdict_rules_and_pairs_fail_before_any_job_naming_the_key():
    import copy

    import yaml

    from conftest import ROOT
    from qtlmnist import stats
    from qtlmnist.config import ConfigError, check_consistency, check_schema

    schema_path = ROOT / "workflow/schemas/config.schema.yaml"
    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    schema = yaml.safe_load(schema_path.read_text())["properties"]["verdicts"]["properties"]
    assert tuple(schema["primary_test"]["enum"]) == stats.PRIMARY_TESTS  # one list, checked here
    for key, value, message in (
        ("trained_confidence", 1.0, r"verdicts\.trained_confidence = 1\.0: .*\(allowed: number, > 0, < 1\)"),
        ("trained_confidence", 0, r"verdicts\.trained_confidence = 0: .*\(allowed: number, > 0, < 1\)"),
        ("alpha", 1.5, r"verdicts\.alpha = 1\.5"),
        ("primary_test", "wilcoxon", r"verdicts\.primary_test = 'wilcoxon': .*one of \['sign_flip', 'paired_t'\]"),
    ):
        config = copy.deepcopy(default)
        config["verdicts"][key] = value
        with pytest.raises(ConfigError, match=message):
            check_schema(config, schema_path)
    config = copy.deepcopy(default)
    del config["systems"]["quantum_mnist"]["settings"]["control"]
    with pytest.raises(ConfigError, match=r"the comparison hybrid vs control .* needs setting\(s\) \['control'\]"):
        check_consistency(config)
    config["systems"]["run"] = ["paradoxical7_qnn"]  # a pair of a system that does not run is not asked
    config["systems"]["paradoxical7_qnn"]["run_settings"] = ["as_published", "control"]  # nor one half of a pair
    config["systems"]["paradoxical7_qnn"]["settings"]["control"]["seeds"] = [1]
    check_consistency(config)


def test_learning_curves_draw_stuck_runs_dashed_and_average_the_trained(monkeypatch):
    from qtlmnist import figures

    saved = {}
    monkeypatch.setattr(figures, "save", lambda fig, path: saved.update(fig=fig))
    frame = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.2], "test_accuracy": [0.6, 0.8, 0.9]})
    flat = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.7, 0.7, 0.7], "test_accuracy": [0.5, 0.5, 0.5]})
    histories = {("a", 1): frame, ("a", 2): frame.assign(test_accuracy=[0.7, 0.9, 1.0]), ("a", 3): flat}
    trained = {("a", 1): True, ("a", 2): True, ("a", 3): False}
    sysreport.learning_curves(histories, "t", "unused.png", trained)
    accuracy = saved["fig"].axes[1]
    solid = [line for line in accuracy.lines if line.get_linestyle() == "-"]
    dashed = [line for line in accuracy.lines if line.get_linestyle() == "--"]
    assert len(solid) == 1 and solid[0].get_ydata().tolist() == pytest.approx([65.0, 85.0, 95.0])  # trained mean
    assert len(dashed) == 1 and dashed[0].get_ydata().tolist() == [50.0, 50.0, 50.0]
    assert accuracy.get_legend() is None and saved["fig"].axes[0].get_legend().get_texts()[0].get_text() == (
        "a (2 trained, 1 stuck: dashed)"
    )
