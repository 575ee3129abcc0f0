"""Rule gather_quantum: concatenate a split's shards in row order into one features/labels file."""

import numpy as np

from qtlmnist.arrays import load_npz, save_dataset
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
shards = [load_npz(path, {"features": (None, None), "labels": (None,)}, finite=("features",)) for path in snakemake.input]
save_dataset(
    snakemake.output[0],
    np.concatenate([s["features"] for s in shards]),
    np.concatenate([s["labels"] for s in shards]),
)
