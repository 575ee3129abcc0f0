"""Rule systems_table: claims vs measured for every system, the quantum-vs-control comparisons, one row per
run (and evaluation set)."""

from pathlib import Path

import pandas as pd

from qtlmnist.arrays import atomic_path, load_json, save_csv
from qtlmnist.runtime import setup_logging
from qtlmnist.systems import get, load, report

setup_logging(snakemake.log[0])
keys = [tuple(run) for run in snakemake.params.runs]
# the inputs are the setting folders (results/systems/<system>/<setting>), each holding every seed's files
files = {
    (system, setting, seed): Path("results/systems") / system / setting / f"seed_{seed}"
    for system, setting, seed in keys
}
runs = {key: load_json(f"{path}.json") for key, path in files.items()}
histories = {key: pd.read_csv(f"{path}_history.csv") for key, path in files.items()}
systems = dict.fromkeys(system for system, _, _ in keys)
rules = report.Rules(tolerance_pp=snakemake.params.tolerance_pp, **snakemake.params.verdicts)
table = report.claims_table(runs, {system: load(system).CLAIMS for system in systems}, rules, histories)
comparisons, per_seed = report.comparisons_table(runs, {system: get(system).pairs for system in systems}, rules)
save_csv(snakemake.output.csv, table)
save_csv(snakemake.output.comparisons, comparisons)
save_csv(snakemake.output.comparison_seeds, per_seed)
save_csv(snakemake.output.runs, report.runs_table(runs, rules.trained_confidence))
with atomic_path(snakemake.output.md) as tmp:
    Path(tmp).write_text(report.claims_markdown(table, comparisons, rules))
