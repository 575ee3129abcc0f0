import numpy as np
import pytest

from qtlmnist.arrays import ArrayFileError, atomic_path, load_dataset, load_npz, save_dataset


def test_round_trip_keeps_values_dtype_and_labels(tmp_path):
    path = tmp_path / "d.npz"
    written = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    save_dataset(path, written, np.array([1, 2, 3, 9]))
    features, labels = load_dataset(path, width=3)
    assert features.dtype == np.float32 and features.tobytes() == written.tobytes()
    assert labels.dtype == np.uint8 and labels.tolist() == [1, 2, 3, 9]


def test_wrong_shape_names_the_file_and_shapes(tmp_path):
    path = tmp_path / "d.npz"
    save_dataset(path, np.ones((4, 3)), np.zeros(4))
    with pytest.raises(ArrayFileError, match=r"d\.npz: array 'features' has shape \(4, 3\), expected \(N, 32\)"):
        load_dataset(path, width=32)


def test_nan_names_the_file(tmp_path):
    path = tmp_path / "d.npz"
    features = np.ones((4, 3))
    features[2, 1] = np.nan
    save_dataset(path, features, np.zeros(4))
    with pytest.raises(
        ArrayFileError, match=r"d\.npz: array 'features' holds 1 NaN/inf value\(s\) \(first at flat index 7\)"
    ):
        load_dataset(path)


def test_mismatched_rows_and_missing_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.ones((4, 3)), labels=np.zeros(5))
    with pytest.raises(ArrayFileError, match="disagree on the number of rows"):
        load_dataset(path)
    with pytest.raises(ArrayFileError, match="missing array 'inputs'"):
        load_npz(path, {"inputs": None})


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.array([{"a": 1}], dtype=object), labels=np.zeros(1))
    with pytest.raises(ArrayFileError, match="cannot be read"):
        load_dataset(path)


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_circuit_inputs_outside_zero_one_are_refused(tmp_path):
    from qtlmnist.arrays import load_circuit_inputs, save_npz

    path = tmp_path / "inputs.npz"
    save_npz(path, inputs=np.full((3, 1, 5), 0.5), labels=np.zeros(3))
    assert load_circuit_inputs(path)[0].shape == (3, 1, 5)
    save_npz(path, inputs=np.full((3, 1, 5), 1.5), labels=np.zeros(3))
    with pytest.raises(ArrayFileError, match=r"inputs\.npz: circuit inputs must lie in \[0, 1\], found 1\.5\.\.1\.5"):
        load_circuit_inputs(path)
