"""The trainable systems' claims table, paired comparisons, per-run table and figures (shared by every system).

How a verdict is decided (docs/verdicts.md says it for a reader; the rules' numbers are config `verdicts`):

- Each run is "trained" or "stuck" by one rule, `qtlmnist.stats.trained`: its accuracy on its own training
  images above the training set's majority-class rate by a margin from that set's size. Per setting the table
  gives the trained fraction (Wilson interval over seeds), the trained runs' mean and Student-t interval, and
  the median and range over all runs (a two-peaked spread is described by these, not by one mean).
- A claim compared "equal" is read against the TRAINED runs' interval. The claim's own interval is a Wilson
  interval around the claimed value at the source's n (`Claim.source_n`), else the claimed value widened by the
  tolerance (report.accuracy_tolerance_pp) on each side. Verdicts: "below the claim" / "above the claim" (the
  intervals do not overlap), "not resolvable by the source's test set" (they overlap and the source's own
  interval is wider than INCONCLUSIVE_WIDTH_PP), "inconclusive: ..." (they overlap and ours is wider than that,
  with the seeds that would narrow it), "consistent"; "when it trains (k of n runs; [lo, hi]% of seeds)" when
  some runs stick, "not reproduced (0 of n runs train)" when all do.
- A claim that a value exceeds a floor ("above": e.g. a weight change above 0; "above_chance": the set's
  majority-class share) is "reproduced" when the interval lies above the floor, "not reproduced" when it lies
  within the tolerance of it or below, "inconclusive" when it straddles it. Accuracy floors read the trained
  runs, as above; a weight change reads every run.
- A "best_epoch" claim (the best per-epoch accuracy on the test set, as its source picked it) is reported as
  such, beside the same runs' final epoch and an epoch selected without the test set (the best `val_accuracy`
  of the history where the task has a validation set, else the best `train_accuracy`, said which), and the
  inflation: best-on-test minus selected, over seeds.
- Every quantum setting is compared with its control (`qtlmnist.systems.Pair`, same seeds, same images):
  McNemar's exact test per seed on the per-image correct/incorrect pairs; across seeds the ONE primary test
  of config (`verdicts.primary_test`) on the per-seed accuracies; Holm over one family, every comparison of
  the table; for each: whether it can reach its Holm level at all (2/2^n for the exact sign flip), and when
  not significant, the seeds that would resolve the observed difference.

Numbers stay numbers here (percent); `claims_markdown` formats them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import stats
from ..report import markdown_table
from ..stats import t_interval, wilson_interval

NO_CLAIM = "control (no claim)"
# An interval (ours over seeds, or the source's over its images) wider than this says too little to decide on.
INCONCLUSIVE_WIDTH_PP = 10.0
NOT_RUN = "not run (setting not configured)"


@dataclass(frozen=True)
class Rules:
    """How the tables decide, fixed before any run (config `verdicts`, `report.accuracy_tolerance_pp`).

    tolerance_pp: a claim of unknown resolution is the claimed value +- this many points.
    alpha: family-wise error rate of the one Holm family (every quantum-vs-control comparison of the table).
    primary_test: across seeds, per comparison: "sign_flip" (exact permutation) or "paired_t".
    trained_confidence: the one-sided confidence of the trained-vs-stuck margin (`stats.trained`).
    power: for the seeds that would resolve an observed difference.
    """

    tolerance_pp: float = 2.0
    alpha: float = 0.05
    primary_test: str = "sign_flip"
    trained_confidence: float = 0.99
    power: float = 0.8

    def __post_init__(self):
        if self.primary_test not in stats.PRIMARY_TESTS:
            raise ValueError(f"primary_test {self.primary_test!r}: allowed {', '.join(stats.PRIMARY_TESTS)}")


def run_trained(metrics: dict, confidence: float) -> bool:
    """Whether one run trained (`stats.trained` on its train set's accuracy, majority rate and size)."""
    train = metrics["sets"]["train"]
    return stats.trained(train["accuracy"], train["majority_rate"], train["n"], confidence)


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


def selected_epoch(history: pd.DataFrame, eval_set: str) -> tuple[float, str]:
    """(accuracy on `eval_set` at the epoch chosen without it, what chose it): the first epoch of best
    `val_accuracy` where the history has one, else of best `train_accuracy`; (nan, "") when it has neither."""
    for chooser in ("val", "train"):
        column = f"{chooser}_accuracy"
        if column in history and chooser != eval_set and f"{eval_set}_accuracy" in history:
            best = int(history[column].to_numpy().argmax())
            return float(history[f"{eval_set}_accuracy"].iloc[best]), chooser
    return float("nan"), ""


def when_trains(k: int, n: int) -> str:
    low, high = stats.proportion_interval(k, n)
    return f"when it trains ({k} of {n} runs; [{100 * low:.0f}, {100 * high:.0f}]% of seeds)"


def _seeds_for(values: np.ndarray, width: float, k: int, n: int) -> str:
    """'about N seeds': the seeds (all runs, at the observed trained fraction k of n) at which the t interval
    of the chosen runs' mean would be `width` wide at their observed spread."""
    need = stats.seeds_for_width(float(np.std(values, ddof=1)), width)
    return f"more than {stats.MAX_SEEDS} seeds" if need is None else f"about {int(np.ceil(need * n / k))} seeds"


def verdict(claim, claimed, values: np.ndarray, trained: np.ndarray, rules: Rules, claim_interval) -> str:
    """The verdict of one claim from its runs' values (percent) and trained flags (see the module's doc)."""
    if claimed is None:
        return NO_CLAIM
    n, k = len(values), int(trained.sum())
    accuracy = claim.statistic != "weight_change"  # accuracies read the trained runs, a weight change every run
    chosen, k = (values[trained], k) if accuracy else (values, n)
    if k == 0:
        return f"not reproduced (0 of {n} runs train)"
    if k < 2:
        why = f"1 of {n} runs trains" if n > 1 else "1 seed"
        return f"inconclusive: {why}, an interval over seeds needs 2 (about {2 * n} seeds would give 2)"
    mean, _, low, high = t_interval(chosen)
    low, high = max(low, 0.0), min(high, 100.0) if accuracy else high  # as the table shows them
    trains = f" {when_trains(k, n)}" if k < n else ""
    runs = f"the {k} trained runs'" if k < n else f"the {n} runs'"
    if claim.compare != "equal":  # "above" or "above_chance": the claim is that the value exceeds `claimed`
        floor = "chance" if claim.compare == "above_chance" else f"{claimed:g}%"
        if low > claimed:
            return f"reproduced{trains}"
        if high <= claimed + rules.tolerance_pp:
            return f"not reproduced (not above {floor}){trains}"
        if mean <= claimed:
            return f"inconclusive{trains}: {runs} interval straddles {floor} and their mean is not above it"
        need = _seeds_for(chosen, 2 * (mean - claimed), k, n)
        return f"inconclusive{trains}: {runs} interval straddles {floor}; {need} would lift it above at this mean"
    claim_low, claim_high = claim_interval
    if high < claim_low:
        return f"below the claim{trains}"
    if low > claim_high:
        return f"above the claim{trains}"
    if claim.source_n is not None and claim_high - claim_low > INCONCLUSIVE_WIDTH_PP:
        return (
            f"not resolvable by the source's test set{trains}: its {claim.source_n} images put {claimed:g}% in "
            f"[{claim_low:.0f}, {claim_high:.0f}]%"
        )
    if high - low > INCONCLUSIVE_WIDTH_PP:
        need = _seeds_for(chosen, INCONCLUSIVE_WIDTH_PP, k, n)
        width = f"{INCONCLUSIVE_WIDTH_PP:g} pp"
        return f"inconclusive{trains}: {runs} interval is {high - low:.0f} pp wide; {need} would narrow it to {width}"
    return f"consistent{trains}"


def claim_interval(claim, claimed: float | None, tolerance_pp: float) -> tuple[float, float]:
    """The claim's own interval (percent): a 95% Wilson interval at the source's n where known, else the
    claimed value +- the tolerance; (nan, nan) for a control or a floor."""
    if claimed is None or claim.compare != "equal":
        return float("nan"), float("nan")
    if claim.source_n is not None:
        low, high = wilson_interval(claimed / 100, claim.source_n)
        return 100 * low, 100 * high
    return claimed - tolerance_pp, claimed + tolerance_pp


def _best_epoch_columns(chosen: list, histories: dict, claim, best: np.ndarray) -> dict:
    """For a best_epoch claim: the same runs' final-epoch accuracy, the accuracy at the epoch selected without
    the test set, and the inflation (best on the test set minus selected), mean and t interval over seeds."""
    final = np.array([100.0 * m["sets"][claim.eval_set]["accuracy"] for _, m in chosen])
    picked = [selected_epoch(histories[key], claim.eval_set) for key, _ in chosen]
    selected = np.array([100.0 * value for value, _ in picked])
    by = {chooser for _, chooser in picked}
    if np.isnan(selected).any() or len(by) != 1:
        return {"final_epoch": final.mean()}
    inflation_mean, _, inflation_low, inflation_high = t_interval(best - selected)
    return {
        "final_epoch": final.mean(),
        "selected_epoch": selected.mean(),
        "selected_by": by.pop(),
        "inflation": inflation_mean,
        "inflation_low": inflation_low,
        "inflation_high": inflation_high,
    }


CLAIMS_COLUMNS = [
    "system", "claim", "source", "setting", "eval_set", "statistic", "compare", "part", "n_images", "parameters",
    "claimed", "source_n", "claim_low", "claim_high",
    "measured_as_run", "measured_exact", "measured_shots", "seed_std", "ci95_low", "ci95_high", "n_seeds",
    "n_trained", "trained_low", "trained_high", "trained_mean", "trained_ci_low", "trained_ci_high",
    "median", "min", "max",
    "final_epoch", "selected_epoch", "selected_by", "inflation", "inflation_low", "inflation_high",
    "precision", "shots", "verdict",
]  # fmt: skip


def claims_table(
    runs: dict[tuple[str, str, int], dict], claims: dict[str, tuple], rules: Rules, histories: dict | None = None
) -> pd.DataFrame:
    """One row per claim of every system; runs (and their history frames, for best_epoch claims) are keyed
    (system, setting, seed). Percent throughout; trained_low/high are percent of seeds."""
    rows = []
    for system, system_claims in claims.items():
        for claim in system_claims:
            chosen = [(key, m) for key, m in runs.items() if key[0] == system and key[1] == claim.setting]
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
                "source_n": claim.source_n,
            }
            if not chosen:
                rows.append(row | {"n_seeds": 0, "verdict": NOT_RUN})
                continue
            metrics = [m for _, m in chosen]
            values = [_claim_value(m, claim) for m in metrics]
            as_run = np.array([100.0 * v[0] for v in values])
            ceiling = 100.0 if claim.statistic != "weight_change" else np.inf  # a weight change may exceed 100%
            mean, std, low, high = t_interval(as_run)
            trained = np.array([run_trained(m, rules.trained_confidence) for m in metrics])
            k, n = int(trained.sum()), len(metrics)
            trained_low, trained_high = stats.proportion_interval(k, n)
            claimed = claim.claimed
            if claim.compare == "above_chance":
                claimed = row["claimed"] = _mean_percent([m["sets"][claim.eval_set]["majority_rate"] for m in metrics])
            own = claim_interval(claim, claimed, rules.tolerance_pp)
            row |= {"claim_low": own[0], "claim_high": own[1]}
            if k:
                t_mean, _, t_low, t_high = t_interval(as_run[trained])
                row |= {"trained_mean": t_mean, "trained_ci_low": max(t_low, 0.0)}
                row |= {"trained_ci_high": min(t_high, ceiling)}
            if claim.statistic == "best_epoch" and histories is not None:
                row |= _best_epoch_columns(chosen, histories, claim, as_run)
            rows.append(
                row
                | {
                    "n_images": metrics[0]["sets"][claim.eval_set]["n"],
                    "parameters": metrics[0]["parameters"]["total"],
                    "measured_as_run": mean,
                    "measured_exact": _mean_percent([v[1] for v in values]),
                    "measured_shots": _mean_percent([v[2] for v in values]),
                    "seed_std": std,
                    "ci95_low": max(low, 0.0),
                    "ci95_high": min(high, ceiling),
                    "n_seeds": n,
                    "n_trained": k,
                    "trained_low": 100 * trained_low,
                    "trained_high": 100 * trained_high,
                    "median": float(np.median(as_run)),
                    "min": float(as_run.min()),
                    "max": float(as_run.max()),
                    "precision": metrics[0]["precision"],
                    "shots": metrics[0]["shots"],
                    "verdict": verdict(claim, claimed, as_run, trained, rules, own),
                }
            )
    table = pd.DataFrame(rows).reindex(columns=CLAIMS_COLUMNS)
    return table.astype(CLAIMS_INTEGERS)


# Whole numbers that may be missing (a setting not run): nullable integers, also when the CSV is read back.
CLAIMS_INTEGERS = dict.fromkeys(("n_images", "parameters", "n_seeds", "shots", "source_n", "n_trained"), "Int64")


# --- paired comparisons: each quantum setting vs its control ---------------------------------------------

# Whole numbers that are missing where a pair did not run, as in CLAIMS_INTEGERS (also when read back).
COMPARISONS_INTEGERS = dict.fromkeys(("n_images", "n_seeds", "seeds_to_resolve", "mcnemar_below_alpha"), "Int64")

COMPARISON_COLUMNS = [
    "system", "quantum", "control", "eval_set", "n_images", "n_seeds", "seeds", "quantum_mean", "control_mean",
    "mean_difference", "difference_low", "difference_high", "difference_std", "primary_test", "p", "smallest_p",
    "holm_threshold", "p_holm", "significant", "reachable", "seeds_to_resolve", "mcnemar_below_alpha", "verdict",
]  # fmt: skip


PER_SEED_COLUMNS = [
    "system", "quantum", "control", "eval_set", "seed", "n_images", "quantum_accuracy", "control_accuracy",
    "only_quantum_right", "only_control_right", "mcnemar_p",
]  # fmt: skip


def _paired_runs(runs: dict, system: str, pair) -> tuple[dict, dict]:
    """Per seed, the quantum and the control run of one pair; a clear error when their seeds differ."""
    quantum = {seed: m for (s, setting, seed), m in runs.items() if s == system and setting == pair.quantum}
    control = {seed: m for (s, setting, seed), m in runs.items() if s == system and setting == pair.control}
    if quantum and control and set(quantum) != set(control):
        raise ValueError(
            f"{system}: {pair.quantum} vs {pair.control} ran seeds {sorted(quantum)} vs {sorted(control)}: a paired "
            "comparison needs the same seeds (give both settings the same `seeds`)"
        )
    return quantum, control


def _correct(result: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    for key in ("labels", "predictions"):
        if key not in result:
            raise ValueError(f"{where}: no per-image {key!r} in the run's metrics (rerun it with this version)")
    labels = np.asarray(result["labels"])
    return labels, np.asarray(result["predictions"]) == labels


def comparisons_table(runs: dict, pairs: dict[str, tuple], rules: Rules) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per comparison, one row per comparison and seed). Per seed: both runs' accuracy on the pair's
    eval_set from their per-image predictions (as run) and McNemar's exact test; across seeds: the primary
    test, the mean difference quantum - control in pp with its t interval, and Holm over every comparison
    that ran (the table's one family)."""
    rows, per_seed = [], []
    for system, system_pairs in pairs.items():
        for pair in system_pairs:
            row = {"system": system, "quantum": pair.quantum, "control": pair.control, "eval_set": pair.eval_set}
            quantum, control = _paired_runs(runs, system, pair)
            if not quantum or not control:
                rows.append(row | {"n_seeds": 0, "verdict": NOT_RUN})
                continue
            seeds = sorted(quantum)
            accuracies = []
            for seed in seeds:
                where = f"{system}: {pair.quantum} vs {pair.control}, seed {seed}, set {pair.eval_set!r}"
                labels, right_q = _correct(quantum[seed]["sets"][pair.eval_set], f"{where} ({pair.quantum})")
                control_labels, right_c = _correct(control[seed]["sets"][pair.eval_set], f"{where} ({pair.control})")
                if not np.array_equal(labels, control_labels):
                    raise ValueError(f"{where}: the two runs' images differ (labels in another order or set)")
                only_q, only_c, p = stats.mcnemar_exact(right_q, right_c)
                accuracies.append((100 * right_q.mean(), 100 * right_c.mean()))
                per_seed.append(
                    {k: row[k] for k in ("system", "quantum", "control", "eval_set")}
                    | {"seed": seed, "n_images": len(labels), "quantum_accuracy": accuracies[-1][0]}
                    | {"control_accuracy": accuracies[-1][1], "only_quantum_right": only_q}
                    | {"only_control_right": only_c, "mcnemar_p": p}
                )
            a, b = np.array(accuracies).T
            mean, std, low, high = t_interval(a - b)
            mcnemar = [r["mcnemar_p"] for r in per_seed[-len(seeds) :]]
            rows.append(
                row
                | {"n_images": len(labels), "n_seeds": len(seeds), "seeds": " ".join(map(str, seeds))}
                | {"quantum_mean": a.mean(), "control_mean": b.mean(), "mean_difference": mean}
                | {"difference_low": low, "difference_high": high, "difference_std": std}
                | {"primary_test": rules.primary_test, "p": stats.primary_p(rules.primary_test, a, b)}
                | {"smallest_p": stats.smallest_p(rules.primary_test, len(seeds))}
                | {"mcnemar_below_alpha": int(np.sum(np.array(mcnemar) < rules.alpha)), "_differences": a - b}
            )
    ran = [row for row in rows if row["n_seeds"] > 0]
    p = [row["p"] for row in ran]
    for row, p_holm, level in zip(ran, stats.holm(p), stats.holm_thresholds(p, rules.alpha)):
        row |= {"p_holm": p_holm, "holm_threshold": level, "significant": bool(p_holm <= rules.alpha)}
        row["reachable"] = bool(row["smallest_p"] <= level)
        need = None
        if not row["significant"]:
            need = stats.seeds_to_resolve(row["_differences"], level, rules.primary_test, rules.power)
        row |= {"seeds_to_resolve": need, "verdict": _comparison_verdict(row, need, rules)}
    table = pd.DataFrame(rows).reindex(columns=COMPARISON_COLUMNS)
    table = table.astype(COMPARISONS_INTEGERS | {"significant": "boolean", "reachable": "boolean"})
    return table, pd.DataFrame(per_seed, columns=PER_SEED_COLUMNS)


def _comparison_verdict(row: dict, need: int | None, rules: Rules) -> str:
    """Significant after Holm, or why not: the test cannot reach its level at this many seeds, or the observed
    difference is too small for its spread; with the seeds that would resolve it."""
    n, mean = row["n_seeds"], row["mean_difference"]
    if row["significant"]:
        better = "quantum" if mean > 0 else "control"
        return f"{better} higher, {mean:+.1f} pp (significant after Holm)"
    if np.all(row["_differences"] == 0):
        return "no difference (the same accuracy on every seed)"
    resolve = (
        f"about {need} seeds would resolve the observed {mean:+.1f} pp (power {rules.power:g})"
        if need is not None
        else f"the observed {mean:+.1f} pp is too small for its spread to resolve within {stats.MAX_SEEDS} seeds"
    )
    if not row["reachable"]:
        return (
            f"inconclusive: {n} seeds cannot reach its Holm level {row['holm_threshold']:.2g} (the exact sign "
            f"flip's smallest p is 2/2^{n} = {row['smallest_p']:.2g}); {resolve}"
        )
    return f"inconclusive: not significant after Holm (p {row['p_holm']:.2g}); {resolve}"


def runs_table(runs: dict[tuple[str, str, int], dict], confidence: float = Rules.trained_confidence) -> pd.DataFrame:
    """One row per (run, evaluation set): accuracies (fractions) with the as-run accuracy's 95% Wilson interval
    over the set's images, parameters, seconds, and whether the run trained (`run_trained`, the same on each
    of its rows)."""
    rows = []
    for (system, setting, seed), m in runs.items():
        trained = run_trained(m, confidence)
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
                | {"fit_seconds": m["seconds"]["fit"], "shots_seconds": m["seconds"]["shots"], "trained": trained}
            )
    return pd.DataFrame(rows).astype({"best_epoch": "Int64"})


def _percent(value) -> str:
    return "" if pd.isna(value) else f"{value:.1f}%"


def _interval(low, high, digits: int = 1) -> str:
    return "" if pd.isna(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def claims_markdown(table: pd.DataFrame, comparisons: pd.DataFrame | None = None, rules: Rules = Rules()) -> str:
    """The claims table (and the comparisons, when given) as GitHub markdown, numbers formatted here only."""
    columns = [
        "system", "claim", "source", "setting (images)", "claimed", "measured (exact)", "measured (as run)",
        "measured (shots)", "95% interval over seeds", "runs trained", "trained runs: mean [95%]",
        "median (range)", "verdict",
    ]  # fmt: skip
    rows = []
    for r in table.itertuples(index=False):
        images = "" if pd.isna(r.n_images) else f" ({r.eval_set}, {r.n_images})"
        best = ", best epoch on the test set" if r.statistic == "best_epoch" else ""
        best += f", weights of {r.part}*" if r.statistic == "weight_change" else ""
        claimed = _percent(r.claimed)
        if r.compare != "equal" and claimed:
            claimed = f"> {claimed}" + (" (chance)" if r.compare == "above_chance" else "")
        if not pd.isna(r.source_n):
            claimed += f" {_interval(r.claim_low, r.claim_high, 0)} (n={r.source_n})"
        as_run = _percent(r.measured_as_run)
        if not pd.isna(r.precision) and r.precision > 0:
            as_run += f" (noise {r.precision:g})"
        shots = _percent(r.measured_shots) + ("" if pd.isna(r.shots) or pd.isna(r.measured_shots) else f" ({r.shots})")
        trained = (
            ""
            if pd.isna(r.n_trained)
            else f"{r.n_trained} of {r.n_seeds} {_interval(r.trained_low, r.trained_high, 0)}%"
        )
        trained_runs = (
            "" if pd.isna(r.trained_mean) else f"{r.trained_mean:.1f}% {_interval(r.trained_ci_low, r.trained_ci_high)}"
        )
        spread = "" if pd.isna(r.median) else f"{r.median:.1f}% ({r.min:.1f}-{r.max:.1f})"
        setting = f"{r.setting}{images}{best}"
        exact = _percent(r.measured_exact)
        interval = _interval(r.ci95_low, r.ci95_high)
        cells = [r.system, r.claim, r.source, setting, claimed, exact, as_run, shots, interval, trained, trained_runs]
        rows.append([*cells, spread, r.verdict])
    note = (
        "\nmeasured: over seeds, in percent. exact = the trained circuit's exact expectations/probabilities; "
        "as run = the model's own forward pass (with the estimator's Gaussian noise where the setting has "
        "precision > 0, as the original ran); shots = the trained circuit on Aer with that many shots per image. "
        "A run trained when its accuracy on its own training images exceeds that set's majority-class rate by "
        f"z = {stats.trained_z(rules.trained_confidence):.2f} standard errors (one-sided "
        f"{rules.trained_confidence:g}); 'runs trained' gives the 95% Wilson interval of the trained fraction. "
        "A claim is read against the trained runs' 95% Student-t interval; its own interval is the Wilson "
        f"interval at the source's n where known (n=...), else the claim +- {rules.tolerance_pp:g} pp. "
        "'not resolvable by the source's test set': the two overlap and the source's own interval is wider than "
        f"{INCONCLUSIVE_WIDTH_PP:g} pp. A claimed '> x' (a floor; chance = the share of the set's most frequent "
        "class) is reproduced when the interval lies above x. 'weights of p*': how far training moved the weights "
        "of the layers named p..., in percent of their initial L2 norm (0 = never moved). A control row with "
        "shots and no exact value is our Sarkar hybrid: its circuit-count features were sampled with that many "
        "shots, so its as-run value is that shots value. docs/verdicts.md says how each verdict is decided.\n"
    )
    out = "# Trainable systems: claims vs measured\n\n" + markdown_table(columns, rows) + note
    out += best_epoch_markdown(table)
    if comparisons is not None and len(comparisons):
        out += comparisons_markdown(comparisons, rules)
    return out


def best_epoch_markdown(table: pd.DataFrame) -> str:
    """The best_epoch claims beside their final and selected epochs and the inflation ("" when none)."""
    best = table[table["statistic"].eq("best_epoch") & table["selected_epoch"].notna()]
    if not len(best):
        return ""
    columns = ["system", "claim", "best on test", "final epoch", "selected epoch (by)", "inflation, pp [95%]"]
    rows = [
        [r.system, r.claim, _percent(r.measured_as_run), _percent(r.final_epoch),
         f"{_percent(r.selected_epoch)} ({r.selected_by})",
         f"{r.inflation:+.1f} {_interval(r.inflation_low, r.inflation_high)}"]
        for r in best.itertuples(index=False)
    ]  # fmt: skip
    note = (
        "\nbest on test: the best per-epoch accuracy on the test set (as the source picked it); selected: the "
        "accuracy on the same set at the first epoch of best validation (val) or, without a validation set, "
        "training (train) accuracy; inflation: best on test minus selected, mean over seeds.\n"
    )
    return "\n## Best epoch on the test set vs an epoch selected without it\n\n" + markdown_table(columns, rows) + note


def comparisons_table_markdown(table: pd.DataFrame, primary_test: str) -> str:
    """The quantum-vs-control comparisons that ran, as a markdown table (docs/systems.md writes it alone)."""
    ran = table[table["n_seeds"] > 0]
    columns = [
        "system", "quantum vs control (images)", "seeds", "quantum", "control", "difference, pp [95%]",
        f"p ({primary_test})", "smallest p", "Holm level", "Holm p", "McNemar p < alpha (seeds)", "verdict",
    ]  # fmt: skip
    rows = [
        [r.system, f"{r.quantum} vs {r.control} ({r.eval_set}, {r.n_images})", r.n_seeds, _percent(r.quantum_mean),
         _percent(r.control_mean), f"{r.mean_difference:+.1f} {_interval(r.difference_low, r.difference_high)}",
         f"{r.p:.2g}", f"{r.smallest_p:.2g}", f"{r.holm_threshold:.2g}", f"{r.p_holm:.2g}",
         f"{r.mcnemar_below_alpha} of {r.n_seeds}", r.verdict]
        for r in ran.itertuples(index=False)
    ]  # fmt: skip
    return markdown_table(columns, rows)


def comparisons_markdown(table: pd.DataFrame, rules: Rules) -> str:
    """The quantum-vs-control comparisons that ran, with the family and tests they were decided by."""
    ran = table[table["n_seeds"] > 0]
    test = "exact sign-flip permutation test" if rules.primary_test == "sign_flip" else "paired t-test"
    note = (
        f"\nOne family: the {len(ran)} comparisons above, Holm-Bonferroni at alpha = {rules.alpha:g}, named before "
        f"the runs in config (`verdicts`). Across seeds: the {test} on the per-seed accuracies (as run) of the "
        "two settings, same seeds, same images; difference = quantum - control. smallest p: the least p the test "
        "can give over that many seeds (2/2^n for the sign flip): a comparison whose smallest p is above its Holm "
        "level cannot be significant at any observed difference. Per seed, McNemar's exact test on the per-image "
        "correct/incorrect pairs (uncorrected; descriptive). Seeds that would resolve: the paired t-test's power "
        f"{rules.power:g} at the comparison's Holm level, at the observed mean and spread of the differences.\n"
    )
    table_text = comparisons_table_markdown(table, rules.primary_test)
    return "\n## Quantum vs control, paired over seeds\n\n" + table_text + note


# --- figures ---------------------------------------------------------------------------------------------


def learning_curves(
    histories: dict[tuple[str, int], pd.DataFrame], title: str, path, trained: dict[tuple[str, int], bool] | None = None
) -> None:
    """Loss and per-epoch accuracy of every tracked set, one colour per setting: mean over the runs that
    trained (`run_trained`; all runs when `trained` is None), with their range shaded; each stuck run drawn on
    its own as a thin dashed line of the setting's colour, so a two-peaked setting shows both peaks."""
    from .. import figures

    plt = figures.plt
    trained = trained or {}
    settings = list(dict.fromkeys(setting for setting, _ in histories))
    metrics = ["loss", *sorted({c for h in histories.values() for c in h.columns if c.endswith("_accuracy")})]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for colour, setting in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3, settings):
        keys = [key for key in histories if key[0] == setting]
        good = [histories[key] for key in keys if trained.get(key, True)]
        stuck = [histories[key] for key in keys if not trained.get(key, True)]
        for ax, metric in zip(axes[0], metrics):
            if not all(metric in f for f in good + stuck):
                continue
            scale = 100.0 if metric.endswith("_accuracy") else 1.0
            epochs = histories[keys[0]]["epoch"].to_numpy()
            marker = "o" if len(epochs) <= 5 else None  # a one-epoch run is a point, not a line
            label = f"{setting} ({len(good)} trained" + (f", {len(stuck)} stuck: dashed)" if stuck else ")")
            if good:
                values = np.stack([f[metric].to_numpy() for f in good])
                ax.plot(epochs, scale * values.mean(axis=0), color=colour, marker=marker, label=label)
                ax.fill_between(epochs, scale * values.min(axis=0), scale * values.max(axis=0), color=colour, alpha=0.2)
            for i, frame in enumerate(stuck):
                line = {"label": label} if not good and i == 0 else {}
                stuck_marker = "x" if marker else None  # a one-epoch stuck run: a cross
                values = scale * frame[metric].to_numpy()
                ax.plot(epochs, values, color=colour, ls="--", lw=0.9, alpha=0.7, marker=stuck_marker, **line)
    for ax, metric in zip(axes[0], metrics):
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss" if metric == "loss" else f"{metric.removesuffix('_accuracy')} accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}: mean over trained runs (line), their range (band), stuck runs (dashed)")
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
