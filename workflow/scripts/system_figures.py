"""Rule system_figures: one system's learning curves (stuck runs marked) and confusion matrices, over its
settings and seeds."""

import pandas as pd

from qtlmnist.arrays import load_json
from qtlmnist.runtime import setup_logging
from qtlmnist.systems import get, load, report

setup_logging(snakemake.log[0])
system = snakemake.wildcards.system
runs = [tuple(run) for run in snakemake.params.runs]
histories = {run: pd.read_csv(path) for run, path in zip(runs, snakemake.input.histories)}
metrics = {run: load_json(path) for run, path in zip(runs, snakemake.input.metrics)}
trained = {run: report.run_trained(m, snakemake.params.trained_confidence) for run, m in metrics.items()}
title = get(system).title
report.learning_curves(histories, title, snakemake.output.curves, trained)
report.confusion_matrices(metrics, load(system).CLASS_NAMES, title, snakemake.output.confusion)
