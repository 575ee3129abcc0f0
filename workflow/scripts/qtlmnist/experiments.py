"""Beyond the paper: what does the circuit add? Feature variants of the same images (see qtlmnist.variants for
their names and the plan of runs), each classified by the same classifier with the same budget, over seeds,
shot counts, device noise and classical controls.

The feature variants share the main pipeline's autoencoder (trained once, seed in config), so their seeds
measure the classifier, split and shot noise; the whole-pipeline seeds (`pipeline_comparison`) retrain the
autoencoder too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import stratified_split
from .stats import t_interval, wilson_interval
from .variants import Dims, Variant, hybrid, plan


def random_features(x: np.ndarray, seed: int, width: int) -> np.ndarray:
    """cos(x W + b) with W ~ N(0, pi^2) and b ~ U(0, 2 pi), fixed by seed: a classical feature map of the inputs."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, np.pi, (x.shape[1], width))
    offsets = rng.uniform(0.0, 2 * np.pi, width)
    return np.cos(x @ weights + offsets)


def variant_features(
    variant: Variant,
    latents: dict[str, np.ndarray],
    inputs: dict[str, np.ndarray],
    settings: dict,
    threads: int,
) -> dict[str, np.ndarray]:
    """Features of every split for one variant (its `Kind` in qtlmnist.variants builds them); `settings` is
    `variant.settings(config)`, the config it reads."""
    return variant.features(latents, inputs, settings, threads)


def resplit(train, val, val_fraction: float, seed: int):
    """Pool train and val and split them again (stratified) with `seed`: ((x, y) train, (x, y) val)."""
    x = np.concatenate([train[0], val[0]])
    y = np.concatenate([train[1], val[1]])
    kept, held = stratified_split(y, val_fraction, seed)
    return (x[kept], y[kept]), (x[held], y[held])


# --- summaries -------------------------------------------------------------------------------------------


def tables(
    runs: dict[tuple[str, int], dict],
    seeds: list[int],
    shots_list: list[int],
    shots: int,
    dims: Dims,
    alpha: float = 0.05,
) -> dict[str, pd.DataFrame]:
    """The experiments' CSV tables from the runs' metrics (keyed by (variant name, seed)); numbers stay numbers
    (the exact-probability row of the shots table has no shot count: NaN).

    The shots, noise and controls tables are single runs (the first seed): each row is compared with the
    paper's hybrid of that seed on the same test images by McNemar's exact test alone (no spread over seeds to
    test), Holm-adjusted over the table's other rows (one family per table, fixed by the plan: `paired`)."""
    p = plan(seeds, shots_list, shots)
    accuracies = ("train_accuracy", "val_accuracy", "test_accuracy")
    rows = []
    for name, seed in p["seeds"]:
        model = "baseline" if Variant.parse(name).kind == "latents" else "hybrid"
        rows.append({"model": model, "seed": seed, **{k: runs[(name, seed)][k] for k in accuracies}})
    seed_runs = pd.DataFrame(rows)
    summary = []
    for model, group in seed_runs.groupby("model", sort=False):
        for metric in accuracies:
            mean, std, low, high = t_interval(group[metric].to_numpy())
            low, high = max(low, 0.0), min(high, 1.0)  # an accuracy lies in [0, 1]
            summary.append(
                {"model": model, "metric": metric, "n_seeds": len(group), "mean": mean, "std": std}
                | {"ci95_low": low, "ci95_high": high}
            )

    def single(name, seed, **extra):
        m = runs[(name, seed)]
        low, high = wilson_interval(m["test_accuracy"], m["test_n"])
        return (
            extra
            | {"variant": name, "n_features": m["n_features"], "test_accuracy": m["test_accuracy"]}
            | {
                "ci95_low": low,
                "ci95_high": high,
            }
        )

    reference = (hybrid(shots, seeds[0]).name, seeds[0])
    shots_rows = [single(name, seed, shots=Variant.parse(name).shots) for name, seed in p["shots"]]
    noise_rows = [
        single(name, seed, setting="device noise" if Variant.parse(name).kind == "noisy" else "noiseless")
        for name, seed in p["noise"]
    ]
    control_rows = [single(name, seed, control=Variant.parse(name).label(dims)) for name, seed in p["controls"]]
    return {
        "seeds": seed_runs,
        "seeds_summary": pd.DataFrame(summary),
        "shots": paired(pd.DataFrame(shots_rows).astype({"shots": "Int64"}), p["shots"], runs, reference, alpha),
        "noise": paired(pd.DataFrame(noise_rows), p["noise"], runs, reference, alpha),
        "controls": paired(pd.DataFrame(control_rows), p["controls"], runs, reference, alpha),
    }


def correct_per_image(run: dict, name: str) -> np.ndarray:
    """A run's per-test-image correct/incorrect vector, from the predictions experiment_run stores."""
    if "test_predictions" not in run or "test_labels" not in run:
        raise ValueError(
            f"experiment run {name} has no per-image test predictions (test_predictions, test_labels): it was "
            "written by an older version of experiment_run; rerun it (snakemake --forcerun experiment_run)"
        )
    return np.asarray(run["test_predictions"]) == np.asarray(run["test_labels"])


def paired(
    table: pd.DataFrame, names: list[tuple[str, int]], runs: dict, reference: tuple[str, int], alpha: float
) -> pd.DataFrame:
    """`table` (one row per run of `names`) with each run compared with the `reference` run (the paper's
    hybrid at the same seed) on the same test images: images only this run / only the hybrid gets right,
    McNemar's exact p, and its Holm-adjusted p over the table's rows other than the reference itself (the
    family), significant where the adjusted p <= alpha. The reference row's columns are empty."""
    from . import stats

    hybrid_correct = correct_per_image(runs[reference], reference[0])
    rows = []
    for name, seed in names:
        if (name, seed) == reference:
            rows.append((pd.NA, pd.NA, np.nan))
            continue
        correct = correct_per_image(runs[(name, seed)], name)
        if correct.shape != hybrid_correct.shape or not np.array_equal(
            runs[(name, seed)]["test_labels"], runs[reference]["test_labels"]
        ):
            raise ValueError(f"experiment run {name} was tested on other images than {reference[0]}: not paired")
        rows.append(stats.mcnemar_exact(correct, hybrid_correct))
    out = table.copy()
    out["only_this_right"] = pd.array([r[0] for r in rows], dtype="Int64")
    out["only_hybrid_right"] = pd.array([r[1] for r in rows], dtype="Int64")
    out["mcnemar_p"] = [r[2] for r in rows]
    family = out["mcnemar_p"].notna().to_numpy()
    adjusted = np.full(len(out), np.nan)
    adjusted[family] = stats.holm(out["mcnemar_p"][family].to_numpy())
    out["mcnemar_p_holm"] = adjusted
    out["significant"] = pd.array([pd.NA if np.isnan(a) else bool(a <= alpha) for a in adjusted], dtype="boolean")
    return out


def seed_intervals(summary: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """{(model, metric): (mean, low, high, n)} for the replication table's interval column."""
    return {(r.model, r.metric): (r.mean, r.ci95_low, r.ci95_high, r.n_seeds) for r in summary.itertuples(index=False)}


# --- whole-pipeline seeds: hybrid vs baseline, paired ------------------------------------------------------


def pipeline_comparison(
    seeds: list[int],
    accuracies: dict[str, list[float]],
    correct: dict[str, list[np.ndarray]],
    primary_test: str,
    alpha: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hybrid vs baseline when every seed retrains the whole pipeline (autoencoder, shots, classifiers).

    accuracies[model][i], correct[model][i]: seed i's test accuracy and per-image correct/incorrect vector of
    model "baseline" or "hybrid" (the same test images, in the same order, for both). Returns (per seed: both
    accuracies in percent, their difference and McNemar's exact test on the images; summary: each model's mean
    with its t interval, the mean difference hybrid - baseline in points with its interval, the primary test's
    p across seeds, its smallest reachable p, and whether it is significant at alpha: one comparison per
    dataset, a family of one, so Holm changes nothing).
    """
    from . import stats

    rows = []
    for i, seed in enumerate(seeds):
        b, c, p = stats.mcnemar_exact(correct["hybrid"][i], correct["baseline"][i])
        rows.append(
            {
                "seed": seed,
                "baseline": 100 * accuracies["baseline"][i],
                "hybrid": 100 * accuracies["hybrid"][i],
                "difference_pp": 100 * (accuracies["hybrid"][i] - accuracies["baseline"][i]),
                "only_hybrid_right": b,
                "only_baseline_right": c,
                "mcnemar_p": p,
            }
        )
    per_seed = pd.DataFrame(rows)
    summary = {"n_seeds": len(seeds), "primary_test": primary_test}
    for column in ("baseline", "hybrid", "difference_pp"):
        mean, std, low, high = stats.t_interval(per_seed[column].to_numpy())
        summary |= {f"{column}_mean": mean, f"{column}_std": std, f"{column}_low": low, f"{column}_high": high}
    # one seed: McNemar's test on its images is the only test
    p = stats.primary_p(primary_test, per_seed["hybrid"], per_seed["baseline"]) if len(seeds) >= 2 else float("nan")
    summary |= {"p": p, "smallest_p": stats.smallest_p(primary_test, len(seeds)), "alpha": alpha}
    summary["significant"] = bool(p <= alpha)
    return per_seed, pd.DataFrame([summary])


def pipeline_markdown(per_seed: pd.DataFrame, summary: pd.DataFrame, dataset_title: str) -> str:
    """The whole-pipeline seeds as a person reads them."""
    from .report import markdown_table

    s = summary.iloc[0]
    rows = [
        [r.seed, f"{r.baseline:.2f}%", f"{r.hybrid:.2f}%", f"{r.difference_pp:+.2f}",
         f"{r.only_hybrid_right} / {r.only_baseline_right}", f"{r.mcnemar_p:.2g}"]
        for r in per_seed.itertuples(index=False)
    ]  # fmt: skip
    columns = ["seed", "classical (test)", "hybrid (test)", "hybrid - classical (pp)",
               "images only hybrid / only classical right", "McNemar p"]  # fmt: skip
    lines = [
        f"# {dataset_title}: the whole pipeline over seeds (autoencoder, shots and classifiers retrained)",
        "",
        markdown_table(columns, rows),
        "",
        f"Over {int(s.n_seeds)} seeds: classical {s.baseline_mean:.2f}% [{s.baseline_low:.2f}, {s.baseline_high:.2f}], "
        f"hybrid {s.hybrid_mean:.2f}% [{s.hybrid_low:.2f}, {s.hybrid_high:.2f}] (95% t intervals); hybrid - classical "
        f"{s.difference_pp_mean:+.2f} pp [{s.difference_pp_low:+.2f}, {s.difference_pp_high:+.2f}].",
        "",
        f"Primary test across seeds ({s.primary_test}, named in config before any run): p = {s.p:.3g} "
        f"(smallest reachable over {int(s.n_seeds)} seeds: {s.smallest_p:.3g}); "
        + ("significant" if s.significant else "not significant")
        + f" at alpha = {s.alpha:g} (one comparison per dataset: Holm changes nothing).",
        "",
    ]
    return "\n".join(lines)
