"""Rule augment: the training split plus randomly rotated/shifted copies."""

import logging

from qtlmnist.arrays import load_dataset, save_dataset
from qtlmnist.augment import augment
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params.settings
features, labels = load_dataset(snakemake.input[0], width=784)
features, labels = augment(
    features,
    labels,
    copies=params["copies"],
    rotation_deg=params["rotation_deg"],
    shift_frac=params["shift_frac"],
    horizontal_flip=params["horizontal_flip"],
    seed=params["seed"],
)
logging.info("augmented training set: %d images", len(labels))
save_dataset(snakemake.output[0], features, labels)
