"""Rule systems_table: claims vs measured for every system, and one row per run."""

from pathlib import Path

from qtlmnist.arrays import atomic_path, load_json, save_csv
from qtlmnist.runtime import setup_logging
from qtlmnist.systems import load, report

setup_logging(snakemake.log[0])
# the inputs are the setting folders (results/systems/<system>/<setting>), each holding seed_<s>.json per seed
runs = {
    (system, setting, seed): load_json(Path("results/systems") / system / setting / f"seed_{seed}.json")
    for system, setting, seed in snakemake.params.runs
}
claims = {system: load(system).CLAIMS for system in dict.fromkeys(system for system, _, _ in runs)}
table = report.claims_table(runs, claims, snakemake.params.tolerance_pp)
save_csv(snakemake.output.csv, table)
save_csv(snakemake.output.runs, report.runs_table(runs))
with atomic_path(snakemake.output.md) as tmp:
    Path(tmp).write_text(report.claims_markdown(table))
