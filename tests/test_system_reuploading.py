"""Seed 004's re-uploading system against independent references: the loaded state against the normalised
latent (Statevector); the loading operator and the whole circuit against a numpy construction written in
PennyLane's wire order from the definitions (block-diagonal uniformly controlled Ry, Rot, CNOT ranges); the
engine and its Keras layer against Statevector; parameter counts and task sizes against hand-counted numbers.
(Aer with shots, gradients and training, as for every system: test_registered_systems.py.)"""

import numpy as np
import pytest
from qiskit.quantum_info import Operator, Statevector

from qtlmnist.runtime import seed_tensorflow
from qtlmnist.systems import reuploading

N = 6
TOL = 1e-10


@pytest.fixture(scope="module", autouse=True)
def tf_runtime():
    """The same thread count and determinism as the other TensorFlow tests (it can be set only once)."""
    seed_tensorflow(0, 1)


# --- references in PennyLane's convention: wire 0 is the most significant bit of the index ----------------


def relu_latents(rows, seed):
    """Non-negative 64-vectors with exact zeros, like ReLU latents."""
    return np.maximum(np.random.default_rng(seed).normal(size=(rows, 2**N)), 0.0)


SPECIAL = (
    "lower_half_zero",
    "upper_half_zero",
    "quarters_zero",
    "odd_only",
    "first_basis",
    "last_basis",
    "constant",
    "tiny",
)


def special_latents():
    """Zero blocks at every level, one-hot vectors at both ends, a constant vector, a tiny scale."""
    v = relu_latents(8, seed=1)
    v[0, :32] = 0  # lower half (wire 0 = 0) zero: level 0 rotates by pi
    v[1, 32:] = 0  # upper half zero: level 0 does not rotate
    v[2, 16:48] = 0  # two quarter blocks zero
    v[3, ::2] = 0  # the last wire always 1
    v[4] = 0
    v[4, 0] = 2.0  # |0...0>
    v[5] = 0
    v[5, 63] = 0.3  # |1...1>
    v[6] = 1.0
    v[7] *= 1e-6
    return v


def reference_tree_angles(a):
    """alpha_{k,j} = 2 arcsin(||upper half|| / ||block||), 0 for a zero block, block by block (PennyLane's
    _get_alpha_y, written out)."""
    angles = []
    for k in range(N):
        size = 2 ** (N - k)
        for j in range(2**k):
            block = a[j * size : (j + 1) * size]
            norm = np.linalg.norm(block)
            angles.append(2 * np.arcsin(np.linalg.norm(block[size // 2 :]) / norm) if norm > 0 else 0.0)
    return np.array(angles)


def ry(t):
    return np.array([[np.cos(t / 2), -np.sin(t / 2)], [np.sin(t / 2), np.cos(t / 2)]])


def rz(t):
    return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t)])


def bit(index, wire):
    return (index >> (N - 1 - wire)) & 1


def reference_loading(a):
    """U(a) = UCRy_5 ... UCRy_0, UCRy_k = sum_j |j><j| (x) Ry(alpha_{k,j}) on wire k, j = wires 0..k-1."""
    alpha = reference_tree_angles(a)
    unitary = np.eye(2**N)
    for k in range(N):
        step = np.zeros((2**N, 2**N))
        for row in range(2**N):
            for col in range(2**N):
                if row ^ col in (0, 1 << (N - 1 - k)):  # equal except perhaps on wire k
                    j = row >> (N - k)
                    step[row, col] = ry(alpha[2**k - 1 + j])[bit(row, k), bit(col, k)]
        unitary = step @ unitary
    return unitary


def on_wire(matrix, wire):
    return np.kron(np.kron(np.eye(2**wire), matrix), np.eye(2 ** (N - 1 - wire)))


def cnot(control, target):
    matrix = np.zeros((2**N, 2**N))
    for index in range(2**N):
        matrix[index ^ (bit(index, control) << (N - 1 - target)), index] = 1
    return matrix


def reference_expectations(a, weights, ranges):
    """<Z_i>, i = wire, of [U, SEL_1, ..., U, SEL_L] |0>; weights (L, 6, 3) as PennyLane's."""
    load = reference_loading(a)
    state = np.zeros(2**N, dtype=complex)
    state[0] = 1
    for layer, r in enumerate(ranges):
        state = load @ state
        for wire in range(N):
            phi, theta, omega = weights[layer, wire]
            state = on_wire(rz(omega) @ ry(theta) @ rz(phi), wire) @ state
        for wire in range(N):
            state = cnot(wire, (wire + r) % N) @ state
    p = np.abs(state) ** 2
    return np.array([p @ (1 - 2 * np.array([bit(i, wire) for i in range(2**N)])) for wire in range(N)])


def bind(circuit, inputs, weights, x, w):
    return circuit.assign_parameters(dict(zip(inputs, x)) | dict(zip(weights, w)))


# --- loading -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("v", [*relu_latents(3, seed=0), *special_latents()], ids=["relu"] * 3 + list(SPECIAL))
def test_loaded_state_is_the_normalised_latent(v):
    circuit, inputs = reuploading.loading_circuit(N)
    state = Statevector(bind(circuit, inputs, [], reuploading.loading_angles(v[None])[0], [])).data
    assert np.abs(state - v / np.linalg.norm(v)).max() <= TOL


def test_all_zero_latent_loads_the_zero_state():
    circuit, inputs = reuploading.loading_circuit(N)
    state = Statevector(bind(circuit, inputs, [], reuploading.loading_angles(np.zeros((1, 64)))[0], [])).data
    assert np.abs(state - np.eye(64)[0]).max() <= TOL


def test_tree_angles_are_the_arcsin_of_norm_ratios():
    v = np.concatenate([relu_latents(3, seed=2), special_latents()])
    expected = np.array([reference_tree_angles(row) for row in v])
    assert np.abs(reuploading.tree_angles(v) - expected).max() <= 1e-9  # arcsin near 1 loses digits


@pytest.mark.parametrize("row", [0, 2, 3])
def test_loading_operator_is_the_tree_of_uniformly_controlled_ry(row):
    """The whole operator, not only its first column: re-uploading applies it to states other than |0>."""
    v = special_latents()[row] if row else relu_latents(1, seed=3)[0]
    circuit, inputs = reuploading.loading_circuit(N)
    operator = Operator(bind(circuit, inputs, [], reuploading.loading_angles(v[None])[0], [])).data
    assert np.abs(operator - reference_loading(v)).max() <= TOL


def test_loading_gate_counts_and_refusals():
    circuit, inputs = reuploading.loading_circuit(N)
    assert dict(circuit.count_ops()) == {"ry": 63, "cx": 62} and len(inputs) == 63
    with pytest.raises(ValueError, match="non-negative"):
        reuploading.loading_angles(-np.ones((1, 64)))
    with pytest.raises(ValueError, match="2\\*\\*n values"):
        reuploading.loading_angles(np.ones((1, 63)))


# --- the whole circuit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_circuit_expectations_match_the_pennylane_order_reference(n_layers):
    circuit, inputs, weights, observables, _ = reuploading.reuploading_circuit(N, n_layers)
    assert len(inputs) == 63 and len(weights) == 18 * n_layers and len(observables) == N
    counts = circuit.count_ops()
    assert (counts["ry"], counts["rz"], counts["cx"]) == (69 * n_layers, 12 * n_layers, 68 * n_layers)
    rng = np.random.default_rng(n_layers)
    for v in relu_latents(2, seed=10 + n_layers):
        w = rng.uniform(0, 2 * np.pi, size=(n_layers, N, 3))
        state = Statevector(bind(circuit, inputs, weights, reuploading.loading_angles(v[None])[0], w.ravel()))
        values = np.array([state.expectation_value(o).real for o in observables])
        ranges = [(1, 2, 3)[layer] for layer in range(n_layers)]
        assert np.abs(values - reference_expectations(v, w, ranges)).max() <= TOL


@pytest.mark.parametrize("n_layers", range(1, 7))
def test_entangling_layers_use_pennylane_cnot_ranges(n_layers):
    ranges = {1: [1], 2: [1, 2], 3: [1, 2, 3], 4: [1, 2, 3, 4], 5: [1, 2, 3, 4, 5], 6: [1, 2, 3, 4, 5, 1]}
    assert list(reuploading.sel_ranges(N, n_layers)) == ranges[n_layers]
    circuit, *_ = reuploading.reuploading_circuit(N, n_layers)
    blocks, current = [], []  # barriers close each load and each entangling layer
    for instruction in circuit.data:
        if instruction.operation.name == "barrier":
            blocks.append(current)
            current = []
        else:
            current.append(instruction)
    layers = blocks[1::2]
    assert len(layers) == n_layers
    for layer, r in zip(layers, ranges[n_layers]):
        wires = [
            tuple(N - 1 - circuit.find_bit(q).index for q in instruction.qubits)
            for instruction in layer
            if instruction.operation.name == "cx"
        ]
        assert wires == [(i, (i + r) % N) for i in range(N)]


def test_engine_and_keras_layer_match_statevector():
    import keras

    from qtlmnist.systems import engine

    spec = reuploading.circuit({"n_layers": 2})
    circuit, inputs, weights, observables = spec.circuit, spec.inputs, spec.weights, spec.observables
    x = reuploading.loading_angles(np.concatenate([relu_latents(3, seed=20), special_latents()[[0, 2]]]))
    model = reuploading.build_model(keras, spec, n_classes=4, seed=3)
    assert model.get_layer("circuit").engine.circuit is circuit  # the object the driver sends to Aer
    layer = model.get_layer("circuit")
    w = layer.circuit_weights.numpy()
    assert np.all((w >= 0) & (w < 2 * np.pi))
    from_engine = engine.compile_circuit(circuit, inputs, weights).expectations(x, w, observables).numpy()
    from_layer = keras.Model(model.input, layer.output)(x).numpy()
    for row in range(len(x)):
        state = Statevector(bind(circuit, inputs, weights, x[row], w))
        exact = np.array([state.expectation_value(o).real for o in observables])
        assert np.abs(from_engine[row] - exact).max() <= TOL
        assert np.abs(from_layer[row] - exact).max() <= 1e-6  # the layer outputs float32
    probabilities = model(x).numpy()
    assert probabilities.shape == (len(x), 4) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-6)


# --- models and tasks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_classes", "n_layers", "hybrid", "hidden", "control"),
    [(4, 1, 46, 1, 73), (4, 2, 64, 1, 73), (10, 1, 88, 1, 85), (10, 2, 106, 1, 85), (10, 3, 124, 2, 160)],
)
def test_parameter_counts_of_hybrid_and_control(n_classes, n_layers, hybrid, hidden, control):
    import keras

    # hybrid: 18 per layer + Dense 6 -> k; control: Dense 64 -> h, Dense h -> k
    spec = reuploading.circuit({"n_layers": n_layers})
    assert reuploading.build_model(keras, spec, n_classes).count_params() == hybrid
    assert reuploading.hybrid_parameter_count(n_classes, n_layers) == hybrid
    assert reuploading.control_hidden(n_classes, n_layers) == hidden
    model = reuploading.build_control(keras, n_classes, n_layers)
    assert model.count_params() == control and model.get_layer("hidden").units == hidden


def test_load_task_sizes_and_label_remapping():
    rng = np.random.default_rng(0)
    labels_train = rng.permutation(np.repeat(np.arange(10), 6000))  # Fashion-MNIST: 6,000 / 1,000 per class
    labels_test = rng.permutation(np.repeat(np.arange(10), 1000))
    latents_train = np.arange(60_000, dtype=np.float32)[:, None] * np.ones((1, 64), np.float32)
    latents_test = np.arange(10_000, dtype=np.float32)[:, None] * np.ones((1, 64), np.float32)
    x, y, x_test, y_test = reuploading.select_classes(
        latents_train, labels_train, latents_test, labels_test, (1, 2, 3, 7)
    )
    assert (len(x), len(x_test)) == (24_000, 4_000) and x.shape[1] == 64
    assert np.array_equal(np.bincount(y), [6000] * 4) and np.array_equal(np.bincount(y_test), [1000] * 4)
    rows = x[:, 0].astype(int)  # which rows were kept, and in which order
    assert np.array_equal(rows, np.flatnonzero(np.isin(labels_train, [1, 2, 3, 7])))
    assert np.array_equal(np.array([1, 2, 3, 7])[y], labels_train[rows])  # trouser 0, pullover 1, dress 2, sneaker 3
    x, y, x_test, y_test = reuploading.select_classes(latents_train, labels_train, latents_test, labels_test, range(10))
    assert (len(x), len(x_test)) == (60_000, 10_000)
    assert np.array_equal(y, labels_train) and np.array_equal(y_test, labels_test)


# --- the system interface: the workflow's files, the driver ----------------------------------------------------

FOUR = ["Trouser", "Pullover", "Dress", "Sneaker"]


def test_class_indices_are_the_dataset_labels_of_the_names():
    assert reuploading.class_indices(FOUR) == (1, 2, 3, 7)
    assert reuploading.class_indices(None) == tuple(range(10))
    assert reuploading.CLASS_NAMES[7] == "Sneaker"
    with pytest.raises(ValueError, match=r"\['Sandals'\] are not Fashion-MNIST class names"):
        reuploading.class_indices(["Trouser", "Sandals"])


@pytest.fixture
def workflow_files(tmp_path):
    """Tiny stand-ins of the main workflow's Fashion-MNIST latents and circuit counts, 40 / 10 / 20 rows."""
    from qtlmnist.arrays import save_dataset

    rng = np.random.default_rng(7)
    files = {"latents": {}, "counts": {}}
    for split, rows in (("train", 40), ("val", 10), ("test", 20)):
        labels = np.arange(rows) % 10
        latents = relu_latents(rows, seed=rows) + 2.0 * np.eye(64)[labels]  # class c: a large value c
        counts = rng.dirichlet(np.ones(32), size=rows)
        for kind, features in (("latents", latents), ("counts", counts)):
            files[kind][split] = str(tmp_path / f"{kind}_{split}.npz")
            save_dataset(files[kind][split], features.astype(np.float32), labels)
    return files


def test_load_task_per_model(workflow_files):
    values = {"model": "quantum", "classes": FOUR}
    task = reuploading.load_task(workflow_files["latents"], values, seed=1)
    x, y = task.train
    assert x.shape == (20, 63) and task.evaluation["test"][0].shape == (8, 63)  # 4 of 10 classes of 50 / 20
    assert task.classes == tuple(FOUR) and np.array_equal(np.bincount(y), [5] * 4)
    control = reuploading.load_task(workflow_files["latents"], values | {"model": "control"}, seed=1)
    np.testing.assert_allclose(reuploading.loading_angles(control.train[0]), x, atol=1e-6)  # float32 latents
    ten = reuploading.load_task(workflow_files["latents"], {"model": "control", "classes": None}, seed=1)
    assert len(ten.train[1]) == 50 and ten.classes == reuploading.CLASS_NAMES
    sarkar = {"model": "sarkar", "classes": FOUR, "val_fraction": 0.2}
    task = reuploading.load_task(workflow_files["counts"], sarkar, seed=1)
    (x, y), (x_val, y_val) = task.train, task.evaluation["val"]
    assert x.shape == (16, 32) and x_val.shape == (4, 32) and sorted(y_val) == [0, 1, 2, 3]  # stratified 20%
    assert task.evaluation["test"][0].shape == (8, 32)
    other_seed = reuploading.load_task(workflow_files["counts"], sarkar, seed=2).evaluation["val"][0]
    assert not np.array_equal(other_seed, x_val)  # each seed splits again
    with pytest.raises(ValueError, match="the 6-qubit loading takes 64"):
        reuploading.load_task(workflow_files["counts"], values, seed=1)


def test_driver_runs_the_hybrid_and_our_sarkar_hybrid_on_the_files(workflow_files):
    from qtlmnist.systems import training

    base = {"classes": FOUR, "n_layers": 1, "epochs": 1, "batch_size": 8, "learning_rate": 0.01, "shuffle": True}
    base |= {"history_sets": ["test"], "control_hidden": None}
    metrics, history, _ = training.run(
        reuploading, workflow_files["latents"], base | {"model": "quantum", "shots": 64}, 1, 1
    )
    assert metrics["class_names"] == FOUR and metrics["parameters"] == {"circuit": 18, "classical": 28, "total": 46}
    test = metrics["sets"]["test"]
    assert test["n"] == 8 and np.array(test["confusion"]).shape == (4, 4) and test["accuracy_shots"] is not None
    assert list(history.columns) == ["epoch", "loss", "test_accuracy"] and metrics["shots"] == 64
    classifier = {"units": [8], "dropout": 0.0, "epochs": 2, "batch_size": 8, "learning_rate": 0.01}
    classifier |= {"lr_factor": 0.5, "lr_patience": 3, "min_lr": 1e-5}
    sarkar = base | {"model": "sarkar", "classifier": classifier, "val_fraction": 0.2, "shots": 1024}
    metrics, history, model = training.run(reuploading, workflow_files["counts"], sarkar, 1, 1)
    assert model.output_shape == (None, 4) and set(metrics["sets"]) == {"train", "val", "test"}
    for result in metrics["sets"].values():  # its features were counted with shots: no exact accuracy
        assert result["accuracy_exact"] is None and result["accuracy_shots"] == result["accuracy"]
    assert metrics["shots"] == 1024 and metrics["precision"] is None and len(history) == 2
    assert metrics["sets"]["val"]["best_epoch"] in (1, 2)  # from the classifier's val_accuracy history
    # The stacked loop on the same seeds: without dropout (as here) each seed follows its Keras fit to float32
    # round-off, so the two loops' histories and test accuracies agree (at most one image may flip on a tie)
    seeds = [1, 2]
    by_keras = training.run_setting(reuploading, workflow_files["counts"], sarkar, seeds, 1)
    grouped = training.run_setting(reuploading, workflow_files["counts"], sarkar | {"sarkar_loop": "grouped"}, seeds, 1)
    for (expected, expected_history, _), (metrics, history, model) in zip(by_keras, grouped):
        assert model.output_shape == (None, 4) and metrics["seed"] == expected["seed"]
        np.testing.assert_allclose(history["loss"], expected_history["loss"], rtol=1e-3)
        test, reference = metrics["sets"]["test"], expected["sets"]["test"]
        assert abs(test["accuracy"] - reference["accuracy"]) <= 1 / test["n"] + 1e-12
        assert test["accuracy_exact"] is None and test["accuracy_shots"] == test["accuracy"]
    assert by_keras[0][1]["loss"].iloc[-1] != by_keras[1][1]["loss"].iloc[-1]  # two seeds, two runs
