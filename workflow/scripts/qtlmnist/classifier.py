"""The paper's classifier (section 3.3): (Dense ReLU -> BatchNorm -> Dropout) x 3 -> Dense softmax 10,
categorical cross-entropy, Adam and a learning-rate schedule. The same builder serves every feature set
(quantum counts, 64-d latents, controls), so the comparison is at equal architecture and budget.
"""

from __future__ import annotations

import numpy as np

from .evaluate import N_CLASSES
from .tfdata import batches, row_order


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
    return train(keras, *train_set, *val_set, seed=seed, n_classes=n_classes, **configured(settings))


def configured(settings: dict) -> dict:
    """`train`'s hyperparameter keywords from a `classifier` section (normalize only where it is given)."""
    chosen = {key: settings[key] for key in HYPERPARAMETERS}
    chosen |= {key: settings[key] for key in ("normalize",) if key in settings}
    chosen["units"] = list(chosen["units"])
    return chosen


# Keras' defaults, which `build`'s layers and `train`'s optimizer and schedule use and `train_group` restates
BATCHNORM_MOMENTUM, BATCHNORM_EPSILON = 0.99, 1e-3
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7
PLATEAU_MIN_DELTA = 1e-4
NORMALIZATION_EPSILON = 1e-7  # keras.backend.epsilon(): the floor of a standardised feature's std


def train_group(keras, train_sets: list, val_sets: list, settings: dict, seeds: list[int], n_classes: int = N_CLASSES):
    """`train_configured` for several seeds at once, as one stacked graph: every weight has a leading seed axis,
    so the seeds' steps run as one (a Keras fit of this small network is bound by per-step overhead, not by its
    arithmetic). Each seed keeps what its own `train` run has: its initial weights (its Keras model is built
    right after seeding Keras with it), a Normalization adapted on its own training rows, its batch order (the
    seeded `row_order`, as `batches` draws it), Adam on its own slice and its own ReduceLROnPlateau on its own
    validation loss. Dropout masks are drawn per seed from (seed, step, layer) with stateless random ops instead
    of Keras' generator: with dropout the runs differ from Keras' in their draws, not in law; with dropout 0
    they equal Keras' to float32 round-off, and a seed's run is the same in any group (tests/test_models.py).

    train_sets, val_sets: one (x, y) per seed, the same number of rows for every seed (one batch grid).
    Returns [(Keras model holding the seed's trained weights, history DataFrame with `train`'s columns)].
    """
    import pandas as pd
    import tensorflow as tf

    chosen = configured(settings)
    normalize = chosen.get("normalize", True)
    if not seeds or len(seeds) != len(train_sets) or len(seeds) != len(val_sets):
        raise ValueError(f"train_group: {len(seeds)} seeds for {len(train_sets)} training and {len(val_sets)} val sets")
    for name, sets in (("training", train_sets), ("validation", val_sets)):
        if len({len(y) for _, y in sets}) != 1:
            raise ValueError(
                f"train_group: the seeds' {name} sets differ in size ({[len(y) for _, y in sets]}); a group steps "
                "every seed through one batch grid, so train such seeds one by one (`train_configured`)"
            )
    rows, batch_size, rate = len(train_sets[0][1]), int(chosen["batch_size"]), float(chosen["dropout"])
    models, orders = [], []
    for seed, (x, _) in zip(seeds, train_sets):
        keras.utils.set_random_seed(seed)  # as a lone run: seeded, then built, then its batches drawn
        models.append(build(keras, x.shape[1], x, chosen["units"], chosen["dropout"], n_classes, normalize))
        orders.append(row_order(tf, rows, seed).batch(rows))  # an epoch's whole order per iteration, as Keras
    hidden = len(chosen["units"])

    def stacked(name: str, index: int):
        return tf.Variable(np.stack([m.get_layer(name).get_weights()[index] for m in models]).astype(np.float32))

    kernels = [stacked(f"dense_{i}", 0) for i in range(1, hidden + 1)] + [stacked("softmax", 0)]
    biases = [stacked(f"dense_{i}", 1) for i in range(1, hidden + 1)] + [stacked("softmax", 1)]
    gammas, betas, moving_means, moving_variances = (
        [stacked(f"batchnorm_{i}", k) for i in range(1, hidden + 1)] for k in range(4)
    )
    trainable = kernels + biases + gammas + betas
    moments = [(tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))) for w in trainable]
    iterations = tf.Variable(0, dtype=tf.int64)
    learning_rates = tf.Variable(np.full(len(seeds), chosen["learning_rate"], np.float32))
    if normalize:
        layers = [m.get_layer("standardise") for m in models]
        means = tf.constant(np.stack([keras.ops.convert_to_numpy(layer.mean).reshape(-1) for layer in layers]))
        stds = np.stack([keras.ops.convert_to_numpy(layer.variance).reshape(-1) for layer in layers])
        stds = tf.constant(np.maximum(np.sqrt(stds), NORMALIZATION_EPSILON).astype(np.float32))
    seed_tensor = tf.constant(seeds, tf.int64)
    x_train = tf.constant(np.stack([x for x, _ in train_sets]).astype(np.float32))
    y_train = tf.constant(np.stack([y for _, y in train_sets]).astype(np.int32))
    x_val = tf.constant(np.stack([x for x, _ in val_sets]).astype(np.float32))
    y_val = tf.constant(np.stack([y for _, y in val_sets]).astype(np.int32))

    def logits(x, training: bool):
        """(seeds, batch, features) -> (seeds, batch, n_classes), the `build` network per seed slice."""
        h = (x - means[:, None]) / stds[:, None] if normalize else x
        for i in range(hidden):
            h = tf.nn.relu(tf.einsum("nbi,nio->nbo", h, kernels[i]) + biases[i][:, None])
            if training:
                mean, variance = tf.nn.moments(h, axes=[1])
                m = BATCHNORM_MOMENTUM
                moving_means[i].assign(moving_means[i] * m + mean * (1.0 - m))
                moving_variances[i].assign(moving_variances[i] * m + variance * (1.0 - m))
            else:
                mean, variance = moving_means[i], moving_variances[i]
            scale = tf.math.rsqrt(variance + BATCHNORM_EPSILON) * gammas[i]
            h = h * scale[:, None] + (betas[i] - mean * scale)[:, None]
            if training and rate > 0:
                # per seed, from (its seed, the step, the layer): the same draws in any group
                keep = tf.stack(
                    [
                        tf.random.stateless_uniform(
                            tf.shape(h)[1:], tf.stack([seed_tensor[n], iterations * (hidden + 1) + i])
                        )
                        for n in range(len(seeds))
                    ]
                )
                h = tf.where(keep >= rate, h / (1.0 - rate), tf.zeros_like(h))
        return tf.einsum("nbi,nio->nbo", h, kernels[-1]) + biases[-1][:, None]

    def losses(z, y):
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)  # (seeds, batch)

    def step(index):
        x, y = tf.gather(x_train, index, batch_dims=1), tf.gather(y_train, index, batch_dims=1)
        with tf.GradientTape() as tape:
            z = logits(x, training=True)
            per_sample = losses(z, y)
            total = tf.reduce_sum(tf.reduce_mean(per_sample, axis=1))  # seeds' slices share no weight
        gradients = tape.gradient(total, trainable)
        iterations.assign_add(1)
        t = tf.cast(iterations, tf.float32)
        alpha = learning_rates * tf.sqrt(1.0 - ADAM_BETA_2**t) / (1.0 - ADAM_BETA_1**t)
        for w, g, (m, v) in zip(trainable, gradients, moments):
            m.assign_add((g - m) * (1.0 - ADAM_BETA_1))
            v.assign_add((tf.square(g) - v) * (1.0 - ADAM_BETA_2))
            shape = [-1] + [1] * (len(w.shape) - 1)
            w.assign_sub(tf.reshape(alpha, shape) * m / (tf.sqrt(v) + ADAM_EPSILON))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(z, -1, output_type=tf.int32), y), tf.float32), axis=1)
        return tf.reduce_sum(per_sample, axis=1), correct

    full, rest = divmod(rows, batch_size)

    @tf.function
    def epoch(order):
        """One epoch over (seeds, rows) orders: the summed loss and correct count per seed (as Keras logs them,
        weighted by batch size, with dropout on)."""
        loss_sum = tf.zeros(len(seeds))
        correct = tf.zeros(len(seeds))
        for s in tf.range(full):
            batch_loss, batch_correct = step(order[:, s * batch_size : (s + 1) * batch_size])
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
        if rest:
            batch_loss, batch_correct = step(order[:, full * batch_size :])
            loss_sum, correct = loss_sum + batch_loss, correct + batch_correct
        return loss_sum, correct

    @tf.function
    def validate():
        z = logits(x_val, training=False)
        hits = tf.equal(tf.argmax(z, -1, output_type=tf.int32), y_val)
        return tf.reduce_mean(losses(z, y_val), axis=1), tf.reduce_mean(tf.cast(hits, tf.float32), axis=1)

    factor, patience, min_lr = float(chosen["lr_factor"]), int(chosen["lr_patience"]), float(chosen["min_lr"])
    best, wait = np.full(len(seeds), np.inf), np.zeros(len(seeds), int)
    logs = []
    for _ in range(int(chosen["epochs"])):
        # Keras' fit (3.15) iterates its dataset twice per epoch and trains on the first of the two orders
        # (measured: epochs 1, 2, 3 see the shuffle's orders 1, 3, 5), so a seed here takes the same ones
        order = tf.constant(np.stack([_epoch_order(dataset) for dataset in orders]), tf.int32)
        loss_sum, correct = (a.numpy() for a in epoch(order))
        val_loss, val_accuracy = (a.numpy() for a in validate())
        rates = learning_rates.numpy()
        logs.append((correct / rows, loss_sum / rows, val_accuracy, val_loss, rates.astype(float)))
        best, wait, rates = plateau_step(val_loss, best, wait, rates, factor, patience, min_lr)
        learning_rates.assign(rates)

    results = []
    for n, model in enumerate(models):
        for i in range(hidden):
            model.get_layer(f"dense_{i + 1}").set_weights([kernels[i][n].numpy(), biases[i][n].numpy()])
            stats = (gammas[i], betas[i], moving_means[i], moving_variances[i])
            model.get_layer(f"batchnorm_{i + 1}").set_weights([w[n].numpy() for w in stats])
        model.get_layer("softmax").set_weights([kernels[-1][n].numpy(), biases[-1][n].numpy()])
        columns = ("accuracy", "loss", "val_accuracy", "val_loss", "learning_rate")  # Keras' history's order
        frame = pd.DataFrame({c: [float(log[k][n]) for log in logs] for k, c in enumerate(columns)})
        frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
        results.append((model, frame))
    return results


def plateau_step(val_loss, best, wait, rates, factor: float, patience: int, min_lr: float):
    """Keras' ReduceLROnPlateau at an epoch's end (mode min, min_delta PLATEAU_MIN_DELTA, cooldown 0), for every
    seed at once: arrays of the seeds' validation losses, best losses, epochs waited and float32 rates ->
    (best, wait, rates) after the epoch (tests/test_models.py drives Keras' own callback beside it)."""
    improved = val_loss + PLATEAU_MIN_DELTA < best  # better than the best by more than min_delta
    best, wait = np.where(improved, val_loss, best), np.where(improved, 0, wait + 1)
    reduce = (wait >= patience) & (rates > np.float32(min_lr))
    # in float64, rounded once into the float32 rate, as Keras assigns its reduced rate
    reduced = np.maximum(rates.astype(np.float64) * factor, min_lr)
    return best, np.where(reduce, 0, wait), np.where(reduce, reduced, rates).astype(np.float32)


def _epoch_order(dataset) -> np.ndarray:
    """The next epoch's row order as Keras' fit draws it from `dataset` (two iterations, the first kept)."""
    order = next(iter(dataset)).numpy()
    next(iter(dataset))
    return order


def predict(model, x: np.ndarray) -> np.ndarray:
    return model.predict(x.astype(np.float32), batch_size=2048, verbose=0)
