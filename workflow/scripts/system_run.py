"""Rule system_run: train and evaluate one (system, setting, seed) of a trainable-circuit system."""

import logging

from qtlmnist.arrays import atomic_path, save_csv, save_json
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
wildcards = snakemake.wildcards
seed = int(wildcards.seed)
seed_tensorflow(seed, snakemake.threads)

# after seed_tensorflow: TensorFlow's thread pools are fixed when it is first imported (training imports it)
from qtlmnist.systems import load, training  # noqa: E402

inputs = {name: path for name, path in snakemake.input.items()}
values = dict(snakemake.params.values)
metrics, history, model = training.run(load(wildcards.system), inputs, values, seed, snakemake.threads)
metrics = {"system": wildcards.system, "setting": wildcards.setting, **metrics}
logging.getLogger("system_run").info("%s", {k: v for k, v in metrics.items() if k != "sets"})
save_csv(snakemake.output.history, history)
with atomic_path(snakemake.output.weights, ".weights.h5") as tmp:
    model.save_weights(tmp)
save_json(snakemake.output.metrics, metrics)
