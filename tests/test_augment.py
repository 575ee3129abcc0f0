import numpy as np

from qtlmnist.augment import augment, transform_image


def digits(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.float32)
    x[:, 8:20, 12:16] = rng.uniform(0.5, 1.0, (n, 12, 4))  # a bright vertical bar, off-centre content
    return x.reshape(n, 784), rng.integers(0, 10, n).astype(np.uint8)


def test_augmentation_is_deterministic_changes_images_and_keeps_labels():
    x, y = digits()
    a_x, a_y = augment(x, y, copies=2, rotation_deg=15, shift_frac=0.1, horizontal_flip=False, seed=7)
    b_x, _ = augment(x, y, copies=2, rotation_deg=15, shift_frac=0.1, horizontal_flip=False, seed=7)
    c_x, _ = augment(x, y, copies=2, rotation_deg=15, shift_frac=0.1, horizontal_flip=False, seed=8)
    assert a_x.shape == (36, 784) and a_x.dtype == np.float32
    assert a_x.tobytes() == b_x.tobytes()
    assert not np.array_equal(a_x, c_x)
    np.testing.assert_array_equal(a_x[:12], x)  # originals first
    np.testing.assert_array_equal(a_y, np.concatenate([y, y, y]))
    changed = np.abs(a_x[12:] - np.tile(x, (2, 1))).max(axis=1)
    assert (changed > 0.1).all()
    assert a_x.min() >= 0.0 and a_x.max() <= 1.0


def test_zero_magnitudes_are_the_identity_and_flip_mirrors():
    x, _ = digits(1)
    image = x.reshape(28, 28)
    np.testing.assert_allclose(transform_image(image, 0.0, (0.0, 0.0), False), image, atol=1e-6)
    np.testing.assert_allclose(transform_image(image, 0.0, (0.0, 0.0), True), image[:, ::-1], atol=1e-6)
    shifted = transform_image(image, 0.0, (3.0, 0.0), False)  # dx = +3 pixels: content moves right
    np.testing.assert_allclose(shifted[:, 15:19], image[:, 12:16], atol=1e-6)


def test_no_copies_returns_the_input():
    x, y = digits()
    a_x, a_y = augment(x, y, copies=0, rotation_deg=10, shift_frac=0.1, horizontal_flip=False, seed=0)
    assert a_x is x and a_y is y
