"""Rule experiment_run: the paper's classifier on one feature variant, with train/val re-split by the seed."""

import logging

from qtlmnist import classifier, evaluate
from qtlmnist.arrays import load_dataset, save_json
from qtlmnist.experiments import resplit
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
seed = int(snakemake.wildcards.seed)
keras = seed_tensorflow(seed, snakemake.threads)
train, val, test = (load_dataset(path) for path in snakemake.input)
train, val = resplit(train, val, p.val_fraction, seed)
model, _ = classifier.train_configured(keras, train, val, dict(p.items()), seed)
data = {"train": train, "val": val, "test": test}
probabilities = {split: classifier.predict(model, x) for split, (x, _) in data.items()}
per_split = {split: evaluate.metrics(probabilities[split], y) for split, (_, y) in data.items()}
metrics = {
    "variant": snakemake.wildcards.variant,
    "seed": seed,
    "n_features": int(train[0].shape[1]),
    **{k: v for k, v in evaluate.summary(per_split).items() if not k.endswith(("confusion", "per_class_accuracy"))},
}
logging.info("%s", metrics)
# per test image, so that experiment_tables pairs every single run with the hybrid (McNemar) with no rerun
metrics["test_predictions"] = probabilities["test"].argmax(axis=1).tolist()
metrics["test_labels"] = test[1].astype(int).tolist()
save_json(snakemake.output[0], metrics)
