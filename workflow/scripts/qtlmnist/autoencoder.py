"""The dense autoencoder 784 -> hidden -> latent (ReLU) -> hidden -> 784 (sigmoid) of the paper's section 3.2.

The caller seeds TensorFlow first (runtime.seed_tensorflow); the architecture lives here, weights on disk
as .weights.h5 (byte-stable between saves, unlike .keras archives).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .tfdata import batches


def build(keras, hidden: int, latent_dim: int, decoder_hidden_activation: str):
    """(autoencoder, encoder) sharing layers; the paper: encoder layers ReLU, decoder layers sigmoid."""
    inputs = keras.Input(shape=(784,), name="image")
    h = keras.layers.Dense(hidden, activation="relu", name="enc_hidden")(inputs)
    latent = keras.layers.Dense(latent_dim, activation="relu", name="latent")(h)
    d = keras.layers.Dense(hidden, activation=decoder_hidden_activation, name="dec_hidden")(latent)
    outputs = keras.layers.Dense(784, activation="sigmoid", name="reconstruction")(d)
    autoencoder = keras.Model(inputs, outputs, name="autoencoder")
    encoder = keras.Model(inputs, latent, name="encoder")
    return autoencoder, encoder


def train(
    keras,
    x_train: np.ndarray,
    x_val: np.ndarray,
    hidden: int,
    latent_dim: int,
    decoder_hidden_activation: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
):
    """Train with MSE and Adam; returns (autoencoder, encoder, history DataFrame with epoch/loss/val_loss)."""
    import tensorflow as tf

    autoencoder, encoder = build(keras, hidden, latent_dim, decoder_hidden_activation)
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    history = autoencoder.fit(
        batches(tf, x_train, None, batch_size, seed),
        validation_data=batches(tf, x_val, None, 1024, None),
        epochs=epochs,
        verbose=2,
    )
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return autoencoder, encoder, frame


def mse(autoencoder, x: np.ndarray, chunk: int = 8192) -> float:
    """Mean squared reconstruction error over all pixels, summed in float64 chunk by chunk (bounded memory)."""
    total = 0.0
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        reconstruction = autoencoder.predict(part, batch_size=1024, verbose=0)
        total += float(np.sum((reconstruction.astype(np.float64) - part.astype(np.float64)) ** 2))
    return total / x.size
