"""Rule plot_confusion: counts and row-normalised confusion heatmaps of one model on one split."""

from qtlmnist import figures
from qtlmnist.arrays import load_json
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
model, split = snakemake.wildcards.model, snakemake.wildcards.cm_split
metrics = load_json(snakemake.input[0])
title = (
    f"{snakemake.params.dataset_title}, {model}: {split} accuracy {100 * metrics[f'{split}_accuracy']:.2f}% "
    f"(n={metrics[f'{split}_n']})"
)
figures.confusion(metrics[f"{split}_confusion"], snakemake.params.class_names, title, snakemake.output[0])
