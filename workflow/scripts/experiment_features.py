"""Rule experiment_features: one feature variant (see qtlmnist.variants) of every split."""

import logging

from qtlmnist.arrays import load_circuit_inputs, load_dataset, save_dataset
from qtlmnist.data import SPLITS
from qtlmnist.experiments import variant_features
from qtlmnist.runtime import setup_logging
from qtlmnist.variants import Variant

setup_logging(snakemake.log[0])
latents, labels, inputs = {}, {}, {}
for split, latent_path, input_path in zip(SPLITS, snakemake.input.latents, snakemake.input.inputs):
    latents[split], labels[split] = load_dataset(latent_path)
    inputs[split] = load_circuit_inputs(input_path)[0]
variant = Variant.parse(snakemake.wildcards.variant)
features = variant_features(variant, latents, inputs, snakemake.params.settings, snakemake.threads)
for split, path in zip(SPLITS, snakemake.output):
    logging.info("%s %s: %s", variant.name, split, features[split].shape)
    save_dataset(path, features[split], labels[split])
