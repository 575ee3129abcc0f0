"""The trainable systems' claims table, per-run table and figures (shared by every system).

A claims row compares one claim of a source with the runs (one per seed) of the setting that measures it:
the mean over seeds of the accuracy as run (the model's own forward pass, with the estimator's noise where the
setting has precision > 0: what the source's own printout measured), exact (no noise) and with shots on Aer,
a 95% Student-t interval over seeds of the as-run accuracy, and a verdict: "reproduced" when the claimed
value lies within that interval widened by the tolerance (report.accuracy_tolerance_pp) on each side and the
interval is at most INCONCLUSIVE_WIDTH_PP wide ("inconclusive" when wider), "not reproduced" when outside.
A claim that a value exceeds a floor (compare "above": e.g. a weight change above 0, "the CNN is trained";
"above_chance": the model learns to classify, the floor being the set's majority-class share) is
"reproduced" when the interval lies above the floor, "not reproduced" when it lies within the tolerance of
it or below, and "inconclusive" when it straddles it. A weight_change claim measures, instead of an
accuracy, how far training moved the weights of some layers (percent of their initial L2 norm).
Numbers stay numbers here (percent); `claims_markdown` formats them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import markdown_table
from ..stats import t_interval, wilson_interval

NO_CLAIM = "control (no claim)"
# An interval over seeds wider than this says too little to call a claim inside it reproduced.
INCONCLUSIVE_WIDTH_PP = 10.0
NOT_RUN = "not run (setting not configured)"


def part_change(metrics: dict, part: str) -> float:
    """How far training moved the weights of the layers whose names start with `part`: the L2 norm of the
    change over the L2 norm of the initial weights (all those layers' arrays as one vector), a fraction."""
    layers = {name: v for name, v in metrics["weight_change"].items() if name.startswith(part)}
    if not layers:
        raise ValueError(f"no layer of the run starts with {part!r} (layers: {', '.join(metrics['weight_change'])})")
    change = np.sqrt(sum(v["change_l2"] ** 2 for v in layers.values()))
    return float(change / np.sqrt(sum(v["initial_l2"] ** 2 for v in layers.values())))


def _claim_value(metrics: dict, claim) -> tuple[float, float | None, float | None]:
    """(as run, exact, shots) accuracy of one run for one claim; best_epoch has only the as-run value, and
    weight_change only its one value (a fraction, like the accuracies)."""
    if claim.statistic == "weight_change":
        return part_change(metrics, claim.part), None, None
    result = metrics["sets"][claim.eval_set]
    if claim.statistic == "best_epoch":
        if "best_epoch_accuracy" not in result:
            raise ValueError(f"claim {claim.claim!r}: set {claim.eval_set!r} is not tracked per epoch (history_sets)")
        return result["best_epoch_accuracy"], None, None
    return result["accuracy"], result["accuracy_exact"], result["accuracy_shots"]


def _mean_percent(values: list) -> float:
    values = [v for v in values if v is not None]
    return 100.0 * float(np.mean(values)) if values else float("nan")


def verdict(claimed: float | None, low: float, high: float, tolerance_pp: float, compare: str = "equal") -> str:
    if claimed is None:
        return NO_CLAIM
    if compare != "equal":  # "above" or "above_chance": the claim is that the value exceeds `claimed`
        floor = "chance" if compare == "above_chance" else f"{claimed:g}%"
        if low > claimed:
            return "reproduced"
        if high <= claimed + tolerance_pp:
            return f"not reproduced (not above {floor})"
        return f"inconclusive (interval straddles {floor})"
    if claimed > high + tolerance_pp:
        return "not reproduced (measured lower)"
    if claimed < low - tolerance_pp:
        return "not reproduced (measured higher)"
    if high - low > INCONCLUSIVE_WIDTH_PP:
        return f"inconclusive (interval wider than {INCONCLUSIVE_WIDTH_PP:g} pp)"
    return "reproduced"


def claims_table(runs: dict[tuple[str, str, int], dict], claims: dict[str, tuple], tolerance_pp: float) -> pd.DataFrame:
    """One row per claim of every system; runs are keyed (system, setting, seed)."""
    rows = []
    for system, system_claims in claims.items():
        for claim in system_claims:
            chosen = [m for (s, setting, _), m in runs.items() if s == system and setting == claim.setting]
            row = {
                "system": system,
                "claim": claim.claim,
                "source": claim.source,
                "setting": claim.setting,
                "eval_set": claim.eval_set,
                "statistic": claim.statistic,
                "compare": claim.compare,
                "part": claim.part or None,
                "claimed": np.nan if claim.claimed is None else float(claim.claimed),
            }
            if not chosen:
                rows.append(row | {"n_seeds": 0, "verdict": NOT_RUN})
                continue
            values = [_claim_value(m, claim) for m in chosen]
            as_run = np.array([100.0 * v[0] for v in values])
            mean, std, low, high = t_interval(as_run)
            low = max(low, 0.0)
            if claim.statistic != "weight_change":  # an accuracy; a weight change may exceed 100%
                high = min(high, 100.0)
            claimed = claim.claimed
            if claim.compare == "above_chance":
                claimed = row["claimed"] = _mean_percent([m["sets"][claim.eval_set]["majority_rate"] for m in chosen])
            rows.append(
                row
                | {
                    "n_images": chosen[0]["sets"][claim.eval_set]["n"],
                    "parameters": chosen[0]["parameters"]["total"],
                    "measured_as_run": mean,
                    "measured_exact": _mean_percent([v[1] for v in values]),
                    "measured_shots": _mean_percent([v[2] for v in values]),
                    "seed_std": std,
                    "ci95_low": low,
                    "ci95_high": high,
                    "n_seeds": len(chosen),
                    "precision": chosen[0]["precision"],
                    "shots": chosen[0]["shots"],
                    "verdict": verdict(claimed, low, high, tolerance_pp, claim.compare),
                }
            )
    columns = [
        "system", "claim", "source", "setting", "eval_set", "statistic", "compare", "part", "n_images", "parameters",
        "claimed",
        "measured_as_run", "measured_exact", "measured_shots", "seed_std", "ci95_low", "ci95_high", "n_seeds",
        "precision", "shots", "verdict",
    ]  # fmt: skip
    table = pd.DataFrame(rows).reindex(columns=columns)
    return table.astype(CLAIMS_INTEGERS)


# Whole numbers that may be missing (a setting not run): nullable integers, also when the CSV is read back.
CLAIMS_INTEGERS = {"n_images": "Int64", "parameters": "Int64", "n_seeds": "Int64", "shots": "Int64"}


def runs_table(runs: dict[tuple[str, str, int], dict]) -> pd.DataFrame:
    """One row per (run, evaluation set): accuracies (fractions) with the as-run accuracy's 95% Wilson interval
    over the set's images, parameters and seconds."""
    rows = []
    for (system, setting, seed), m in runs.items():
        for name, result in m["sets"].items():
            low, high = wilson_interval(result["accuracy"], result["n"])
            rows.append(
                {"system": system, "setting": setting, "seed": seed, "model": m["model"], "eval_set": name}
                | {"n": result["n"], "parameters": m["parameters"]["total"]}
                | {"circuit_parameters": m["parameters"]["circuit"]}
                | {"majority_rate": result.get("majority_rate")}
                | {k: result[k] for k in ("accuracy", "accuracy_exact", "accuracy_shots")}
                | {"wilson_low": low, "wilson_high": high}
                | {"best_epoch": result.get("best_epoch"), "best_epoch_accuracy": result.get("best_epoch_accuracy")}
                | {"fit_seconds": m["seconds"]["fit"], "shots_seconds": m["seconds"]["shots"]}
            )
    return pd.DataFrame(rows).astype({"best_epoch": "Int64"})


def _percent(value) -> str:
    return "" if pd.isna(value) else f"{value:.1f}%"


def claims_markdown(table: pd.DataFrame) -> str:
    """The claims table as GitHub markdown, numbers formatted here and only here."""
    columns = [
        "system", "claim", "source", "setting (images)", "claimed", "measured (exact)", "measured (as run)",
        "measured (shots)", "95% interval over seeds", "n seeds", "verdict",
    ]  # fmt: skip
    rows = []
    for r in table.itertuples(index=False):
        images = "" if pd.isna(r.n_images) else f" ({r.eval_set}, {r.n_images})"
        best = ", best epoch" if r.statistic == "best_epoch" else ""
        best += f", weights of {r.part}*" if r.statistic == "weight_change" else ""
        claimed = _percent(r.claimed)
        if r.compare != "equal" and claimed:
            claimed = f"> {claimed}" + (" (chance)" if r.compare == "above_chance" else "")
        interval = "" if pd.isna(r.ci95_low) else f"[{r.ci95_low:.1f}, {r.ci95_high:.1f}]"
        as_run = _percent(r.measured_as_run)
        if not pd.isna(r.precision) and r.precision > 0:
            as_run += f" (noise {r.precision:g})"
        shots = _percent(r.measured_shots) + ("" if pd.isna(r.shots) or pd.isna(r.measured_shots) else f" ({r.shots})")
        n_seeds = "" if pd.isna(r.n_seeds) else r.n_seeds
        setting = f"{r.setting}{images}{best}"
        exact = _percent(r.measured_exact)
        rows.append([r.system, r.claim, r.source, setting, claimed, exact, as_run, shots, interval, n_seeds, r.verdict])
    note = (
        "\nmeasured: mean over seeds, in percent. exact = the trained circuit's exact expectations/probabilities; "
        "as run = the model's own forward pass (with the estimator's Gaussian noise where the setting has "
        "precision > 0, as the original ran); shots = the trained circuit on Aer with that many shots per image. "
        "The interval (Student t) and the verdict use the as-run values; a claim is reproduced when it lies within "
        f"the interval widened by the tolerance and the interval is at most {INCONCLUSIVE_WIDTH_PP:g} pp wide; "
        "a claimed '> x' (a floor; chance = the share of the set's most frequent class) when the interval lies "
        "above x. 'weights of p*': how far training moved the weights of the layers named p..., in percent of "
        "their initial L2 norm (0 = never moved). "
        "A control row with shots and no exact value is our Sarkar hybrid: its circuit-count features were sampled "
        "with that many shots, so its as-run value is that shots value.\n"
    )
    return "# Trainable systems: claims vs measured\n\n" + markdown_table(columns, rows) + note


# --- figures ---------------------------------------------------------------------------------------------


def learning_curves(histories: dict[tuple[str, int], pd.DataFrame], title: str, path) -> None:
    """Loss and per-epoch accuracy of every tracked set, one colour per setting: mean over seeds, with the
    range over seeds shaded."""
    from .. import figures

    plt = figures.plt
    settings = list(dict.fromkeys(setting for setting, _ in histories))
    metrics = ["loss", *sorted({c for h in histories.values() for c in h.columns if c.endswith("_accuracy")})]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for colour, setting in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3, settings):
        frames = [h for (s, _), h in histories.items() if s == setting]
        for ax, metric in zip(axes[0], metrics):
            if not all(metric in f for f in frames):
                continue
            values = np.stack([f[metric].to_numpy() for f in frames])
            scale = 100.0 if metric.endswith("_accuracy") else 1.0
            epochs = frames[0]["epoch"].to_numpy()
            marker = "o" if len(epochs) <= 5 else None  # a one-epoch run is a point, not a line
            label = f"{setting} (n={len(frames)})"
            ax.plot(epochs, scale * values.mean(axis=0), color=colour, marker=marker, label=label)
            ax.fill_between(epochs, scale * values.min(axis=0), scale * values.max(axis=0), color=colour, alpha=0.2)
    for ax, metric in zip(axes[0], metrics):
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss" if metric == "loss" else f"{metric.removesuffix('_accuracy')} accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}: mean over seeds (line), range (band)")
    figures.save(fig, path)


CONFUSION_COLUMNS = 4  # panels per row of the confusion figure


def confusion_matrices(metrics: dict[tuple[str, int], dict], class_names, title: str, path, eval_set="test") -> None:
    """Per setting: the confusion counts on `eval_set`, summed over seeds (as run), row-normalised colours.
    Each setting's classes are its runs' `class_names` (a task on some of the system's classes), else
    `class_names`; CONFUSION_COLUMNS panels per row."""
    from .. import figures

    plt = figures.plt
    settings = list(dict.fromkeys(setting for setting, _ in metrics))
    columns = min(len(settings), CONFUSION_COLUMNS)
    rows = -(-len(settings) // columns)
    # constrained layout keeps the rotated class names of one row clear of the titles of the next
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.9 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(settings) :]:
        ax.set_axis_off()
    for ax, setting in zip(axes.flat, settings):
        chosen = [m for (s, _), m in metrics.items() if s == setting]
        names = chosen[0].get("class_names", list(class_names))
        counts = sum(np.array(m["sets"][eval_set]["confusion"]) for m in chosen)
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        size = 9 if len(names) <= 4 else 6
        for (i, j), value in np.ndenumerate(counts):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=size)
        ax.set_xticks(range(len(names)), names, rotation=90 if max(map(len, names)) > 3 else 0, fontsize=size)
        ax.set_yticks(range(len(names)), names, fontsize=size)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{setting} ({eval_set}, {len(chosen)} seeds)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    figures.save(fig, path)
