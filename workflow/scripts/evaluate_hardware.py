"""Rule evaluate_hardware: the trained hybrid (on Aer features) on the device's features of the chosen test
images, beside the noiseless and the noise-model features of the same images."""

import logging

import numpy as np

from qtlmnist import classifier, evaluate
from qtlmnist.arrays import load_dataset, load_json, load_npz, save_json
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
keras = seed_tensorflow(0, snakemake.threads)  # nothing is drawn: inference only
device = load_npz(snakemake.input.device, {"features": (None, None), "labels": (None,), "rows": (None,)}, ("features",))
rows, labels = device["rows"], device["labels"]
noiseless, test_labels = load_dataset(snakemake.input.noiseless)
noise_model, noise_labels = load_dataset(snakemake.input.noise_model)
if not (np.array_equal(test_labels[rows], labels) and np.array_equal(noise_labels, labels)):
    raise ValueError(
        f"{snakemake.input.device}: its rows and labels do not match the test split; rerun hardware_features"
    )
width = noiseless.shape[1]
# build() adapts the Normalization layer on the array given; load_weights then restores the trained one's state.
model = classifier.build(keras, width, noiseless[:2], list(p.units), p.dropout)
model.load_weights(snakemake.input.weights)
sets = {"noiseless": noiseless[rows], "noise_model": noise_model, "device": device["features"]}
metrics = {name: evaluate.metrics(classifier.predict(model, features), labels) for name, features in sets.items()}
run = load_json(snakemake.input.run)
summary = {
    "backend": run["backend"],
    "local_testing_mode": run["local_testing_mode"],
    "images": len(rows),
    "shots": run["shots"],
    **evaluate.summary(metrics),  # noiseless_accuracy, noise_model_accuracy, device_accuracy, ...
}
logging.info("%s", {k: v for k, v in summary.items() if not k.endswith("confusion")})
save_json(snakemake.output[0], summary)
