"""Rule system_figures: one system's learning curves (stuck runs marked) and confusion matrices, over its
settings and seeds."""

from pathlib import Path

import pandas as pd

from qtlmnist.arrays import load_json
from qtlmnist.runtime import setup_logging
from qtlmnist.systems import get, load, report

setup_logging(snakemake.log[0])
system = snakemake.wildcards.system
runs = [tuple(run) for run in snakemake.params.runs]
folder = Path(snakemake.input.runs[0]).parent  # results/systems/<system>; each setting's folder holds its seeds
histories = {(setting, seed): pd.read_csv(folder / setting / f"seed_{seed}_history.csv") for setting, seed in runs}
metrics = {(setting, seed): load_json(folder / setting / f"seed_{seed}.json") for setting, seed in runs}
trained = {run: report.run_trained(m, snakemake.params.trained_confidence) for run, m in metrics.items()}
title = get(system).title
report.learning_curves(histories, title, snakemake.output.curves, trained)
report.confusion_matrices(metrics, load(system).CLASS_NAMES, title, snakemake.output.confusion)
