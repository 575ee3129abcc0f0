"""Autoencoder and classifier on tiny arrays: architecture, learning, and bitwise-equal reruns."""

import numpy as np
import pytest

from qtlmnist import autoencoder, classifier
from qtlmnist.runtime import seed_tensorflow


@pytest.fixture(scope="module")
def keras():
    return seed_tensorflow(0, 1)


def blobs(n=300, d=8, seed=0):
    """Ten well-separated Gaussian classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    centres = rng.normal(scale=4.0, size=(10, d))
    return (centres[labels] + rng.normal(size=(n, d))).astype(np.float32), labels.astype(np.uint8)


def test_autoencoder_shapes_activations_and_learning(keras):
    model, encoder = autoencoder.build(keras, hidden=32, latent_dim=8, decoder_hidden_activation="sigmoid")
    assert [layer.output.shape[-1] for layer in model.layers[1:]] == [32, 8, 32, 784]
    assert [layer.activation.__name__ for layer in model.layers[1:]] == ["relu", "relu", "sigmoid", "sigmoid"]
    x = np.random.default_rng(0).random((64, 784)).astype(np.float32) * 0.2
    keras.utils.set_random_seed(0)
    model, encoder, history = autoencoder.train(
        keras, x, x, 32, 8, "relu", epochs=5, batch_size=16, learning_rate=1e-2, seed=0
    )
    assert list(history.columns) == ["epoch", "loss", "val_loss"] and len(history) == 5
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    latents = encoder.predict(x, verbose=0)
    assert latents.shape == (64, 8) and latents.min() >= 0.0  # ReLU latents


def train_classifier(keras, seed):
    x, y = blobs()
    keras.utils.set_random_seed(seed)
    return classifier.train(
        keras,
        x[:200],
        y[:200],
        x[200:],
        y[200:],
        units=[32, 16, 16],
        dropout=0.1,
        epochs=8,
        batch_size=32,
        learning_rate=1e-2,
        lr_factor=0.5,
        lr_patience=2,
        min_lr=1e-4,
        seed=seed,
    )


def test_classifier_architecture_learns_and_reruns_bitwise(keras):
    model, history = train_classifier(keras, seed=1)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Normalization"] + ["Dense", "BatchNormalization", "Dropout"] * 3 + ["Dense"]
    assert model.layers[-1].activation.__name__ == "softmax"
    assert {"accuracy", "val_accuracy", "loss", "val_loss", "learning_rate"} <= set(history.columns)
    x, y = blobs()
    probabilities = classifier.predict(model, x[200:])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == y[200:]) > 0.8  # chance is 0.1
    again, _ = train_classifier(keras, seed=1)
    for a, b in zip(model.get_weights(), again.get_weights()):
        assert a.tobytes() == b.tobytes()
