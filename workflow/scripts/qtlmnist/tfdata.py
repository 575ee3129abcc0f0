"""Input pipelines for Keras training: one tensor per array, batches gathered by shuffled indices.

Shuffling indices rather than elements keeps one copy of the data in memory (a full-size element shuffle
buffer would hold a second copy of the 108k x 784 augmented set) and gives a fresh, seeded order each epoch.
"""

from __future__ import annotations

import numpy as np


def batches(tf, features: np.ndarray, targets: np.ndarray | None, batch_size: int, seed: int | None):
    """(features, targets) batches; targets=None means the features are their own targets (autoencoder)."""
    x = tf.constant(features)
    y = x if targets is None else tf.constant(targets)
    return (
        row_order(tf, len(features), seed)
        .batch(batch_size)
        .map(lambda i: (tf.gather(x, i), tf.gather(y, i)))
        .prefetch(2)
    )


def row_order(tf, rows: int, seed: int | None):
    """The rows' indices in the order training visits them: file order (seed None), or shuffled with `seed`, a
    fresh order each time the dataset is iterated (each epoch). One place for the rule, so that a trainer that
    reads whole epochs' orders (qtlmnist.classifier.train_group) visits the rows as `batches` does."""
    order = tf.data.Dataset.range(rows)
    if seed is not None:
        order = order.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    return order
