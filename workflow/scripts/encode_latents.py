"""Rule encode_latents: the latents of train/val/test (the un-augmented images)."""

from qtlmnist import autoencoder
from qtlmnist.arrays import load_dataset, save_dataset
from qtlmnist.data import SPLITS
from qtlmnist.runtime import seed_tensorflow, setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
# Inference draws no random numbers; the seed only satisfies the set-up (threads, deterministic ops).
keras = seed_tensorflow(0, snakemake.threads)
model, encoder = autoencoder.build(keras, p.hidden, p.latent_dim, p.decoder_hidden_activation)
model.load_weights(snakemake.input.weights)
for split in SPLITS:
    images, labels = load_dataset(snakemake.input[split], width=784)
    save_dataset(snakemake.output[split], encoder.predict(images, batch_size=2048, verbose=0), labels)
