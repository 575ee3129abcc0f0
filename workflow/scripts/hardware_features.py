"""Rule hardware_features: the chosen test images on the configured IBM device (or fake backend), and the same
images and ISA circuit on Aer with that device's noise model. Job ids and counts go to the ledger, not here."""

import logging
import os
import sys
from pathlib import Path

import numpy as np

from qtlmnist import hardware, quantum
from qtlmnist.arrays import load_circuit_inputs, save_dataset, save_json, save_npz
from qtlmnist.runtime import setup_logging

# The plan is for the person at the terminal too, before anything is submitted: keep a handle on Snakemake's
# stderr before the log takes it over.
terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
setup_logging(snakemake.log[0])
p = snakemake.params
settings = p.settings


def report(line: str) -> None:
    logging.info("%s", line)
    print(f"[hardware_features {snakemake.wildcards.dataset}] {line}", file=terminal)


inputs, labels = load_circuit_inputs(snakemake.input.inputs)
rows = hardware.select_images(labels, settings["images"], settings["seed"])
chosen = inputs[rows]
seed = quantum.split_seed(p.seed, "test")
# The ledger's folder is read from the config, not params: where it lives must not rerun the job.
ledger = Path(snakemake.config["quantum"]["ibm_runtime"]["ledger_dir"]) / snakemake.wildcards.dataset
run = hardware.device_features(chosen, settings, p.shots, seed, ledger, report=report)
noisy = hardware.noise_model_features(run, chosen, p.shots, seed, snakemake.threads)
save_npz(snakemake.output.device, features=run.features, labels=labels[rows].astype(np.uint8), rows=rows)
save_dataset(snakemake.output.noise_model, noisy, labels[rows])
save_json(
    snakemake.output.run,
    {
        "backend": settings["backend"],
        "local_testing_mode": hardware.is_fake(settings["backend"]),
        "images": len(rows),
        "circuits": run.plan.circuits,
        "shots": int(p.shots),
        "jobs": run.plan.jobs,
        "pub_size": run.plan.pub_size,
        "mode": run.plan.mode,
        "layout": run.layout,
        "estimated_device_seconds": run.plan.device_seconds,
        "estimate_source": run.plan.estimate_source,
    },
)
report(f"done: {len(rows)} images; job ids in {run.ledger}")
