"""Rule preprocess: verified raw files -> normalised, flattened train/val/test .npz."""

import logging

from qtlmnist.arrays import save_dataset
from qtlmnist.data import load_raw, preprocess
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params
raw = load_raw(dict(snakemake.input.items()), dataset=snakemake.wildcards.dataset)
splits = preprocess(raw, params.val_fraction, params.seed, params.max_train, params.max_test)
for split, (features, labels) in splits.items():
    logging.info("%s: %d images", split, len(labels))
    save_dataset(snakemake.output[split], features, labels)
