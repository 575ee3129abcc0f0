"""What the readings show (qtlmnist.readings): each reading's accuracies next to its classical control, the best
readings chosen on validation with intervals over seeds, whether any reading reaches each of the paper's hybrid
claims, and the main effects of each choice from an additive least-squares fit (the design is unbalanced, so
averages per value would mix the factors).

Accuracies are fractions in the runs and percent in the tables, as in the rest of the workflow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .readings import FACTORS, describe, dummies, folds
from .report import CLAIMS, NOT_COMPARABLE, markdown_table
from .stats import t_interval

METRICS = ("train_accuracy", "val_accuracy", "test_accuracy")
# The paper's claims about its hybrid (qtlmnist.report.CLAIMS), which the readings are measured against.
HYBRID_CLAIMS = [c for c in CLAIMS if c.measured_key[0] == "hybrid" and c.unit == "%"]


def per_reading(
    rows: list[dict], runs: dict[tuple[str, int], dict], first_seed: int, controls: dict[int, int], best: list[int]
) -> pd.DataFrame:
    """One row per reading: its values, whether its angle map folds, the hybrid's accuracies at the first seed,
    its control's (`controls`: reading -> the reading whose control it shares), and whether it is among `best`."""
    out = []
    for i, row in enumerate(rows, start=1):
        hybrid = runs[(f"reading{i}_seed{first_seed}", first_seed)]
        control = runs[(f"readinginputs{controls[i]}", first_seed)]
        out.append(
            {"reading": i, **row, "folds": folds(row["scaling"], row["angle"])}
            | {f"hybrid_{m}": 100 * hybrid[m] for m in METRICS}
            | {"control_of": controls[i]}
            | {f"control_{m}": 100 * control[m] for m in METRICS}
            | {"hybrid_minus_control_pp": 100 * (hybrid["test_accuracy"] - control["test_accuracy"])}
            | {"test_n": hybrid["test_n"], "selected": i in best}
        )
    return pd.DataFrame(out)


def intervals(runs: dict[tuple[str, int], dict], best: list[int], seeds: list[int]) -> pd.DataFrame:
    """The best readings over every seed: per metric the mean and 95% Student-t interval (percent), in the order
    of their mean validation accuracy (the first row is the best reading chosen on validation)."""
    out = []
    for i in best:
        found = [runs[(f"reading{i}_seed{s}", s)] for s in seeds]
        row = {"reading": i, "n_seeds": len(found)}
        for m in METRICS:
            mean, std, low, high = t_interval(np.array([100 * r[m] for r in found]))
            row |= {f"{m}_mean": mean, f"{m}_std": std, f"{m}_low": low, f"{m}_high": high}
        out.append(row)
    table = pd.DataFrame(out)
    return table.sort_values(["val_accuracy_mean", "reading"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def main_effects(rows: list[dict], accuracy: np.ndarray, levels: dict[str, list]) -> tuple[pd.DataFrame, dict]:
    """Fit accuracy = intercept + sum over factors of effect[factor][value] by least squares (numpy lstsq), with
    each factor's first value (ours) as its reference (effect 0). Returns (one row per value: factor, value,
    readings with it, effect in the accuracy's unit and its standard error when the fit has residual degrees of
    freedom, the factor's span = its largest minus smallest effect; factors in order of span), and the fit's
    intercept, residual degrees of freedom, residual standard deviation and R^2.

    Raises ValueError when the design cannot separate the effects (fewer independent readings than
    coefficients)."""
    x = dummies(rows, levels)
    y = np.asarray(accuracy, dtype=np.float64)
    coefficients, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    if rank < x.shape[1]:
        raise ValueError(
            f"the {len(rows)} readings cannot separate {x.shape[1]} coefficients of the additive model (rank {rank}): "
            "add readings (readings.residual_df)"
        )
    residuals = y - x @ coefficients
    df = len(y) - x.shape[1]
    sigma = float(np.sqrt(residuals @ residuals / df)) if df > 0 else float("nan")
    errors = sigma * np.sqrt(np.diag(np.linalg.inv(x.T @ x))) if df > 0 else np.full(x.shape[1], np.nan)
    total = float(((y - y.mean()) ** 2).sum())
    fit = {
        "intercept": float(coefficients[0]),
        "residual_df": df,
        "residual_sd": sigma,
        "r_squared": 1.0 - float(residuals @ residuals) / total if total > 0 else float("nan"),
        "n_readings": len(rows),
    }
    out, column = [], 1
    for factor, values in levels.items():
        effects = {values[0]: (0.0, float("nan"))}
        for value in values[1:]:
            effects[value] = (float(coefficients[column]), float(errors[column]))
            column += 1
        span = max(e for e, _ in effects.values()) - min(e for e, _ in effects.values())
        for value, (effect, error) in effects.items():
            out.append(
                {"factor": factor, "value": value, "reference": value == values[0]}
                | {"readings": sum(row[factor] == value for row in rows), "effect_pp": effect, "se_pp": error}
                | {"factor_span_pp": span}
            )
    table = pd.DataFrame(out)
    varied = table[table.groupby("factor")["value"].transform("size") > 1]
    order = varied.drop_duplicates("factor").sort_values("factor_span_pp", ascending=False, kind="stable")["factor"]
    table = varied.set_index("factor").loc[list(order)].reset_index()
    return table, fit


def claims(table: pd.DataFrame, best: pd.DataFrame, tolerance_pp: float, comparable: bool = True) -> pd.DataFrame:
    """Per hybrid claim of the paper: the highest value over the readings (first seed) and which reading, how
    many readings come within the tolerance of it (the replication table's 'reproduced') and how many reach it
    (at or above the claim less the tolerance), and the best reading chosen on validation with its mean and
    interval over seeds. The highest value is a maximum over readings, chosen knowing the split it is measured
    on; the validated reading is the honest estimate. On a dataset the paper did not measure (`comparable`
    False) the numbers stay and the verdict says so."""
    out = []
    chosen = best.iloc[0]
    for claim in HYBRID_CLAIMS:
        metric = claim.measured_key[1]
        values = table[f"hybrid_{metric}"]
        top = int(values.idxmax())
        within = int(((values - claim.paper).abs() <= tolerance_pp).sum())
        reach = int((values >= claim.paper - tolerance_pp).sum())
        out.append(
            {"claim": claim.claim, "source": claim.source, "paper": claim.paper, "metric": metric}
            | {"readings": len(table), "highest": float(values.max()), "highest_reading": int(table["reading"][top])}
            | {"readings_within_tolerance": within, "readings_reaching": reach, "tolerance_pp": tolerance_pp}
            | {"validated_reading": int(chosen["reading"]), "validated_n_seeds": int(chosen["n_seeds"])}
            | {f"validated_{k}": float(chosen[f"{metric}_{k}"]) for k in ("mean", "low", "high")}
            | {
                "verdict": verdict(within, reach, len(table), float(values.max()), int(table["reading"][top]))
                if comparable
                else NOT_COMPARABLE
            }
        )
    return pd.DataFrame(out)


def verdict(within: int, reach: int, n: int, highest: float, reading: int) -> str:
    """In words: does any of the n readings reproduce (within tolerance) or reach (at or above) the claim?"""
    if within:
        return f"reproduced by {within} of {n} readings"
    if reach:
        return f"not reproduced: exceeded by {reach} of {n} readings (highest {highest:.2f}%, reading {reading})"
    return f"not reproduced in any of {n} readings (highest {highest:.2f}%, reading {reading})"


# --- as a person reads them ---------------------------------------------------------------------------------


def readings_markdown(table: pd.DataFrame) -> str:
    columns = ["reading", *FACTORS, "folds", "hybrid val", "hybrid test", "control test", "hybrid - control"]
    rows = [
        [
            r["reading"],
            *(r[f] for f in FACTORS),
            "yes" if r["folds"] else "no",
            f"{r['hybrid_val_accuracy']:.2f}%",
            f"{r['hybrid_test_accuracy']:.2f}%",
            f"{r['control_test_accuracy']:.2f}%",
            f"{r['hybrid_minus_control_pp']:+.2f} pp",
        ]
        for _, r in table.iterrows()
    ]
    return markdown_table(columns, rows)


def intervals_markdown(best: pd.DataFrame, rows: list[dict]) -> str:
    columns = ["reading", "values", "seeds", "validation: mean [95% CI]", "test: mean [95% CI]"]
    out = []
    for k, r in best.iterrows():
        name = f"{int(r['reading'])}" + (" (chosen on validation)" if k == 0 else "")
        cells = [
            f"{r[f'{m}_mean']:.2f}% [{r[f'{m}_low']:.2f}, {r[f'{m}_high']:.2f}]"
            for m in ("val_accuracy", "test_accuracy")
        ]
        out.append([name, describe(rows[int(r["reading"]) - 1]), int(r["n_seeds"]), *cells])
    return markdown_table(columns, out)


def claims_markdown(table: pd.DataFrame) -> str:
    columns = [
        "claim",
        "paper",
        "highest over readings",
        "reaching / within tolerance",
        "chosen on validation",
        "verdict",
    ]
    rows = [
        [
            f"{r['claim']} ({r['source']})",
            f"{r['paper']:.2f}%",
            f"{r['highest']:.2f}% (reading {r['highest_reading']})",
            f"{r['readings_reaching']} / {r['readings_within_tolerance']} of {r['readings']}",
            f"reading {r['validated_reading']}: {r['validated_mean']:.2f}% [{r['validated_low']:.2f}, "
            f"{r['validated_high']:.2f}] ({r['validated_n_seeds']} seeds)",
            r["verdict"],
        ]
        for _, r in table.iterrows()
    ]
    return markdown_table(columns, rows)


def effects_markdown(effects: pd.DataFrame, fit: dict) -> str:
    columns = ["factor", "value", "readings", "effect on hybrid test accuracy (pp)", "factor's span (pp)"]
    rows = []
    for _, r in effects.iterrows():
        if r["reference"]:
            effect = "0 (reference: ours)"
        elif np.isnan(r["se_pp"]):
            effect = f"{r['effect_pp']:+.2f}"
        else:
            effect = f"{r['effect_pp']:+.2f} ± {r['se_pp']:.2f}"
        rows.append([r["factor"], r["value"], r["readings"], effect, f"{r['factor_span_pp']:.2f}"])
    note = (
        f"\nAdditive least-squares fit over {fit['n_readings']} readings: intercept {fit['intercept']:.2f}% (our "
        f"reading's values), residual sd {fit['residual_sd']:.2f} pp on {fit['residual_df']} degrees of freedom, "
        f"R^2 = {fit['r_squared']:.2f}; ± is one standard error.\n"
    )
    return markdown_table(columns, rows) + note


def summary_markdown(
    title: str, table: pd.DataFrame, best: pd.DataFrame, claim_rows: pd.DataFrame, effects: str, rows: list[dict]
) -> str:
    return "\n".join(
        [
            f"# {title}: can any reading of the paper reach its numbers?",
            "",
            "## Each claim over the readings",
            "",
            claims_markdown(claim_rows),
            "## The best readings on validation, over seeds",
            "",
            intervals_markdown(best, rows),
            "## Main effects",
            "",
            effects,
            "## Every reading (first seed)",
            "",
            readings_markdown(table),
        ]
    )
