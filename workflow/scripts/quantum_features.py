"""Rule quantum_features: shot-based Aer counts for one shard of one split."""

import logging

from qtlmnist import quantum
from qtlmnist.arrays import load_circuit_inputs, save_npz
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
inputs, labels = load_circuit_inputs(snakemake.input[0])
start, stop = quantum.shard_bounds(len(labels), p.shards, int(snakemake.wildcards.shard))
logging.info("rows %d..%d of %d, %d shots", start, stop, len(labels), p.shots)
features = quantum.circuit_features(
    inputs[start:stop],
    shots=p.shots,
    seed=quantum.split_seed(p.seed, snakemake.wildcards.split),
    first_row=start,
    chunk_size=p.chunk_size,
    threads=snakemake.threads,
)
save_npz(snakemake.output[0], features=features, labels=labels[start:stop], first_row=start)
