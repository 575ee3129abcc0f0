"""Seed 004: a 6-qubit data re-uploading classifier on autoencoder latents of Fashion-MNIST.

Source: the blog post "Hybrid Quantum Neural Network for reduced MNIST Data" (shared/seeds/004_*.txt; original
code not public) and a derivative that shows its pieces: each image's 64-d autoencoder latent v is loaded by
amplitude (state) preparation on 6 qubits, PennyLane StronglyEntanglingLayers (SEL) process it with the data
uploaded again between layers, <Z> of every qubit feeds a Dense softmax layer; Adam 0.01, batch 8, 1 epoch;
4 labels (Trouser, Pullover, Dress, Sneaker; the post: 95%) and all 10 (the post: ~70%).

The circuit, in PennyLane's wire order (wire 0 = most significant bit of the amplitude index):

    f_i(v; w) = <psi| Z_i |psi>,   |psi> = SEL_L(w_L) U(v) ... SEL_2(w_2) U(v) SEL_1(w_1) U(v) |0>^6,
    p(y | v) = softmax(W f + b),

where U(v) is Mottonen state preparation (AmplitudeEmbedding(normalize=True) decomposes into it when it is not
the circuit's first operation), so U(v)|0> = v / ||v||. For v >= 0 (ReLU latents) U(v) is only a binary tree of
uniformly controlled Ry rotations (UCRy): level k = 0..5 rotates wire k, controlled by wires 0..k-1, by
alpha_{k,j} = 2 atan2(||upper half of block j||, ||lower half||) for each of the 2**k blocks of 2**(6-k)
consecutive amplitudes (j = the value of wires 0..k-1). A UCRy is block diagonal in its controls, so U(v) as an
operator (which is what re-uploading applies to a state that is no longer |0>) is fixed by these angles alone,
whatever circuit realises it. Uploads sit before every layer, [U, SEL_1, U, SEL_2, ..., U, SEL_L]: with the
derivative's single layer (n_layers=1) there is no re-upload at all, only the initial state preparation.
Config `reupload: false` loads once for any n_layers, [U, SEL_1, ..., SEL_L] ("no re-upload").

Entanglement removed (config `entanglement`, qtlmnist.systems.separable): "separable" drops the SEL layers' 6
CX each and keeps every load (whose 62 CX build the state); "product" also replaces each load by one rotation
per loading angle, Ry and Rz alternating over the qubits (`product_encoding`).

SEL layer l (0-based) with weights w[l, i] = (phi, theta, omega): Rot(phi, theta, omega) = RZ(omega) RY(theta)
RZ(phi) on every wire i, then CNOT(i, (i + r) mod 6) for i = 0..5 in turn, r = l mod 5 + 1 (PennyLane's default
ranges, counted over the whole stack of layers).

Qiskit form. PennyLane's wire i is Qiskit's qubit 5 - i: with that map both index the state vector the same
way (Qiskit's index is sum_q b_q 2**q, PennyLane's sum_i b_i 2**(5 - i)), so the loaded Qiskit statevector is
v / ||v|| entry for entry and the circuit is the post's. Each UCRy with k controls is written as 2**k Ry and
2**k CX in Gray-code order (Mottonen et al. 2004), so a load is 63 Ry + 62 CX, plain gates that Aer binds
correctly and a device would run; an SEL layer is 6 x (RZ RY RZ) + 6 CX. The circuit's inputs are the 63 Ry
angles of one load (the same angles at every upload), computed classically by `loading_angles`; the encoder
is frozen (trained separately), so no gradient flows to the data. Observable i is Z on wire i (qubit 5 - i),
so the features come out in PennyLane's order.

Everything is for general n_qubits (2**n_qubits latent values), defaulting to the post's 6.

As a trainable system (`systems.reuploading` in config/config.yaml; interface of `qtlmnist.systems.common`):
the task is the main workflow's Fashion-MNIST latents (train + val = the 60,000 training images, test = the
10,000 test images) of the configured `classes`, remapped to 0..k-1 in that order; the hybrid (model
"quantum") reads the loading angles, the classical controls (model "control", `build_control`) the latents;
model "sarkar" is this project's own hybrid on the same images and classes (the Sarkar pipeline's 5-qubit
circuit-count features, classified by the `classifier` section's network; `training.run_sarkar`). The post's
training (Adam 0.01, batch 8, 1 epoch) and the number of layers are config values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..data import DATASETS, SPLITS, stratified_split
from .common import FASHION_COUNTS, FASHION_LATENTS, Circuit, Claim, Pair, System, Task, unknown_classes

if TYPE_CHECKING:  # Qiskit is imported where a circuit is built: the registry imports this module at parse time
    from qiskit.circuit import ParameterVector, QuantumCircuit

N_QUBITS = 6  # 2**6 = 64 latent values
CLASS_NAMES = DATASETS["fashion_mnist"].class_names  # a task's `classes` are some of these, by name
LOSS = "sparse_categorical_crossentropy"  # on the softmax probabilities

POST, OURS = "blog post; seed 004", "this replication"
CLAIMS = (
    Claim("95% on 4 labels (Trouser, Pullover, Dress, Sneaker) after 1 epoch", POST, 95.0, "posted_4", "test"),
    Claim("~70% on all 10 labels after 1 epoch", POST, 70.0, "posted_10", "test"),
    Claim("95% on 4 labels, trained for more epochs (the post: 'may improve')", POST, 95.0, "longer_4", "test"),
    Claim("4-label control: Dense on the same latents, parameter count matched", OURS, None, "control_4", "test"),
    Claim("4-label control: Dense on the same latents, 6-unit bottleneck", OURS, None, "bottleneck_4", "test"),
    Claim("4-label control: our Sarkar hybrid (5-qubit counts -> classifier)", OURS, None, "sarkar_4", "test"),
    Claim("10-label control: Dense on the same latents, parameter count matched", OURS, None, "control_10", "test"),
    Claim("10-label control: Dense on the same latents, 6-unit bottleneck", OURS, None, "bottleneck_10", "test"),
    Claim("10-label control: our Sarkar hybrid (5-qubit counts -> classifier)", OURS, None, "sarkar_10", "test"),
)


def check(values: dict) -> list[str]:
    classes = values["classes"]
    if unknown := unknown_classes("fashion_mnist", classes):
        return [f"classes = {classes}: {unknown} not Fashion-MNIST class names (allowed: {', '.join(CLASS_NAMES)})"]
    return []


SYSTEM = System(
    seed_document="004",
    title="Re-uploading QNN: 6 qubits, loading + strongly entangling layers, Fashion-MNIST latents",
    inputs=FASHION_LATENTS,
    check=check,
    model_inputs={"sarkar": FASHION_COUNTS},
    # longer_4 (3 epochs) has no control of its budget
    pairs=tuple(
        Pair(f"posted_{k}", f"{control}_{k}") for k in (4, 10) for control in ("control", "bottleneck", "sarkar")
    ),
)


# --- loading: the Mottonen tree of uniformly controlled Ry rotations ---------------------------------------


def tree_angles(v: np.ndarray) -> np.ndarray:
    """(N, 2**n - 1) rotation angles alpha of the state-preparation tree for non-negative v of shape (N, 2**n).

    Column 2**k - 1 + j is alpha_{k,j} = 2 atan2(||upper half||, ||lower half||) of block j (amplitudes
    j 2**(n-k) .. (j+1) 2**(n-k) - 1, halves by the bit of wire k). atan2(0, 0) = 0: a zero block (ReLU
    latents have exact zeros) gets no rotation, and an all-zero vector loads |0...0>. Scale does not matter,
    so this is AmplitudeEmbedding with normalize=True.
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    n = _n_qubits(v.shape[1])
    if np.any(v < 0):
        raise ValueError("the loading takes non-negative vectors (ReLU latents); signed ones would need Rz phases")
    weights = v**2
    levels = []
    for k in range(n):
        halves = weights.reshape(len(v), 2**k, 2, 2 ** (n - k - 1)).sum(axis=-1)  # (N, block, lower/upper)
        levels.append(2 * np.arctan2(np.sqrt(halves[..., 1]), np.sqrt(halves[..., 0])))
    return np.concatenate(levels, axis=1)


def _n_qubits(width: int) -> int:
    n = int(width).bit_length() - 1
    if width < 2 or 2**n != width:
        raise ValueError(f"amplitude loading needs 2**n values per row, got {width}")
    return n


def _gray_code_signs(k: int) -> np.ndarray:
    """M with M[j, i] = (-1)**popcount(j & g_i), g_i = i ^ (i >> 1): Ry(theta_i) then CX from the Gray code's
    changing bit gives control value j the rotation sum_i M[j, i] theta_i (X Ry(t) X = Ry(-t))."""
    index = np.arange(2**k)
    gray = index ^ (index >> 1)
    return 1.0 - 2.0 * (np.bitwise_count(index[:, None] & gray[None, :]) % 2)


def _gray_code_controls(k: int) -> list[int]:
    """The control bit of the CX after Ry(theta_i): the bit in which g_i and g_{i+1} (cyclically) differ."""
    return [(i + 1 & -(i + 1)).bit_length() - 1 if i < 2**k - 1 else k - 1 for i in range(2**k)]


def loading_angles(v: np.ndarray) -> np.ndarray:
    """(N, 2**n - 1) angles of the loading circuit's Ry gates, in the order of its input parameters.

    Level k's 2**k tree angles alpha_{k,.} become theta_{k,.} = M^T alpha_{k,.} / 2**k (M: `_gray_code_signs`,
    M M^T = 2**k) so that 2**k Ry + 2**k CX realise the UCRy (Mottonen et al. 2004, eq. 3). float64, numpy:
    the data enters only here (no gradient to the frozen encoder), so a preprocessing step suffices.
    """
    alpha = tree_angles(v)
    n = _n_qubits(alpha.shape[1] + 1)
    theta = np.empty_like(alpha)
    for k in range(n):
        level = slice(2**k - 1, 2 ** (k + 1) - 1)
        theta[:, level] = alpha[:, level] @ _gray_code_signs(k) / 2**k
    return theta


def loading_circuit(n_qubits: int = N_QUBITS, name: str = "x") -> tuple[QuantumCircuit, ParameterVector]:
    """(circuit, its 2**n - 1 input parameters): U(v) with U(v)|0> = v / ||v|| for x = loading_angles(v).

    Level k targets wire k = qubit n-1-k, controlled by wires 0..k-1 = qubits n-k..n-1; bit m of the control
    value j is qubit n-k+m, so j is the value of the higher qubits, as in the index of the amplitude blocks.
    """
    from qiskit.circuit import ParameterVector, QuantumCircuit

    x = ParameterVector(name, 2**n_qubits - 1)
    circuit = QuantumCircuit(n_qubits, name="load")
    for k in range(n_qubits):
        target = n_qubits - 1 - k
        for i, bit in enumerate(_gray_code_controls(k)):
            circuit.ry(x[2**k - 1 + i], target)
            if k:
                circuit.cx(n_qubits - k + bit, target)
    return circuit, x


# --- the trainable circuit ----------------------------------------------------------------------------------


def sel_ranges(n_qubits: int, n_layers: int) -> tuple[int, ...]:
    """PennyLane's default CNOT ranges of StronglyEntanglingLayers: r = l mod (n - 1) + 1 in layer l."""
    return tuple(layer % (n_qubits - 1) + 1 for layer in range(n_layers))


def wire_qubit(wire: int, n_qubits: int = N_QUBITS) -> int:
    """Qiskit's qubit for PennyLane's wire (wire 0 is the most significant bit, qubit 0 the least)."""
    return n_qubits - 1 - wire


def reuploading_circuit(n_qubits: int, n_layers: int, reupload: bool = True):
    """(QuantumCircuit, inputs: 2**n - 1 loading angles, weights: n_layers * n * 3, observables: Z per wire,
    encoding: the (start, stop) instruction spans of the uploads).

    [U(x), SEL_1, U(x), SEL_2, ..., U(x), SEL_L]; reupload False: [U(x), SEL_1, SEL_2, ..., SEL_L], the data
    uploaded once. Weight index (l * n + i) * 3 + c is PennyLane's weights[l, i, c] (c: phi, theta, omega of
    Rot on wire i). Observable i is Z on wire i (qubit n-1-i).
    """
    from qiskit.circuit import ParameterVector, QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    load, x = loading_circuit(n_qubits)
    w = ParameterVector("w", n_layers * n_qubits * 3)
    qc = QuantumCircuit(n_qubits, name=f"reuploading_{n_layers}" if reupload else f"upload_once_{n_layers}")
    encoding = []
    for layer, r in enumerate(sel_ranges(n_qubits, n_layers)):
        if reupload or layer == 0:
            start = len(qc.data)
            qc.compose(load, inplace=True)
            encoding.append((start, len(qc.data)))
            qc.barrier()
        for i in range(n_qubits):  # Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi): phi acts first
            phi, theta, omega = w[(layer * n_qubits + i) * 3 : (layer * n_qubits + i) * 3 + 3]
            qc.rz(phi, wire_qubit(i, n_qubits))
            qc.ry(theta, wire_qubit(i, n_qubits))
            qc.rz(omega, wire_qubit(i, n_qubits))
        for i in range(n_qubits):
            qc.cx(wire_qubit(i, n_qubits), wire_qubit((i + r) % n_qubits, n_qubits))
        qc.barrier()
    observables = [SparsePauliOp("I" * i + "Z" + "I" * (n_qubits - 1 - i)) for i in range(n_qubits)]
    return qc, list(x), list(w), observables, tuple(encoding)


def circuit(values: dict) -> Circuit:
    """The system's one circuit: `reuploading_circuit` on 6 qubits with values["n_layers"] layers, the data
    re-uploaded before each (values["reupload"], absent: true) or loaded once."""
    qc, inputs, weights, observables, encoding = reuploading_circuit(
        N_QUBITS, values["n_layers"], values.get("reupload", True)
    )
    return Circuit(qc, tuple(inputs), tuple(weights), "expectations", tuple(observables), encoding)


def product_encoding(spec: Circuit):
    """entanglement "product" (qtlmnist.systems.separable): each upload U(x), whose CX gates build the
    amplitude-encoded state, replaced by one rotation per loading angle on its own qubit: angle j on qubit
    j mod n, Ry in the even rounds (j // n even) and Rz in the odd ones, so each qubit gets Ry Rz Ry ...
    A product state of the same inputs. The rotations alternate because Ry(a) Ry(b) = Ry(a + b): Ry alone
    would load only n sums of the 2**n - 1 angles. (No product state of n qubits holds 2**n - 1 numbers
    exactly, 2 n at most: the trainable layers and the re-uploads see the rest only through this map.)"""
    from qiskit.circuit import QuantumCircuit

    n = spec.circuit.num_qubits
    qc = QuantumCircuit(n, name="product_load")
    for j, x in enumerate(spec.inputs):
        (qc.ry if (j // n) % 2 == 0 else qc.rz)(x, j % n)
    return qc


# --- models ---------------------------------------------------------------------------------------------------


def build_model(keras, spec: Circuit, n_classes: int, seed: int = 0):
    """Hybrid: loading angles (N, 2**n - 1) -> CircuitLayer "circuit" built from `spec` (n <Z>) -> Dense softmax
    "softmax". Circuit weights start uniform on [0, 2 pi), the initialiser of PennyLane's KerasLayer that the
    post used. Trainable parameters: 3 n n_layers + (n + 1) n_classes: 64 for 4 labels and two layers (46 with
    one), 106 for 10 (88). Not compiled: the driver compiles it (Adam, LOSS)."""
    from .engine import CircuitLayer  # imports TensorFlow: the caller seeds it first

    angles = keras.Input(shape=(len(spec.inputs),), name="loading_angles", dtype="float64")
    features = CircuitLayer(
        spec.circuit,
        spec.inputs,
        spec.weights,
        spec.observables,
        weight_initializer=keras.initializers.RandomUniform(0.0, 2 * np.pi, seed=seed),
        input_gradients=False,  # the angles are data, computed from the frozen encoder's latents
        name="circuit",
    )(angles)
    outputs = keras.layers.Dense(
        n_classes, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed), name="softmax"
    )(features)
    return keras.Model(angles, outputs, name=spec.circuit.name)


def hybrid_parameter_count(n_classes: int, n_layers: int, n_qubits: int = N_QUBITS) -> int:
    return 3 * n_qubits * n_layers + (n_qubits + 1) * n_classes


def control_hidden(n_classes: int, n_layers: int, n_qubits: int = N_QUBITS, n_features: int = 2**N_QUBITS) -> int:
    """The width h >= 1 whose control count (n_features + 1) h + (h + 1) n_classes is nearest the hybrid's."""
    target = hybrid_parameter_count(n_classes, n_layers, n_qubits)
    exact = (target - n_classes) / (n_features + 1 + n_classes)
    candidates = {max(1, int(np.floor(exact))), max(1, int(np.ceil(exact)))}
    return min(candidates, key=lambda h: (abs(control_parameter_count(n_classes, h, n_features) - target), h))


def control_parameter_count(n_classes: int, hidden: int, n_features: int = 2**N_QUBITS) -> int:
    return (n_features + 1) * hidden + (hidden + 1) * n_classes


def build_control(
    keras, n_classes: int, n_layers: int, hidden: int | None = None, seed: int = 0, n_features: int = 2**N_QUBITS
):
    """Classical control on the same latents: L2-normalised latent (what the circuit loads) -> Dense(hidden,
    tanh; bounded like <Z>) -> Dense softmax, trained like the hybrid. hidden=None: `control_hidden`, the width
    whose parameter count is nearest that of the hybrid with n_layers (one or two layers: h = 1, 73 parameters
    vs 46 / 64 for 4 labels, 85 vs 88 / 106 for 10). A one-unit bottleneck is weak for 10 classes; hidden=6
    gives the same 6-feature bottleneck as the circuit's <Z> (418 / 460 parameters). Not compiled."""
    if hidden is None:
        hidden = control_hidden(n_classes, n_layers, _n_qubits(n_features), n_features)
    latents = keras.Input(shape=(n_features,), name="latents")
    # v / ||v||, as AmplitudeEmbedding(normalize=True) loads it (an all-zero row stays zero)
    unit = keras.layers.UnitNormalization(name="normalise")(latents)
    h = keras.layers.Dense(
        hidden, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed), name="hidden"
    )(unit)
    outputs = keras.layers.Dense(
        n_classes, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed + 1), name="softmax"
    )(h)
    return keras.Model(latents, outputs, name=f"control_{hidden}")


def build(keras, values: dict, seed: int, spec: Circuit | None):
    """The hybrid (spec given, values["model"] == "quantum") or the classical control (control_hidden: null =
    the matched parameter count, or a width), for the task's classes."""
    n_classes = len(class_indices(values["classes"]))
    if values["model"] == "control":
        return build_control(keras, n_classes, values["n_layers"], values["control_hidden"], seed)
    return build_model(keras, spec, n_classes, seed)


def targets(labels: np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=np.int32)


def decide(outputs: np.ndarray) -> np.ndarray:
    return np.asarray(outputs).argmax(axis=1)


# --- tasks ----------------------------------------------------------------------------------------------------


def class_indices(classes: Sequence[str] | None) -> tuple[int, ...]:
    """Fashion-MNIST labels of the named classes, in the given order (None: all ten)."""
    if classes is None:
        return tuple(range(len(CLASS_NAMES)))
    unknown = [name for name in classes if name not in CLASS_NAMES]
    if unknown:
        raise ValueError(f"{unknown} are not Fashion-MNIST class names ({', '.join(CLASS_NAMES)})")
    return tuple(CLASS_NAMES.index(name) for name in classes)


def select_classes(
    latents_train: np.ndarray,
    labels_train: np.ndarray,
    latents_test: np.ndarray,
    labels_test: np.ndarray,
    classes: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): the rows whose label is in `classes`, labels remapped to their
    position in `classes` (0..k-1). Pass the train and val latents together as the training set (the 60,000
    training images): 4 labels give 24,000 train / 4,000 test, 10 labels 60,000 / 10,000. Row order is kept.
    """
    classes = np.asarray(classes)
    if len(np.unique(classes)) != len(classes):
        raise ValueError(f"classes repeat: {classes.tolist()}")
    remap = np.full(max(int(classes.max()), int(labels_train.max()), int(labels_test.max())) + 1, -1)
    remap[classes] = np.arange(len(classes))
    picked = []
    for latents, labels in ((latents_train, labels_train), (latents_test, labels_test)):
        keep = np.isin(labels, classes)
        picked += [latents[keep], remap[labels[keep]].astype(np.int64)]
    return tuple(picked)


def load_task(inputs, values: dict, seed: int) -> Task:
    """The configured `classes` of the main workflow's Fashion-MNIST files: train + val pooled as training
    rows, test as `test`. model "quantum": loading angles of the 64-d latents; "control": the latents;
    "sarkar": the circuit-count features, the pooled rows split again (stratified, `val_fraction`, the run's
    seed) into train and a `val` set for the classifier's schedule, as the Sarkar pipeline splits its images."""
    from ..arrays import load_dataset

    classes = class_indices(values["classes"])
    data = {split: load_dataset(inputs[split]) for split in SPLITS}
    pooled = [np.concatenate(arrays) for arrays in zip(data["train"], data["val"])]
    x, y, x_test, y_test = select_classes(*pooled, *data["test"], classes)
    names = tuple(CLASS_NAMES[i] for i in classes)
    if values["model"] == "sarkar":
        kept, held = stratified_split(y, values["val_fraction"], seed)
        evaluation = {"val": (x[held], y[held]), "test": (x_test, y_test)}
        return Task(train=(x[kept], y[kept]), evaluation=evaluation, classes=names)
    if x.shape[1] != 2**N_QUBITS:
        raise ValueError(
            f"{inputs['train']}: {x.shape[1]} latent values per image; the {N_QUBITS}-qubit loading takes "
            f"{2**N_QUBITS} (autoencoder.latent_dim)"
        )
    if values["model"] == "quantum":
        x, x_test = loading_angles(x), loading_angles(x_test)
    return Task(train=(x, y), evaluation={"test": (x_test, y_test)}, classes=names)
