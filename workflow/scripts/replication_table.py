"""Rule replication_table: one row per claim of the paper, with our value, the difference and a verdict."""

from pathlib import Path

from qtlmnist import figures, report
from qtlmnist.arrays import atomic_path, load_json, save_csv
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
metrics = {name: load_json(path) for name, path in snakemake.input.items()}
table = report.replication_table(metrics, p.accuracy_tolerance_pp, p.mse_tolerance, dataset=snakemake.wildcards.dataset)
save_csv(snakemake.output.csv, table)
with atomic_path(snakemake.output.md) as tmp:
    Path(tmp).write_text(report.to_markdown(table, p.dataset_title))
figures.paper_vs_measured(table, p.dataset_title, snakemake.output.figure)
