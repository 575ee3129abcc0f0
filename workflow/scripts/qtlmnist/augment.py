"""Training-set augmentation (the paper's section 3.1): random rotation, width/height shift, optional flip.

scipy.ndimage does the interpolation; all random draws come from one numpy Generator seeded by config, so
the output depends only on the inputs and the seed (not on threads or batch sizes).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIDE = 28


def transform_image(image: np.ndarray, angle_deg: float, shift_xy: tuple[float, float], flip: bool) -> np.ndarray:
    """Rotate about the centre by angle_deg, shift by (dx, dy) pixels, then mirror left-right if flip."""
    theta = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = np.array([(SIDE - 1) / 2.0, (SIDE - 1) / 2.0])
    shift = np.array([shift_xy[1], shift_xy[0]])  # (row, col) = (dy, dx)
    # affine_transform maps output coordinates to input ones: in = R (out - c - shift) + c
    offset = centre - rotation @ (centre + shift)
    out = ndimage.affine_transform(image, rotation, offset=offset, order=1, mode="constant", cval=0.0)
    if flip:
        out = out[:, ::-1]
    return np.clip(out, 0.0, 1.0)


def augment(
    x: np.ndarray,
    labels: np.ndarray,
    copies: int,
    rotation_deg: float,
    shift_frac: float,
    horizontal_flip: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Originals followed by `copies` transformed copies of each image; labels are carried over unchanged.

    x is (N, 784) in [0, 1]. Angles are uniform in +-rotation_deg, shifts uniform in +-shift_frac*28 pixels,
    and with horizontal_flip each copy is mirrored with probability 1/2.
    """
    if copies == 0:
        return x, labels
    rng = np.random.default_rng(seed)
    n = len(x)
    total = n * copies
    angles = rng.uniform(-rotation_deg, rotation_deg, total)
    shifts = rng.uniform(-shift_frac * SIDE, shift_frac * SIDE, (total, 2))
    flips = rng.random(total) < 0.5 if horizontal_flip else np.zeros(total, bool)
    images = x.reshape(n, SIDE, SIDE)
    out = np.empty((total, SIDE * SIDE), dtype=np.float32)
    for k in range(total):
        out[k] = transform_image(images[k % n], angles[k], shifts[k], flips[k]).ravel()
    return np.concatenate([x, out]), np.concatenate([labels, np.tile(labels, copies)])
