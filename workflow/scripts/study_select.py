"""Rule study_select: every configuration's fold scores of one (system, model) in one table, and the
configuration of the highest mean validation accuracy (qtlmnist.study.choose), with its values."""

from pathlib import Path

import pandas as pd

from qtlmnist import study
from qtlmnist.arrays import save_csv, save_json
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
points = dict(snakemake.params.points)
scores = {Path(path).stem: pd.read_csv(path) for path in snakemake.input}
table = study.search_table(scores, points)
table.insert(0, "model", snakemake.wildcards.candidate)
table.insert(0, "system", snakemake.wildcards.system)
chosen = study.choose(table)
folds = table[table["configuration"] == chosen]["accuracy"]
save_csv(snakemake.output.search, table)
save_json(
    snakemake.output.chosen,
    {"configuration": chosen, "point": points[chosen], "cv_mean": float(folds.mean()), "cv_std": float(folds.std())},
)
