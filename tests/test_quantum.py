"""The circuit as a feature map: exact probabilities vs Statevector, Aer shots vs exact, bit order,
seeding by global row, and the 64 -> 5 reduction."""

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

from qtlmnist import quantum

INPUTS = np.array(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0],  # x = 0 and x = 1 both give P(0) = 1/2 (the fold): uniform over 32 outcomes
        [0.3, 0.0, 0.0, 0.0, 0.0],  # only qubit 0 is off the 1/2-1/2 point
        [0.2, 0.4, 0.6, 0.8, 1.0],
        [0.9, 0.1, 0.7071, 0.3, 0.55],
        [0.05, 0.95, 0.5, 0.25, 0.75],
    ]
)


def statevector_probabilities(x):
    circuit, theta = quantum.build_circuit(len(x))
    bound = circuit.remove_final_measurements(inplace=False).assign_parameters(dict(zip(theta, quantum.angles(x))))
    return Statevector(bound).probabilities()


def test_exact_probabilities_match_statevector_including_bit_order():
    for x in INPUTS:
        np.testing.assert_allclose(quantum.exact_probabilities(x[None])[0], statevector_probabilities(x), atol=1e-12)


def test_closed_form_single_qubit_and_the_fold():
    # P(qubit 0 = 0) = 1/2 + x sqrt(1 - x^2); x and sqrt(1 - x^2) give the same distribution. Checked with
    # Statevector, independently of the closed form; the uniform row is the fold's extreme (x = 0 and x = 1).
    x = np.array([0.3, 0.5, 0.2, 0.9, 0.6])
    mirrored = np.sqrt(1 - x**2)
    np.testing.assert_allclose(statevector_probabilities(x), statevector_probabilities(mirrored), atol=1e-12)
    assert np.abs(statevector_probabilities(x) - statevector_probabilities(x + 0.05)).max() > 1e-3  # not constant
    np.testing.assert_allclose(statevector_probabilities(INPUTS[0]), np.full(32, 1 / 32), atol=1e-12)
    p = quantum.exact_probabilities(np.array([[0.3, 0, 0, 0, 0]]))[0]
    # With qubits 1-4 at 1/2 each, outcome 0 has probability P(q0=0) / 16 (the CNOTs only relabel).
    assert p[0] == pytest.approx((0.5 + 0.3 * np.sqrt(0.91)) / 16)


def test_aer_counts_converge_to_exact_probabilities():
    shots = 200_000
    features = quantum.aer_features(INPUTS, shots=shots, seed=11)
    exact = quantum.exact_probabilities(INPUTS)
    assert features.shape == (5, 32)
    np.testing.assert_allclose(features.sum(axis=1), 1.0)
    sigma = np.sqrt(exact * (1 - exact) / shots)
    assert np.all(np.abs(features - exact) <= 5 * sigma + 1e-9)


def test_counts_key_order_is_little_endian():
    # key '00001' means qubit 0 measured 1 -> column 1; '10000' -> column 16
    features = quantum.counts_to_features([{"00001": 3, "10000": 1}, {"0x1": 1, "0x10": 3}], 5)
    np.testing.assert_allclose(features[0, [1, 16]], [0.75, 0.25])
    np.testing.assert_allclose(features[1, [1, 16]], [0.25, 0.75])
    # x0 = 1/sqrt(2) makes qubit 0 read 0 surely (the others are uniform): columns with bit 0 set are
    # then reached only through the CNOT relabelling, which the chain defines.
    x = np.array([[1 / np.sqrt(2), 0.0, 0.0, 0.0, 0.0]])
    exact = quantum.exact_probabilities(x)[0]
    aer = quantum.aer_features(x, shots=4096, seed=1)[0]
    assert set(np.flatnonzero(aer)) <= set(np.flatnonzero(exact > 1e-12))


def test_counts_depend_only_on_seed_and_global_row():
    rng = np.random.default_rng(5)
    x = rng.random((90, 5))
    whole = quantum.aer_features(x, shots=64, seed=3, chunk_size=90)
    small_chunks = quantum.aer_features(x, shots=64, seed=3, chunk_size=7)
    pieces = [
        quantum.aer_features(x[start:stop], shots=64, seed=3, first_row=start, chunk_size=11)
        for start, stop in (quantum.shard_bounds(90, 4, k) for k in range(4))
    ]
    np.testing.assert_array_equal(whole, small_chunks)
    np.testing.assert_array_equal(whole, np.concatenate(pieces))
    assert not np.array_equal(whole, quantum.aer_features(x, shots=64, seed=4))


def test_shard_bounds_cover_every_row_once():
    bounds = [quantum.shard_bounds(10, 3, k) for k in range(3)]
    assert bounds == [(0, 3), (3, 6), (6, 10)]
    with pytest.raises(ValueError):
        quantum.shard_bounds(10, 3, 3)


def test_pca_reduction_is_fit_on_train_scaled_and_clipped():
    rng = np.random.default_rng(0)
    train = np.maximum(rng.normal(size=(500, 64)) @ rng.normal(size=(64, 64)), 0)  # ReLU-like latents
    reduction = quantum.fit_reduction(train, "pca", 5)
    components = reduction["components"]
    np.testing.assert_allclose(components @ components.T, np.eye(5), atol=1e-10)
    inputs = quantum.apply_reduction(train, reduction, 5)
    assert inputs.shape == (500, 1, 5)
    np.testing.assert_allclose(inputs.min(axis=(0, 1)), 0.0)
    np.testing.assert_allclose(inputs.max(axis=(0, 1)), 1.0)
    far = quantum.apply_reduction(train * 10, reduction, 5)  # outside train's range: clipped
    assert far.min() >= 0.0 and far.max() <= 1.0
    # the first component carries the most variance
    projected = (train - reduction["mean"]) @ components.T
    assert np.all(np.diff(projected.var(axis=0)) <= 0)


def test_pca_signs_are_fixed_whatever_the_svd_returns(monkeypatch):
    # LAPACK may return any component with either sign; the fitted components must not depend on that:
    # each one's largest-magnitude entry is made positive.
    rng = np.random.default_rng(4)
    train = np.maximum(rng.normal(size=(300, 64)) @ rng.normal(size=(64, 64)), 0)
    reference = quantum.fit_reduction(train, "pca", 5)["components"]
    svd = np.linalg.svd

    def flipped_svd(a, full_matrices=True):
        u, s, vt = svd(a, full_matrices=full_matrices)
        signs = np.where(np.arange(len(vt)) % 2 == 0, -1.0, 1.0)  # flip every other component
        return u * signs, s, vt * signs[:, None]

    monkeypatch.setattr(np.linalg, "svd", flipped_svd)
    flipped = quantum.fit_reduction(train, "pca", 5)["components"]
    np.testing.assert_allclose(flipped, reference, atol=1e-12)
    largest = reference[np.arange(5), np.abs(reference).argmax(axis=1)]
    assert np.all(largest > 0)


def test_first_and_chunks_reductions():
    train = np.abs(np.random.default_rng(1).normal(size=(50, 64)))
    train[:, 2] = 0.0  # a dead ReLU unit: constant, maps to 0 rather than dividing by zero
    first = quantum.apply_reduction(train, quantum.fit_reduction(train, "first", 5), 5)
    assert first.shape == (50, 1, 5) and np.all(first[:, 0, 2] == 0.0)
    chunks = quantum.apply_reduction(train, quantum.fit_reduction(train, "chunks", 5), 5)
    assert chunks.shape == (50, 13, 5)
    assert np.all(chunks[:, 12, 4] == 0.0)  # 64 dims padded to 65
    features = quantum.circuit_features(chunks[:4], shots=32, seed=0)
    assert features.shape == (4, 13 * 32)
    np.testing.assert_allclose(features.reshape(4, 13, 32).sum(axis=2), 1.0)
