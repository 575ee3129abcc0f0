"""Rule quantum_inputs: fit the 64 -> 5 reduction and [0, 1] scaling on train, apply to every split."""

import logging

from qtlmnist import quantum
from qtlmnist.arrays import load_dataset, save_npz
from qtlmnist.data import SPLITS
from qtlmnist.runtime import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
latents = {split: load_dataset(snakemake.input[split]) for split in SPLITS}
reduction = quantum.fit_reduction(latents["train"][0], p.method, p.n_qubits)
save_npz(snakemake.output.reduction, **reduction)
for split, (features, labels) in latents.items():
    inputs = quantum.apply_reduction(features, reduction, p.n_qubits)
    logging.info("%s: circuit inputs %s", split, inputs.shape)
    save_npz(snakemake.output[split], inputs=inputs, labels=labels)
