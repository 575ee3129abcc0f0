"""Rule train_classifier: the same classifier and budget on the quantum counts (hybrid) or latents (baseline)."""

import logging

import numpy as np

from qtlmnist import classifier, evaluate
from qtlmnist.arrays import atomic_path, load_dataset, save_csv, save_json, save_npz
from qtlmnist.data import SPLITS
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
keras = seed_tensorflow(p.seed, snakemake.threads)
data = {split: load_dataset(snakemake.input[split]) for split in SPLITS}
model, history = classifier.train_configured(keras, data["train"], data["val"], dict(p.items()), p.seed)
probabilities = {split: classifier.predict(model, features) for split, (features, _) in data.items()}
per_split = {split: evaluate.metrics(probabilities[split], data[split][1]) for split in data}
metrics = {
    "model": snakemake.wildcards.model,
    "n_features": int(data["train"][0].shape[1]),
    "epochs": int(p.epochs),
    **evaluate.summary(per_split),
}
logging.info("%s: %s", snakemake.wildcards.model, {k: v for k, v in metrics.items() if k.endswith("accuracy")})
with atomic_path(snakemake.output.weights, ".weights.h5") as tmp:
    model.save_weights(tmp)
save_csv(snakemake.output.history, history)
save_json(snakemake.output.metrics, metrics)
save_npz(
    snakemake.output.predictions,
    **{f"{split}_probabilities": probabilities[split].astype(np.float32) for split in data},
    **{f"{split}_labels": data[split][1] for split in data},
)
