import numpy as np
import pandas as pd

from qtlmnist import evaluate, report


def test_metrics_on_hand_checked_predictions():
    labels = np.array([0, 0, 1, 1, 2])
    probabilities = np.full((5, 10), 0.01)
    probabilities[[0, 1, 2, 3, 4], [0, 1, 1, 1, 0]] = 0.91  # rows sum to 1
    m = evaluate.metrics(probabilities, labels)
    assert m["accuracy"] == 0.6
    assert m["per_class_accuracy"][:3] == [0.5, 1.0, 0.0] and m["per_class_accuracy"][3] is None
    assert m["confusion"][0][:3] == [1, 1, 0] and m["confusion"][2][0] == 1
    expected_loss = -np.mean(np.log([0.91, 0.01, 0.91, 0.91, 0.01]))
    assert abs(m["loss"] - expected_loss) < 1e-12


def metrics(baseline_val, hybrid_val):
    return {
        "autoencoder": {"train_mse": 0.0215, "val_mse": 0.03},
        "baseline": {"train_accuracy": 0.79, "val_accuracy": baseline_val, "test_accuracy": 0.97},
        "hybrid": {"train_accuracy": 0.70, "val_accuracy": hybrid_val, "test_accuracy": 0.74},
    }


def test_replication_table_has_every_claim_and_verdicts():
    table = report.replication_table(metrics(0.8134, 0.60), accuracy_tolerance_pp=2.0, mse_tolerance=0.005)
    assert list(table["claim"]) == [c.claim for c in report.CLAIMS]
    assert list(table.columns) == ["claim", "source", "unit", "paper", "measured", "difference", "tolerance", "verdict"]
    verdict = dict(zip(table["claim"], table["verdict"]))
    assert verdict["Autoencoder train MSE"] == "reproduced"  # |0.0215 - 0.020| <= 0.005
    assert verdict["Autoencoder validation MSE"] == "not reproduced"  # 0.009 off
    assert verdict["Classical (64-d latents) validation accuracy"] == "reproduced"  # +1.00 pp
    assert verdict["Hybrid (quantum counts) validation accuracy"] == "not reproduced"
    assert verdict["Hybrid accuracy lower than classical"] == "reproduced"
    row = table[table["claim"] == "Classical (64-d latents) validation accuracy"].iloc[0]
    assert (row["unit"], row["paper"], row["measured"], row["tolerance"]) == ("%", 80.34, 81.34, 2.0)
    assert abs(row["difference"] - 1.00) < 1e-9
    comparison = table.iloc[-1]
    assert comparison["unit"] == "comparison" and abs(comparison["measured"] - (60.0 - 81.34)) < 1e-9
    flipped = report.replication_table(metrics(0.5, 0.6), 2.0, 0.005)
    assert flipped["verdict"].iloc[-1] == "not reproduced"


def test_csv_keeps_numbers_and_markdown_formats_them(tmp_path):
    from qtlmnist.arrays import save_csv

    intervals = {("hybrid", "test_accuracy"): (0.65, 0.64, 0.66, 5)}
    table = report.replication_table(metrics(0.8134, 0.60), 2.0, 0.005, intervals)
    save_csv(tmp_path / "t.csv", table)
    back = pd.read_csv(tmp_path / "t.csv")
    assert back["measured"].dtype == float and back.loc[3, "measured"] == 81.34
    assert back["seeds_n"].dropna().tolist() == [5]
    lines = report.to_markdown(table, note="NOTE").splitlines()[2:]  # after the heading
    assert lines[0].startswith("| claim | source | paper | measured | difference | tolerance | verdict | over seeds")
    assert "| 80.34 % | 81.34 % | +1.00 pp | ±2 pp | reproduced |" in lines[5]
    assert lines[9].endswith("| 74.00 % | -1.00 pp | ±2 pp | reproduced | 65.00 % [64.00, 66.00] (n=5) |")
    assert "| yes | yes | -21.34 pp (val) |" in lines[10]


def test_markdown_has_header_rows_and_note():
    text = report.markdown_table(["a", "b"], [[1, "x"], [2, "y"]]) + "NOTE"
    assert text.splitlines()[:4] == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]


def test_on_another_dataset_only_the_comparison_gets_a_verdict():
    table = report.replication_table(metrics(0.8134, 0.60), 2.0, 0.005, dataset="fashion_mnist")
    assert set(table["verdict"].iloc[:-1]) == {report.NOT_COMPARABLE}
    assert table["verdict"].iloc[-1] == "reproduced"  # hybrid below classical holds on any data
    assert table["paper"].iloc[3] == 80.34  # the paper's number stays as a reference
    assert report.to_markdown(table, "Fashion-MNIST").startswith(
        "Sarkar 2024 (paper: MNIST), measured on Fashion-MNIST"
    )
