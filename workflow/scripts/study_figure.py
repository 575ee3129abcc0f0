"""Rule study_figure: one system's learning curves, test accuracy against training images per model."""

import pandas as pd

from qtlmnist import study
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
curves = pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True)
study.curves_figure(curves, f"{snakemake.wildcards.system}: learning curves (tuned)", snakemake.output[0])
