"""Rule experiment_tables: the experiments' CSV tables and figures, and the replication table with intervals."""

from pathlib import Path

from qtlmnist import experiments, figures, report
from qtlmnist.arrays import atomic_path, load_json, save_csv
from qtlmnist.runtime import setup_logging
from qtlmnist.variants import Dims

setup_logging(snakemake.log[0])
p = snakemake.params
runs = {(variant, seed): load_json(path) for (variant, seed), path in zip(p.runs, snakemake.input.runs)}
tables = experiments.tables(runs, p.seeds, p.shots_list, p.shots, Dims(p.latent_dim, p.n_qubits), p.alpha)
for name, table in tables.items():
    save_csv(snakemake.output[name], table)
metrics = {name: load_json(snakemake.input[name]) for name in ("autoencoder", "baseline", "hybrid")}
intervals = experiments.seed_intervals(tables["seeds_summary"])
table = report.replication_table(
    metrics, p.accuracy_tolerance_pp, p.mse_tolerance, intervals, dataset=snakemake.wildcards.dataset
)
save_csv(snakemake.output.replication, table)
with atomic_path(snakemake.output.replication_md) as tmp:
    Path(tmp).write_text(report.to_markdown(table, p.dataset_title))
figures.experiments_seeds(tables["seeds"], tables["seeds_summary"], snakemake.output.figure_seeds)
figures.experiments_shots(tables["shots"], snakemake.output.figure_shots)
figures.experiments_controls(tables["controls"], tables["noise"], snakemake.output.figure_controls)
