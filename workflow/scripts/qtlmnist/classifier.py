"""The paper's classifier (section 3.3): (Dense ReLU -> BatchNorm -> Dropout) x 3 -> Dense softmax 10,
categorical cross-entropy, Adam and a learning-rate schedule. The same builder serves every feature set
(quantum counts, 64-d latents, controls), so the comparison is at equal architecture and budget.
"""

from __future__ import annotations

import numpy as np

from .evaluate import N_CLASSES
from .tfdata import batches


def build(
    keras,
    n_features: int,
    x_train: np.ndarray,
    units: list[int],
    dropout: float,
    n_classes: int = N_CLASSES,
    normalize: bool = True,
):
    """A Normalization layer (mean/std adapted on train) feeds the dense stack, so latents (unbounded) and
    probabilities (in [0, 1]) reach the first Dense on the same scale (normalize=False leaves it out: a reading
    of the paper, which names none, qtlmnist.readings). `n_classes` outputs (a task on some of the classes,
    e.g. the trainable systems' 4-label task, has fewer)."""
    inputs = keras.Input(shape=(n_features,), name="features")
    h = inputs
    if normalize:
        norm = keras.layers.Normalization(name="standardise")
        norm.adapt(x_train.astype(np.float32))
        h = norm(inputs)
    for i, width in enumerate(units, start=1):
        h = keras.layers.Dense(width, activation="relu", name=f"dense_{i}")(h)
        h = keras.layers.BatchNormalization(name=f"batchnorm_{i}")(h)
        h = keras.layers.Dropout(dropout, name=f"dropout_{i}")(h)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="softmax")(h)
    return keras.Model(inputs, outputs, name="classifier")


def train(
    keras,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    units: list[int],
    dropout: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    lr_factor: float,
    lr_patience: int,
    min_lr: float,
    seed: int,
    n_classes: int = N_CLASSES,
    normalize: bool = True,
):
    """Train; returns (model, history DataFrame: epoch, loss, accuracy, val_loss, val_accuracy, learning_rate).

    The schedule is ReduceLROnPlateau on validation loss: the paper says the rate is 'dynamically adjusted
    using a learning rate scheduler' without naming one.
    """
    import tensorflow as tf

    model = build(keras, x_train.shape[1], x_train, units, dropout, n_classes, normalize)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",  # = categorical cross-entropy on integer labels
        metrics=["accuracy"],
        steps_per_execution=32,  # fewer Python round trips per epoch; the same updates in the same order
    )
    schedule = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=lr_factor, patience=lr_patience, min_lr=min_lr, verbose=0
    )
    history = model.fit(
        batches(tf, x_train.astype(np.float32), y_train.astype(np.int32), batch_size, seed),
        validation_data=batches(tf, x_val.astype(np.float32), y_val.astype(np.int32), 2048, None),
        epochs=epochs,
        callbacks=[schedule],
        verbose=2,
    )
    import pandas as pd  # here, not at the top: the Snakefile imports HYPERPARAMETERS at parse time

    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    return model, frame


HYPERPARAMETERS = ("units", "dropout", "epochs", "batch_size", "learning_rate", "lr_factor", "lr_patience", "min_lr")


def train_configured(keras, train_set, val_set, settings: dict, seed: int, n_classes: int = N_CLASSES):
    """`train` with the hyperparameters taken from the config's `classifier` section (one place for the
    workflow's classifiers, the experiments' runs and the trainable systems' sarkar settings), and `normalize`
    where the settings carry it (a reading's runs: qtlmnist.variants `Kind.classifier`)."""
    chosen = {key: settings[key] for key in HYPERPARAMETERS}
    chosen |= {key: settings[key] for key in ("normalize",) if key in settings}
    chosen["units"] = list(chosen["units"])
    return train(keras, *train_set, *val_set, seed=seed, n_classes=n_classes, **chosen)


def predict(model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=2048, verbose=0)
