"""The dense autoencoder 784 -> hidden -> latent (ReLU) -> hidden -> 784 (sigmoid) of the paper's section 3.2.

The caller seeds TensorFlow first (runtime.seed_tensorflow); the architecture lives here, weights on disk
as .weights.h5 (byte-stable between saves, unlike .keras archives).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def dataset(tf, x: np.ndarray, batch_size: int, seed: int | None):
    """(x, x) pairs, shuffled each epoch when seed is given; tf.data keeps the CPU busy between steps."""
    ds = tf.data.Dataset.from_tensor_slices((x, x))
    if seed is not None:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(2)


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
        dataset(tf, x_train, batch_size, seed),
        validation_data=dataset(tf, x_val, 1024, None),
        epochs=epochs,
        verbose=2,
    )
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return autoencoder, encoder, frame


def mse(autoencoder, x: np.ndarray) -> float:
    """Mean squared reconstruction error over all pixels, in float64 for a stable figure."""
    reconstruction = autoencoder.predict(x, batch_size=1024, verbose=0)
    return float(np.mean((reconstruction.astype(np.float64) - x.astype(np.float64)) ** 2))
