"""System 000: "Quantum-MNIST", a hybrid quantum-classical network in Qiskit + PyTorch (seed document
000_c19375c5ca6bfa55.txt). The article names no repository; its likely public candidate (shared/seeds/README.md)
is what this module rebuilds: an MLP encoder 784 -> 4 feeding a SamplerQNN over ZZFeatureMap(4) +
RealAmplitudes(4), read out by parity, trained end to end on MNIST 0 vs 1; it reports 82.5% test accuracy.

  encoder   z = W x + b, x the 784 pixels / 255, z in R^4 (a Dense layer, no activation)
  circuit   |psi(z, w)> = RA(w) U_ZZ(z) |0>^4: U_ZZ = zz_feature_map(4) (reps 2, full entanglement: H, then
            P(2 z_i) and CX-P(2 (pi - z_i)(pi - z_j))-CX per pair), RA = real_amplitudes(4) (reps 3,
            reverse_linear: Ry layers between CX chains), 16 weights; every qubit measured.
  readout   P(class c) = sum over outcomes i with popcount(i) mod 2 = c of |<i|psi>|^2 (SamplerQNN's
            interpret=parity), cross-entropy against the digit, Adam.
  control   the same encoder, then a classical head of the same 16 parameters: 4 -> 2 (tanh) -> 2 (softmax).
  entanglement removed (config `entanglement`, qtlmnist.systems.separable): "separable" drops the ansatz's 9
            CX (Ry layers only), the ZZ map kept; "product" also replaces the ZZ map by its product part, the
            Z feature map of the same inputs (H, P(2 z_i), twice; `product_encoding`).

Deviation, by design: the SamplerQNN samples 1024 shots in every forward pass and parameter-shift gradient of
training; here training is exact (the engine's statevector and autodiff), and the trained model is evaluated
both exactly and with `systems.shots` shots on Aer, as the original's inference ran.
"""

from __future__ import annotations

import numpy as np

from .common import MNIST_RAW, Circuit, Claim, Pair, System, Task, mnist_raw

CLASS_NAMES = ("0", "1")
DIGITS = (0, 1)
N_QUBITS = 4
FEATURE_MAP_REPS = 2  # zz_feature_map's (Qiskit's default, as the original's ZZFeatureMap(4))
LOSS = "sparse_categorical_crossentropy"  # on the parity probabilities (not logits)

CLAIMS = (
    Claim("82.5% test accuracy on MNIST 0 vs 1", "article; candidate repository; seed 000", 82.5, "hybrid", "test"),
    Claim("Classical control: same encoder, 16-parameter dense head", "this replication", None, "control", "test"),
)
# Its keys need no cross-key check: the schema bounds train_images by the 12,665 0/1 training images.
SYSTEM = System(
    seed_document="000",
    title="Quantum-MNIST: MLP encoder + ZZFeatureMap/RealAmplitudes sampler, MNIST 0 vs 1",
    inputs=MNIST_RAW,
    pairs=(Pair("hybrid", "control"),),
)


def load_task(inputs, values: dict, seed: int) -> Task:
    """`train_images` 0/1 images drawn without replacement (with the run's seed) from the MNIST training file;
    evaluated on every 0/1 image of the test file (2,115). Pixels / 255 as float32."""
    (images, labels), (test_images, test_labels) = mnist_raw(inputs)
    pool = np.flatnonzero(np.isin(labels, DIGITS))
    rows = np.sort(np.random.default_rng(seed).choice(pool, size=values["train_images"], replace=False))
    test_rows = np.flatnonzero(np.isin(test_labels, DIGITS))[: values["test_images"]]  # None: all

    def pixels(x):
        return (x.reshape(len(x), -1) / np.float32(255)).astype(np.float32)

    test = (pixels(test_images[test_rows]), test_labels[test_rows].astype(np.int64))
    return Task(train=(pixels(images[rows]), labels[rows].astype(np.int64)), evaluation={"test": test})


def circuit(values: dict | None = None) -> Circuit:
    """zz_feature_map(4) then real_amplitudes(4), all qubits measured; outcome probabilities. The encoding is
    the feature map (the first instructions), the trainable part the ansatz."""
    from qiskit.circuit.library import real_amplitudes, zz_feature_map

    feature_map = zz_feature_map(N_QUBITS, reps=FEATURE_MAP_REPS, parameter_prefix="z")
    ansatz = real_amplitudes(N_QUBITS, parameter_prefix="w")
    qc = feature_map.compose(ansatz)
    qc.name = "quantum_mnist"
    qc.measure_all()
    encoding = ((0, len(feature_map.data)),)
    return Circuit(qc, tuple(feature_map.parameters), tuple(ansatz.parameters), "probabilities", encoding=encoding)


def product_encoding(spec: Circuit):
    """entanglement "product" (qtlmnist.systems.separable): the ZZ feature map without its pair terms, i.e. the
    Z feature map of the same 4 inputs (Havlicek et al. 2019), rep for rep: H then P(2 z_i) on every qubit,
    FEATURE_MAP_REPS times. A product state; each qubit carries its own input."""
    from qiskit.circuit import QuantumCircuit

    qc = QuantumCircuit(N_QUBITS, name="z_map")
    for _ in range(FEATURE_MAP_REPS):
        for qubit, z in enumerate(spec.inputs):
            qc.h(qubit)
            qc.p(2 * z, qubit)
    return qc


def parity_matrix(n_qubits: int = N_QUBITS) -> np.ndarray:
    """(2**n, 2): column c sums the outcomes whose number of 1 bits is c mod 2 (SamplerQNN's parity)."""
    odd = np.array([i.bit_count() % 2 for i in range(2**n_qubits)])
    return np.stack([odd == 0, odd == 1], axis=1).astype(np.float32)


def build(keras, values: dict, seed: int, spec: Circuit | None):
    """Encoder -> circuit -> parity (spec given, values["model"] == "quantum"), or encoder -> dense head."""
    from .engine import CircuitLayer

    pixels = keras.Input((784,), name="pixels")
    encoded = keras.layers.Dense(N_QUBITS, name="encoder")(pixels)
    if values["model"] == "control":
        hidden = keras.layers.Dense(values["control_hidden"], activation="tanh", name="hidden")(encoded)
        return keras.Model(pixels, keras.layers.Dense(2, activation="softmax", name="head")(hidden), name="control")
    layer = CircuitLayer(spec.circuit, spec.inputs, spec.weights, output="probabilities", seed=seed, name="circuit")
    parity = keras.layers.Dense(2, use_bias=False, trainable=False, name="parity")
    outputs = parity(layer(encoded))
    parity.set_weights([parity_matrix()])
    return keras.Model(pixels, outputs, name="hybrid")


def targets(labels: np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=np.int32)


def decide(outputs: np.ndarray) -> np.ndarray:
    return np.asarray(outputs).argmax(axis=1)
