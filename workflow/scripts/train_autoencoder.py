"""Rule train_autoencoder: fit on the augmented training split, report MSE on train/val/test."""

import logging

import numpy as np

from qtlmnist import autoencoder
from qtlmnist.arrays import atomic_path, load_dataset, save_csv, save_json, save_npz
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
keras = seed_tensorflow(p.seed, snakemake.threads)
data = {name: load_dataset(snakemake.input[name], width=784)[0] for name in ("train", "train_original", "val", "test")}
model, _, history = autoencoder.train(
    keras,
    data["train"],
    data["val"],
    hidden=p.hidden,
    latent_dim=p.latent_dim,
    decoder_hidden_activation=p.decoder_hidden_activation,
    epochs=p.epochs,
    batch_size=p.batch_size,
    learning_rate=p.learning_rate,
    seed=p.seed,
)
metrics = {
    "train_mse": autoencoder.mse(model, data["train_original"]),
    "train_augmented_mse": autoencoder.mse(model, data["train"]),
    "val_mse": autoencoder.mse(model, data["val"]),
    "test_mse": autoencoder.mse(model, data["test"]),
    "final_epoch_loss": float(history["loss"].iloc[-1]),
    "final_epoch_val_loss": float(history["val_loss"].iloc[-1]),
    "epochs": int(p.epochs),
}
logging.info("autoencoder metrics: %s", metrics)
with atomic_path(snakemake.output.weights, ".weights.h5") as tmp:
    model.save_weights(tmp)
save_csv(snakemake.output.history, history)
save_json(snakemake.output.metrics, metrics)
originals = data["test"][: p.n_examples]
save_npz(
    snakemake.output.examples,
    originals=originals,
    reconstructions=model.predict(originals, verbose=0).astype(np.float32),
)
