"""Figures: reconstructions (Fig. 1), confusion matrices (Figs. 2-3), training curves, paper vs measured,
the circuit drawing and stage times. PNGs are saved without a Software/date stamp so reruns give the
same bytes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .arrays import atomic_path

PNG_METADATA = {"Software": None}


def save(fig, path: str | Path) -> None:
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=120, metadata=PNG_METADATA, bbox_inches="tight")
    plt.close(fig)


def reconstruction(originals: np.ndarray, reconstructions: np.ndarray, path: str | Path) -> None:
    """Originals in the top row, reconstructions below (the paper's Fig. 1)."""
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8))
    for i in range(n):
        for row, images in enumerate((originals, reconstructions)):
            ax = axes[row, i]
            ax.imshow(images[i].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstructed")
    fig.suptitle("Autoencoder reconstruction (test images)")
    save(fig, path)


def confusion(counts: np.ndarray, class_names: list[str], title: str, path: str | Path) -> None:
    """Counts and row-normalised (recall) heatmaps side by side, rows and columns named by class."""
    import seaborn as sns

    counts = np.asarray(counts)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = counts / np.maximum(rows, 1)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    names = dict(xticklabels=class_names, yticklabels=class_names)
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes[0], annot_kws={"size": 7}, **names)
    sns.heatmap(
        normalised, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, ax=axes[1], annot_kws={"size": 7}, **names
    )
    for ax, kind in zip(axes, ("counts", "row-normalised")):
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class" if ax is axes[0] else "")  # the rows are the same; a second label overlaps
        ax.set_title(kind)
        ax.tick_params(axis="x", labelrotation=45 if max(map(len, class_names)) > 2 else 0)
    fig.suptitle(title)
    save(fig, path)


def training_curves(histories: dict[str, pd.DataFrame], path: str | Path) -> None:
    """Accuracy and loss per epoch, train (solid) and validation (dashed), one colour per model."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for colour, (name, frame) in zip(("tab:blue", "tab:orange", "tab:green", "tab:red"), histories.items()):
        for ax, metric in zip(axes, ("accuracy", "loss")):
            ax.plot(frame["epoch"], frame[metric], color=colour, label=f"{name} train")
            ax.plot(frame["epoch"], frame[f"val_{metric}"], color=colour, linestyle="--", label=f"{name} val")
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Classifier training curves (train metrics are with dropout active)")
    save(fig, path)


def paper_vs_measured(table: pd.DataFrame, dataset_title: str, path: str | Path) -> None:
    """Grouped bars for the accuracy claims of the replication table."""
    acc = table[table["unit"] == "%"]
    paper, measured = acc["paper"].to_numpy(float), acc["measured"].to_numpy(float)
    y = np.arange(len(acc))
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(acc) + 1.5))
    ax.barh(y - 0.2, paper, height=0.4, label="paper", color="tab:gray")
    ax.barh(y + 0.2, measured, height=0.4, label="measured", color="tab:blue")
    for yi, value in zip(y, measured):
        ax.text(value + 0.5, yi + 0.2, f"{value:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, [f"{c} ({s})" for c, s in zip(acc["claim"], acc["source"])], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("accuracy (%)")
    ax.legend(loc="lower right")
    ax.set_title(f"Sarkar 2024: paper (MNIST) vs measured ({dataset_title})")
    save(fig, path)


def circuit(circuit, path: str | Path) -> None:
    fig = circuit.draw(output="mpl", fold=-1)
    save(fig, path)


def stage_times(stages: pd.DataFrame, path: str | Path) -> None:
    """Horizontal bars of wall time per rule (summed over its jobs), with max RSS in the label."""
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(stages) + 1.5))
    y = np.arange(len(stages))
    ax.barh(y, stages["wall_s"], color="tab:blue")
    ax.set_yticks(y, [f"{r} ({m:.0f} MB)" for r, m in zip(stages["rule"], stages["max_rss_mb"])], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("wall time (s), summed over the rule's jobs")
    ax.set_title("Per-rule wall time and peak RSS of the last run")
    save(fig, path)


def experiments_seeds(seed_runs: pd.DataFrame, summary: pd.DataFrame, path: str | Path) -> None:
    """Test accuracy per seed (dots) with the mean and its 95% interval, per model."""
    fig, ax = plt.subplots(figsize=(6, 4))
    test = summary[summary["metric"] == "test_accuracy"].reset_index(drop=True)
    for i, row in test.iterrows():
        runs = seed_runs[seed_runs["model"] == row["model"]]
        ax.scatter(np.full(len(runs), i), 100 * runs["test_accuracy"], color="tab:gray", zorder=3, s=18)
        ax.errorbar(
            i + 0.15,
            100 * row["mean"],
            yerr=[[100 * (row["mean"] - row["ci95_low"])], [100 * (row["ci95_high"] - row["mean"])]],
            fmt="o",
            color="tab:blue",
            capsize=5,
            zorder=4,
        )
        ax.text(i + 0.22, 100 * row["mean"], f"{100 * row['mean']:.2f}%", va="center", fontsize=8)
    ax.set_xticks(range(len(test)), test["model"])
    ax.set_xlim(-0.5, len(test) - 0.2)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Over {int(test['n_seeds'].max())} seeds: runs (gray), mean and 95% interval (blue)")
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)


def experiments_shots(shots: pd.DataFrame, path: str | Path) -> None:
    """Hybrid test accuracy against shots (log scale), the exact-probability limit as a band."""
    exact_rows = shots["shots"].isna()  # the exact-probability row has no shot count
    finite = shots[~exact_rows].astype({"shots": int})
    exact = shots[exact_rows].iloc[0]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.errorbar(
        finite["shots"],
        100 * finite["test_accuracy"],
        yerr=[
            100 * (finite["test_accuracy"] - finite["ci95_low"]),
            100 * (finite["ci95_high"] - finite["test_accuracy"]),
        ],
        fmt="o-",
        capsize=4,
        label="Aer counts",
    )
    ax.axhspan(100 * exact["ci95_low"], 100 * exact["ci95_high"], color="tab:green", alpha=0.2)
    ax.axhline(100 * exact["test_accuracy"], color="tab:green", label="exact probabilities (infinite shots)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("shots per image")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Hybrid accuracy vs shots (95% Wilson intervals)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)


def experiments_controls(controls: pd.DataFrame, noise: pd.DataFrame, path: str | Path) -> None:
    """Test accuracy of every control and of the noisy circuit, same classifier and budget."""
    noisy = noise[noise["setting"] == "device noise"].assign(control="circuit counts under device noise")
    rows = pd.concat([controls, noisy[controls.columns]], ignore_index=True)
    rows = rows.sort_values("test_accuracy", kind="stable").reset_index(drop=True)
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(rows) + 1.5))
    ax.barh(y, 100 * rows["test_accuracy"], color="tab:blue")
    ax.errorbar(
        100 * rows["test_accuracy"],
        y,
        xerr=[100 * (rows["test_accuracy"] - rows["ci95_low"]), 100 * (rows["ci95_high"] - rows["test_accuracy"])],
        fmt="none",
        color="black",
        capsize=3,
    )
    for yi, value, high in zip(y, rows["test_accuracy"], rows["ci95_high"]):
        ax.text(100 * high + 1.0, yi, f"{100 * value:.1f}", va="center", fontsize=8)
    ax.set_yticks(y, [f"{c} [{n}]" for c, n in zip(rows["control"], rows["n_features"])], fontsize=8)
    ax.set_xlim(0, 105)
    ax.set_xlabel("test accuracy (%) [number of features]")
    ax.set_title("Same classifier and budget on each feature set")
    save(fig, path)


def readings(table: pd.DataFrame, best: pd.DataFrame, claims: dict[str, float], title: str, path: str | Path) -> None:
    """Every reading's hybrid test (and validation) accuracy and its classical control's, one row each, sorted by
    the hybrid's test accuracy; the best readings on validation with their interval over seeds; the paper's
    claims as vertical lines (`claims`: label -> percent)."""
    from .readings import FACTORS

    rows = table.sort_values("hybrid_test_accuracy", kind="stable").reset_index(drop=True)
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 2.0))
    ax.scatter(rows["control_test_accuracy"], y, marker="x", color="tab:gray", label="classical control, test")
    ax.scatter(rows["hybrid_val_accuracy"], y, facecolors="none", edgecolors="tab:blue", label="hybrid, validation")
    ax.scatter(rows["hybrid_test_accuracy"], y, color="tab:blue", label="hybrid, test (first seed)")
    position = {int(r): k for k, r in enumerate(rows["reading"])}
    for _, r in best.iterrows():
        k = position[int(r["reading"])]
        ax.plot([r["test_accuracy_low"], r["test_accuracy_high"]], [k, k], color="tab:red", lw=3, alpha=0.6)
    ax.plot([], [], color="tab:red", lw=3, alpha=0.6, label="best on validation: test, 95% CI over seeds")
    for (label, value), style in zip(claims.items(), ("--", ":", "-.")):
        ax.axvline(value, color="black", ls=style, lw=1, label=label)
    names = [f"{int(r['reading'])}: " + ", ".join(str(r[f]) for f in FACTORS) for _, r in rows.iterrows()]
    ax.set_yticks(y, names, fontsize=7)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(f"{title}: the paper's hybrid under each reading of its unstated choices")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="x")
    save(fig, path)
