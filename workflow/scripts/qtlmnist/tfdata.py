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
    order = tf.data.Dataset.range(len(features))
    if seed is not None:
        order = order.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch_size).map(lambda i: (tf.gather(x, i), tf.gather(y, i))).prefetch(2)
