"""Rule readings_table: every reading next to its control, the best on validation over seeds, each claim over the
readings, the main effects, the replication table with its verdicts over the readings, and the figure."""

import logging
from pathlib import Path

from qtlmnist import figures, readings, readings_tables, report
from qtlmnist.arrays import atomic_path, load_json, save_csv, save_json
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
dataset = snakemake.wildcards.dataset
rows, levels, seeds = list(p.design), dict(p.levels), list(p.seeds)
runs = {(run["variant"], run["seed"]): run for run in map(load_json, snakemake.input.runs)}
best = load_json(snakemake.input.selected)["best"]
controls = {i: readings.control_index(rows, i) for i in range(1, len(rows) + 1)}
table = readings_tables.per_reading(rows, runs, seeds[0], controls, best)
intervals = readings_tables.intervals(runs, best, seeds)
effects, fit = readings_tables.main_effects(rows, table["hybrid_test_accuracy"].to_numpy(), levels)
claims = readings_tables.claims(table, intervals, p.accuracy_tolerance_pp, comparable=dataset == report.PAPER_DATASET)
logging.info("%d readings; claims:\n%s", len(rows), claims[["claim", "highest", "verdict"]].to_string())
metrics = {name: load_json(snakemake.input[name]) for name in ("autoencoder", "baseline", "hybrid")}
replication = report.with_readings(
    report.replication_table(metrics, p.accuracy_tolerance_pp, p.mse_tolerance, dataset=dataset), claims
)
for name, frame in (
    ("readings", table),
    ("intervals", intervals),
    ("main_effects", effects),
    ("claims", claims),
    ("replication", replication),
):
    save_csv(snakemake.output[name], frame)
save_json(snakemake.output.fit, fit)
with atomic_path(snakemake.output.replication_md) as tmp:
    Path(tmp).write_text(report.to_markdown(replication, p.dataset_title))
summary = readings_tables.summary_markdown(
    p.dataset_title, table, intervals, claims, readings_tables.effects_markdown(effects, fit), rows
)
with atomic_path(snakemake.output.summary) as tmp:
    Path(tmp).write_text(summary)
split = {"val_accuracy": "validation", "test_accuracy": "test"}
marks = {
    f"paper: {c.paper:g}% {split[c.measured_key[1]]} ({c.source})": c.paper
    for c in readings_tables.HYBRID_CLAIMS
    if c.measured_key[1] in split
}
figures.readings(table, intervals, marks, p.dataset_title, snakemake.output.figure)
