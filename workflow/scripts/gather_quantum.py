"""Rule gather_quantum: concatenate a split's shards in row order into one features/labels file."""

import numpy as np

from qtlmnist.arrays import load_dataset, save_dataset
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
shards = [load_dataset(path) for path in snakemake.input]  # in shard order, so rows stay in order
save_dataset(snakemake.output[0], np.concatenate([f for f, _ in shards]), np.concatenate([y for _, y in shards]))
