"""Rule study_tables: per system, as published | each tuned model (test accuracy over seeds, intervals), the
chosen configurations, every configuration's fold scores, and the paired tests of the verdicts over one Holm
family (qtlmnist.study)."""

import json
from pathlib import Path

import pandas as pd

from qtlmnist import study
from qtlmnist.arrays import atomic_path, load_json, save_csv
from qtlmnist.runtime import setup_logging
from qtlmnist.systems import load
from qtlmnist.systems.report import Rules

setup_logging(snakemake.log[0])
planned = [tuple(pair) for pair in snakemake.params.planned]  # (system, model) in order
finals, chosen = {}, {}
for (system, model), folder, pick in zip(planned, snakemake.input.finals, snakemake.input.chosen):
    chosen[(system, model)] = json.loads(Path(pick).read_text())
    finals[(system, model)] = {
        int(path.stem.removeprefix("seed_")): load_json(path) for path in sorted(Path(folder).glob("seed_*[0-9].json"))
    }
systems = list(dict.fromkeys(system for system, _ in planned))
rules = Rules(**snakemake.params.verdicts)
published = {system: study.published(load(system)) for system in systems}
summary = study.summary_table(finals, chosen, published, rules.trained_confidence)
pairs = {system: [tuple(pair) for pair in snakemake.params.compared[system]] for system in systems}
comparisons, per_seed = study.comparison_tables(finals, pairs, rules)
save_csv(snakemake.output.summary, summary)
save_csv(snakemake.output.comparisons, comparisons)
save_csv(snakemake.output.comparison_seeds, per_seed)
save_csv(snakemake.output.search, pd.concat([pd.read_csv(p) for p in snakemake.input.search], ignore_index=True))
with atomic_path(snakemake.output.md) as tmp:
    Path(tmp).write_text(study.markdown(summary, comparisons, rules, snakemake.params.folds))
