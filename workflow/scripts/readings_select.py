"""Checkpoint readings_select: the best readings on validation accuracy at the first seed (never the test split)."""

import logging

from qtlmnist import readings
from qtlmnist.arrays import load_json, save_json
from qtlmnist.runtime import setup_logging
from qtlmnist.variants import Variant

setup_logging(snakemake.log[0])
runs = {Variant.parse(run["variant"]).index: run for run in map(load_json, snakemake.input)}
best = readings.select(runs, snakemake.params.best)
logging.info("best %d of %d readings on validation: %s", len(best), len(runs), best)
save_json(snakemake.output[0], {"best": best, "by": "val_accuracy", "readings": len(runs)})
