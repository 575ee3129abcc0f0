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


# The classifier's hyperparameters for these tiny sets (`train`'s keywords besides the data and the seed)
SETTINGS = {"units": [32, 16, 16], "dropout": 0.1, "epochs": 8, "batch_size": 32, "learning_rate": 1e-2}
SETTINGS |= {"lr_factor": 0.5, "lr_patience": 2, "min_lr": 1e-4}


def keras_run(keras, seed, settings=SETTINGS):
    """One seed through Keras' own fit (`train`) on blobs' first 200 rows (the rest: validation), seeded as a
    system's run seeds it."""
    x, y = blobs()
    keras.utils.set_random_seed(seed)
    return classifier.train(keras, x[:200], y[:200], x[200:], y[200:], seed=seed, **settings)


def test_classifier_architecture_learns_and_reruns_bitwise(keras):
    model, history = keras_run(keras, seed=1)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Normalization"] + ["Dense", "BatchNormalization", "Dropout"] * 3 + ["Dense"]
    assert model.layers[-1].activation.__name__ == "softmax"
    assert {"accuracy", "val_accuracy", "loss", "val_loss", "learning_rate"} <= set(history.columns)
    x, y = blobs()
    probabilities = classifier.predict(model, x[200:])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(probabilities.argmax(axis=1) == y[200:]) > 0.8  # chance is 0.1
    again, _ = keras_run(keras, seed=1)
    for a, b in zip(model.get_weights(), again.get_weights()):
        assert a.tobytes() == b.tobytes()


# a high rate and patience 1, so the schedule acts within 6 epochs
GROUP_SETTINGS = SETTINGS | {"dropout": 0.0, "epochs": 6, "learning_rate": 3e-2, "lr_patience": 1, "min_lr": 5e-3}


def test_train_group_equals_keras_fit_per_seed_without_dropout(keras):
    """Without dropout (its masks are the one thing drawn differently), each seed of a stacked group follows
    Keras' fit of that seed alone: the same initial weights, batch orders, BatchNorm statistics, Adam updates and
    ReduceLROnPlateau steps (patience 1 and a high rate, so the schedule acts)."""
    x, y = blobs()
    seeds = [3, 1, 2]
    grouped = classifier.train_group(keras, [(x[:200], y[:200])] * 3, [(x[200:], y[200:])] * 3, GROUP_SETTINGS, seeds)
    reductions = 0
    for seed, (model, history) in zip(seeds, grouped):
        reference, expected = keras_run(keras, seed, GROUP_SETTINGS)
        assert list(history.columns) == list(expected.columns)
        for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(history[column], expected[column], rtol=2e-4, atol=1e-5, err_msg=column)
        np.testing.assert_array_equal(history["learning_rate"], expected["learning_rate"])
        reductions += int((np.diff(expected["learning_rate"]) < 0).sum())
        for a, b in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(
            classifier.predict(model, x[200:]), classifier.predict(reference, x[200:]), atol=1e-4
        )
    assert reductions >= 3  # the schedule was exercised, not only the constant rate


def test_train_group_seed_is_the_same_in_any_group_with_dropout(keras):
    """With dropout on, a seed's run in a group of three equals its run alone (its masks come from its seed),
    and two seeds of a group do not share masks (different runs from the same data and equal initial weights
    would otherwise coincide)."""
    x, y = blobs()
    settings = GROUP_SETTINGS | {"dropout": 0.3, "epochs": 3}
    group = classifier.train_group(keras, [(x[:200], y[:200])] * 3, [(x[200:], y[200:])] * 3, settings, [5, 6, 7])
    ((alone, history_alone),) = classifier.train_group(keras, [(x[:200], y[:200])], [(x[200:], y[200:])], settings, [6])
    # float32: a stacked matmul over 3 seeds or 1 may round differently in the last bits, nothing more
    np.testing.assert_allclose(group[1][1]["loss"], history_alone["loss"], rtol=1e-5)
    for a, b in zip(group[1][0].get_weights(), alone.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(group[0][1]["loss"], group[1][1]["loss"])


def test_train_group_refuses_seeds_with_different_set_sizes(keras):
    x, y = blobs()
    with pytest.raises(ValueError, match="training sets differ in size"):
        classifier.train_group(
            keras, [(x[:200], y[:200]), (x[:199], y[:199])], [(x[200:], y[200:])] * 2, GROUP_SETTINGS, [1, 2]
        )


def test_plateau_step_follows_keras_reduce_lr_on_plateau(keras):
    """The grouped loop's schedule against Keras' own callback on made-up validation losses: changes smaller
    than min_delta (not an improvement, either way), a factor that does not halve exactly, and epochs at the
    floor (no reduction, the wait keeps counting). Two seeds see the sequence and its reverse."""
    losses = [1.0, 0.99995, 0.99992, 0.9999, 0.8, 0.80001, 0.79995, 0.7, 0.7, 0.7, 0.7, 0.6, 0.6, 0.6, 0.6]
    factor, patience, min_lr = 0.3, 2, 1e-4
    expected = []
    for sequence in (losses, losses[::-1]):
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.0123), loss="mse")
        callback = keras.callbacks.ReduceLROnPlateau(factor=factor, patience=patience, min_lr=min_lr)
        callback.set_model(model)
        rates = []
        for epoch, loss in enumerate(sequence):
            callback.on_epoch_end(epoch, {"val_loss": loss})
            rates.append(np.float32(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
        expected.append(rates)
    best, wait, rates = np.full(2, np.inf), np.zeros(2, int), np.full(2, 0.0123, np.float32)
    got = []
    for pair in zip(losses, losses[::-1]):
        best, wait, rates = classifier.plateau_step(np.array(pair), best, wait, rates, factor, patience, min_lr)
        got.append(rates)
    np.testing.assert_array_equal(np.array(got).T, np.array(expected))
    assert np.array(expected)[0, -1] == np.float32(min_lr)  # the sequence reached the floor
