"""Rule readings_bottleneck: the 5-unit autoencoder on the 64 latents (reduction `bottleneck`), its codes."""

import logging

from qtlmnist import readings
from qtlmnist.arrays import load_dataset, save_csv, save_dataset
from qtlmnist.data import SPLITS
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
keras = seed_tensorflow(p.seed, snakemake.threads)
latents, labels = {}, {}
for split, path in zip(SPLITS, snakemake.input):
    latents[split], labels[split] = load_dataset(path)
codes, history = readings.train_bottleneck(
    keras, latents, p.n_qubits, p.hidden, p.epochs, p.batch_size, p.learning_rate, p.seed
)
for split, path in zip(SPLITS, snakemake.output.codes):
    logging.info("%s: codes %s", split, codes[split].shape)
    save_dataset(path, codes[split], labels[split])
save_csv(snakemake.output.history, history)
