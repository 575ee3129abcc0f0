"""Rule system_run: train and evaluate every seed of one (system, setting) of a trainable-circuit system, the
seeds in groups of the setting's group_size (qtlmnist.systems.training.run_setting); per seed its metrics,
history and weights."""

import logging
from pathlib import Path

from qtlmnist.arrays import atomic_path, save_csv, save_json
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
wildcards = snakemake.wildcards
seeds = [int(seed) for seed in snakemake.params.seeds]
seed_tensorflow(seeds[0], snakemake.threads)  # every model is seeded again with its own seed before it is built

# after seed_tensorflow: TensorFlow's thread pools are fixed when it is first imported (training imports it)
from qtlmnist.systems import load, training  # noqa: E402

inputs = {name: path for name, path in snakemake.input.items()}
values = dict(snakemake.params.values)
runs = training.run_setting(load(wildcards.system), inputs, values, seeds, snakemake.threads)
folder = Path(snakemake.output[0])
folder.mkdir(parents=True, exist_ok=True)
for seed, (metrics, history, model) in zip(seeds, runs):
    metrics = {"system": wildcards.system, "setting": wildcards.setting, **metrics}
    logging.getLogger("system_run").info("%s", {k: v for k, v in metrics.items() if k != "sets"})
    save_csv(folder / f"seed_{seed}_history.csv", history)
    with atomic_path(folder / f"seed_{seed}.weights.h5", ".weights.h5") as tmp:
        model.save_weights(tmp)
    save_json(folder / f"seed_{seed}.json", metrics)
