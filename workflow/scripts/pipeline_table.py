"""Rule pipeline_table: hybrid vs baseline over whole-pipeline seeds, per seed (McNemar) and across seeds."""

from pathlib import Path

import numpy as np

from qtlmnist.arrays import atomic_path, load_json, save_csv
from qtlmnist.experiments import pipeline_comparison, pipeline_markdown
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
accuracies, correct = {}, {}
for model in ("baseline", "hybrid"):
    accuracies[model] = [load_json(path)["test_accuracy"] for path in snakemake.input[f"metrics_{model}"]]
    correct[model] = []
    for path in snakemake.input[f"predictions_{model}"]:
        with np.load(path, allow_pickle=False) as data:
            correct[model].append(data["test_probabilities"].argmax(axis=1) == data["test_labels"])
per_seed, summary = pipeline_comparison(list(p.seeds), accuracies, correct, p.primary_test, p.alpha)
save_csv(snakemake.output.seeds, per_seed)
save_csv(snakemake.output.comparison, summary)
with atomic_path(snakemake.output.md) as tmp:
    Path(tmp).write_text(pipeline_markdown(per_seed, summary, p.dataset_title))
