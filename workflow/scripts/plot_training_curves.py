"""Rule plot_training_curves: accuracy and loss per epoch of both classifiers."""

import pandas as pd

from qtlmnist import figures
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
histories = {model: pd.read_csv(path) for model, path in zip(snakemake.params.models, snakemake.input)}
figures.training_curves(histories, snakemake.output[0])
