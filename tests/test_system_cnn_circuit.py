"""Seed 002 (CNN -> 2-qubit circuit -> linear head) against independent references: the circuit vs Statevector
and vs its hand-derived closed form, the model's output vs a numpy head on that closed form (and the shared
driver's split at the circuit vs the model), parameter counts written out by hand, which weights move under the
shared training loop in each variant (and the driver's record of it), and the task loader on fake arrays."""

import os
import warnings

import numpy as np
import pytest
from qiskit.quantum_info import SparsePauliOp, Statevector

from qtlmnist.runtime import seed_tensorflow
from qtlmnist.systems import cnn_circuit, engine, training
from qtlmnist.systems.common import Task

TOL_VALUES = 1e-10


@pytest.fixture(scope="module", autouse=True)
def keras():
    """The same thread count and determinism as the other TensorFlow tests (it can be set only once)."""
    return seed_tensorflow(0, 1)


def random_angles(rows, seed):
    return np.random.default_rng(seed).uniform(-2 * np.pi, 2 * np.pi, size=(rows, 2))


# --- the circuit ---------------------------------------------------------------------------------------------


def test_circuit_is_the_originals_gate_list():
    """Transcribed from hybrid_quantum_classifier.py: h, h, ry(x1), ry(x2), cx(0,1), cz(0,1), ry(x1), ry(x2),
    cx(1,0); observable Pauli("ZZ"); no weight parameters."""
    spec = cnn_circuit.circuit({})
    qc = spec.circuit
    gates = [
        (i.operation.name, tuple(qc.find_bit(q).index for q in i.qubits), tuple(map(str, i.operation.params)))
        for i in qc.data
    ]
    assert gates == [
        ("h", (0,), ()), ("h", (1,), ()), ("ry", (0,), ("x[0]",)), ("ry", (1,), ("x[1]",)),
        ("cx", (0, 1), ()), ("cz", (0, 1), ()), ("ry", (0,), ("x[0]",)), ("ry", (1,), ("x[1]",)), ("cx", (1, 0), ()),
    ]  # fmt: skip
    assert len(spec.inputs) == 2 and len(spec.weights) == 0 and qc.num_qubits == 2
    assert spec.observables == (SparsePauliOp("ZZ"),) and spec.output == "expectations"


def test_circuit_expectations_match_statevector_and_the_closed_form():
    spec = cnn_circuit.circuit({})
    x = spec.inputs
    angles = random_angles(8, seed=1)
    values = engine.compile_circuit(spec.circuit, x, spec.weights).expectations(angles, np.zeros(0), spec.observables)
    values = values.numpy()
    for row, (a, b) in enumerate(angles):
        reference = Statevector(spec.circuit.assign_parameters({x[0]: a, x[1]: b}))
        assert abs(values[row, 0] - reference.expectation_value(SparsePauliOp("ZZ")).real) <= TOL_VALUES
    # the docstring's hand derivation: -sin(2 x0) / 2, independent of x1
    np.testing.assert_allclose(values[:, 0], -0.5 * np.sin(2 * angles[:, 0]), rtol=0, atol=TOL_VALUES)


# --- models --------------------------------------------------------------------------------------------------

# Counted by hand for 28x28x1 images, conv=(16, 32), hidden=16 (weights + biases): conv 3x3 -> 26x26,
# conv 3x3 -> 24x24, pool -> 12x12x32 = 4608 -> 16 -> 2; the circuit has none; the head maps its 1 output.
CNN_PARAMS = (1 * 9 * 16 + 16) + (16 * 9 * 32 + 32) + (4608 * 16 + 16) + (16 * 2 + 2)
HEAD_PARAMS = {2: 1 * 1 + 1, 10: 1 * 10 + 10}
CNN_LAYERS = ["cnn_conv1", "cnn_conv2", "cnn_hidden", "cnn_angles"]  # the CNN's layers with weights

# The three models a setting asks for, by the config keys `build` reads (config/config.yaml, systems.cnn_circuit).
VARIANTS = {
    "as_shipped": {"model": "quantum", "input_gradients": False},
    "fixed": {"model": "quantum", "input_gradients": True},
    "control": {"model": "control", "input_gradients": False},
}


def setting(variant, n_classes=2, **overrides):
    """A setting's values for `build`: MNIST 3 vs 5 (two classes) or all ten, the original's CNN widths."""
    classes = ["3", "5"] if n_classes == 2 else None
    return {"dataset": "mnist", "classes": classes, "conv": [16, 32], "hidden": 16} | VARIANTS[variant] | overrides


def build(keras, variant, n_classes=2, seed=0, **overrides):
    """What the shared driver does: the circuit for a quantum setting, then the system's build."""
    values = setting(variant, n_classes, **overrides)
    spec = cnn_circuit.circuit(values) if values["model"] == "quantum" else None
    return cnn_circuit.build(keras, values, seed, spec)


@pytest.mark.parametrize("n_classes", [2, 10])
def test_parameter_counts_are_equal_across_variants(keras, n_classes):
    for variant in VARIANTS:
        model = build(keras, variant, n_classes)
        assert model.count_params() == CNN_PARAMS + HEAD_PARAMS[n_classes], variant
        cnn = sum(layer.count_params() for layer in model.layers if layer.name.startswith(cnn_circuit.CNN_PREFIX))
        assert cnn == CNN_PARAMS
        assert model.get_layer("head").count_params() == HEAD_PARAMS[n_classes]
        total = CNN_PARAMS + HEAD_PARAMS[n_classes]
        assert training.count_parameters(model) == {"circuit": 0, "classical": total, "total": total}
    assert build(keras, "fixed", n_classes).get_layer("circuit").count_params() == 0
    assert build(keras, "control", n_classes).get_layer("circuit_stand_in").count_params() == 0


def numpy_softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def head_on_closed_form(model, angles):
    """The head written in numpy on the circuit's closed form -sin(2 x0) / 2: (logits, probabilities)."""
    kernel, bias = (np.asarray(v, dtype=np.float64) for v in model.get_layer("head").get_weights())
    logits = (-0.5 * np.sin(2 * angles[:, :1])) @ kernel + bias
    if kernel.shape[1] == 1:  # two classes: softmax([0, z])
        logits = np.concatenate([np.zeros_like(logits), logits], axis=1)
    return logits, numpy_softmax(logits)


@pytest.mark.parametrize("n_classes", [2, 10])
def test_model_output_is_the_head_on_the_closed_form_and_the_split_rebuilds_it(keras, n_classes):
    """probabilities = softmax(head(-sin(2 x0) / 2)), the head in numpy; the shared driver's split at the
    circuit (CNN before it, head after it: what the shot evaluation runs around Aer) gives the same."""
    model = build(keras, "fixed", n_classes, seed=3)
    images = np.random.default_rng(0).random((6, 28, 28, 1)).astype(np.float32)
    probabilities = training.forward(model, images)
    split = training.Split(model)
    angles = split.circuit_inputs(images)
    assert angles.shape == (6, 2) and split.noise is None
    assert probabilities.shape == (6, n_classes)
    np.testing.assert_allclose(probabilities, head_on_closed_form(model, angles)[1], rtol=0, atol=1e-6)
    expectations = split.exact(angles)
    np.testing.assert_allclose(expectations[:, 0], -0.5 * np.sin(2 * angles[:, 0]), atol=1e-6)
    np.testing.assert_allclose(split.head(expectations), probabilities, atol=1e-6)
    assert split.layer.circuit_weights.numpy().shape == (0,)  # what the driver hands Aer as weights


def test_two_class_loss_is_binary_cross_entropy_with_logits(keras):
    """The original's BCEWithLogitsLoss: log(1 + exp(-z)) for label 1, log(1 + exp(z)) for label 0."""
    model = build(keras, "fixed", 2, seed=4)
    images = np.random.default_rng(1).random((8, 28, 28, 1)).astype(np.float32)
    labels = np.arange(8) % 2
    model.compile(loss=cnn_circuit.LOSS)
    loss = model.evaluate(images, cnn_circuit.targets(labels), batch_size=8, verbose=0)
    logits, _ = head_on_closed_form(model, training.Split(model).circuit_inputs(images))
    z = logits[:, 1]
    bce = np.mean(np.where(labels == 1, np.log1p(np.exp(-z)), np.log1p(np.exp(z))))
    assert abs(loss - bce) < 1e-5
    np.testing.assert_array_equal(cnn_circuit.decide(numpy_softmax(logits)), (z > 0).astype(int))


def weights_by_part(model):
    parts = {"cnn": [], "head": []}
    for layer in model.layers:
        part = "cnn" if layer.name.startswith(cnn_circuit.CNN_PREFIX) else "head" if layer.name == "head" else None
        if part:
            parts[part] += [w.copy() for w in layer.get_weights()]
    return parts


def changed(before, after):
    return [not np.array_equal(a, b) for a, b in zip(before, after)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_which_weights_train_under_the_shared_driver_and_its_record_of_it(keras, variant, monkeypatch):
    """As shipped, the CNN keeps its initial weights bit for bit while the head trains (the original's
    input_gradients=False: Keras, unlike PyTorch, says so); fixed and control train every CNN layer. The run's
    metrics record it (weight_change: 0 for every CNN layer as shipped), and the claims table reads it. Small
    widths keep it fast; the mechanism does not depend on them."""
    from qtlmnist.systems import report

    rng = np.random.default_rng(2)
    images, labels = rng.random((32, 28, 28, 1)).astype(np.float32), np.arange(32) % 2
    task = Task(train=(images[:24], labels[:24]), evaluation={"test": (images[24:], labels[24:])}, classes=("3", "5"))
    monkeypatch.setattr(cnn_circuit, "load_task", lambda inputs, values, seed: task)
    values = setting(variant, conv=[4, 8], hidden=8)
    values |= {"epochs": 2, "batch_size": 8, "learning_rate": 1e-2, "shuffle": True, "history_sets": [], "shots": 64}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics, history, _ = training.run(cnn_circuit, {}, values, 1, 1)
    no_gradient = [str(w.message) for w in caught if "Gradients do not exist" in str(w.message)]
    change = {name: v["change_l2"] for name, v in metrics["weight_change"].items()}
    assert [name for name in change if name.startswith(cnn_circuit.CNN_PREFIX)] == CNN_LAYERS
    assert "circuit" not in change and change["head"] > 0  # a layer without weights has nothing to change
    cnn_change = report.part_change(metrics, cnn_circuit.CNN_PREFIX)
    if variant == "as_shipped":
        assert all(change[name] == 0 for name in CNN_LAYERS) and cnn_change == 0
        assert no_gradient and "cnn_conv1/kernel" in no_gradient[0] and "head" not in no_gradient[0]
    else:
        assert all(change[name] > 0 for name in CNN_LAYERS) and cnn_change > 0
        assert not no_gradient
    assert list(history.columns) == ["epoch", "loss"] and len(history) == 2
    assert metrics["class_names"] == ["3", "5"] and metrics["parameters"]["circuit"] == 0
    test = metrics["sets"]["test"]
    assert (test["accuracy_shots"] is None) == (variant == "control")  # the circuit ran on Aer, weightless
    assert test["majority_rate"] == 0.5


def test_seed_stacked_convolutions_equal_each_seeds_own_model(keras, monkeypatch):
    """SeedStack's grouped convolution (training._seed_conv2d: a group's per-seed kernels as one convolution
    with the seeds as channel groups) against each seed's own Keras model run alone: outputs and the gradients
    of every weight, for the fixed CNN (gradients through both convolutions, conv1's via conv2's input
    gradient) and for strided, same-padded and dilated convolutions; the grouped path must actually have run."""
    import tensorflow as tf

    calls = []
    converter = training._seed_conv2d

    def grouped_only(pfor_input, fallback):  # every kernel here is per seed: none may take the while loop
        calls.append(1)
        return converter(pfor_input, lambda _: pytest.fail("a per-seed kernel went to TensorFlow's converter"))

    monkeypatch.setattr(training, "_seed_conv2d", grouped_only)
    # False where TensorFlow has no grouped convolution (oneDNN off): the while loop then, to the same values
    installed = training.install_seed_conv2d()
    assert installed or os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0", "oneDNN is on, yet no grouped convolution"

    def strided(seed):
        inputs = keras.Input((9, 9, 2))
        h = keras.layers.Conv2D(3, 3, strides=2, padding="same", activation="tanh")(inputs)
        h = keras.layers.Conv2D(2, (2, 3), padding="valid", dilation_rate=2)(h)
        model = keras.Model(inputs, keras.layers.Flatten()(h))
        model.set_weights([np.random.default_rng([seed, k]).normal(size=w.shape) for k, w in enumerate(model.weights)])
        return model

    rng = np.random.default_rng(8)
    for models, shape in (
        ([build(keras, "fixed", seed=seed, conv=[4, 8], hidden=8) for seed in (1, 2, 3)], (28, 28, 1)),
        ([strided(seed) for seed in (1, 2, 3)], (9, 9, 2)),
    ):
        calls.clear()
        xs = rng.uniform(0, 1, (len(models), 5, *shape)).astype(models[0].weights[0].dtype)
        stack = training.SeedStack(models)
        with tf.GradientTape() as tape:
            outputs = stack.call(tf.constant(xs), training=False)
            total = tf.reduce_sum(tf.sin(outputs))
        gradients = tape.gradient(total, stack.trainable)
        assert bool(calls) == installed, "the stacked convolution did not go through _seed_conv2d"
        for k, model in enumerate(models):
            with tf.GradientTape() as tape:
                alone = model(xs[k], training=False)
                total = tf.reduce_sum(tf.sin(alone))
            np.testing.assert_allclose(outputs[k], alone, rtol=1e-5, atol=1e-6)
            for stacked, own in zip(gradients, tape.gradient(total, model.trainable_variables)):
                np.testing.assert_allclose(stacked[k], own, rtol=1e-4, atol=1e-5)


def test_the_same_seed_starts_every_variant_from_the_same_weights(keras):
    models = [build(keras, variant, 10, seed=7) for variant in VARIANTS]
    first = weights_by_part(models[0])
    for model in models[1:]:
        other = weights_by_part(model)
        assert not any(changed(first["cnn"] + first["head"], other["cnn"] + other["head"]))
    assert any(changed(first["cnn"], weights_by_part(build(keras, "as_shipped", 10, seed=8))["cnn"]))


@pytest.mark.parametrize("variant", ["fixed", "control"])  # as_shipped has fixed's layers
def test_weights_round_trip_through_weights_h5(keras, variant, tmp_path):
    """What the workflow stores (.weights.h5, architecture in code) rebuilds the same predictions."""
    images = np.random.default_rng(3).random((4, 28, 28, 1)).astype(np.float32)
    model = build(keras, variant, 2, seed=5)
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = build(keras, variant, 2, seed=6)
    assert not np.allclose(fresh.predict(images, verbose=0), model.predict(images, verbose=0))
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(fresh.predict(images, verbose=0), model.predict(images, verbose=0))


def test_layers_start_as_pytorch_defaults(keras):
    """Weights and biases uniform on +-1/sqrt(fan_in), fan_in = in_channels * 3 * 3 or in_features, drawn
    independently (the bias is not a copy of the kernel's first entries)."""
    model = cnn_circuit.build_model(keras, 10, seed=0)
    fan_ins = {"cnn_conv1": 9, "cnn_conv2": 16 * 9, "cnn_hidden": 4608, "cnn_angles": 16, "head": 1}
    for name, fan_in in fan_ins.items():
        kernel, bias = model.get_layer(name).get_weights()
        largest = max(np.abs(kernel).max(), np.abs(bias).max())
        assert 0.5 / np.sqrt(fan_in) < largest <= 1 / np.sqrt(fan_in), name
        assert not np.any(np.isin(bias, kernel)), name


# --- data ----------------------------------------------------------------------------------------------------


def fake_raw():
    """((train images, labels), (test images, labels)) as `common.dataset_raw` returns them: train labels 0..4
    with 50, 30, 20, 60, 40 rows, test labels 0..4 with 10 each; every image's pixels encode (split, row) so
    the tests can trace rows back."""
    train_labels = np.repeat(np.arange(5), [50, 30, 20, 60, 40]).astype(np.uint8)
    test_labels = np.repeat(np.arange(5), 10).astype(np.uint8)
    np.random.default_rng(0).shuffle(train_labels)

    def images(n, offset):
        out = np.zeros((n, 28, 28), dtype=np.uint8)
        out[:, 0, 0] = offset
        out[:, 0, 1] = np.arange(n) % 256
        out[:, 0, 2] = np.arange(n) // 256
        return out

    return (images(len(train_labels), 7), train_labels), (images(len(test_labels), 9), test_labels)


def rows_of(x):
    pixels = np.rint(x[:, 0, :3, 0] * 255).astype(int)
    return pixels[:, 0], pixels[:, 1] + 256 * pixels[:, 2]


def test_select_remaps_labels_and_stratifies():
    train, test = fake_raw()
    x_train, y_train, x_test, y_test = cnn_circuit.select(train, test, (3, 1), n_train=18, n_test=None, seed=0)
    assert x_train.shape == (18, 28, 28, 1) and x_train.dtype == np.float32
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0
    source, rows = rows_of(x_train)
    assert np.all(source == 7)  # train rows come from the train file
    original = train[1][rows]
    np.testing.assert_array_equal(y_train, np.where(original == 3, 0, 1))  # 3 -> 0, 1 -> 1: order of `labels`
    # 60 threes and 30 ones -> 18 rows split 2:1
    assert np.bincount(y_train).tolist() == [12, 6]
    test_source, test_rows = rows_of(x_test)
    assert np.all(test_source == 9) and len(y_test) == 20  # all test rows of both classes
    np.testing.assert_array_equal(y_test, np.where(test[1][test_rows] == 3, 0, 1))
    np.testing.assert_allclose(x_train[:, 0, 1, 0], (rows % 256) / 255, atol=1e-7)


def test_select_is_deterministic_per_seed():
    train, test = fake_raw()
    first = cnn_circuit.select(train, test, range(5), n_train=40, n_test=15, seed=1)
    again = cnn_circuit.select(train, test, range(5), n_train=40, n_test=15, seed=1)
    other = cnn_circuit.select(train, test, range(5), n_train=40, n_test=15, seed=2)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(rows_of(first[0])[1], rows_of(other[0])[1])
    assert np.bincount(first[1]).tolist() == [10, 6, 4, 12, 8]  # 200 rows -> 40: one in five of each class
    assert np.bincount(first[3]).tolist() == [3, 3, 3, 3, 3]


def test_select_refuses_bad_class_lists():
    with pytest.raises(ValueError, match="distinct"):
        cnn_circuit.select(*fake_raw(), (1, 1), n_train=4, n_test=4, seed=0)
    with pytest.raises(ValueError, match="no train images"):
        cnn_circuit.select(*fake_raw(), (7, 8), n_train=4, n_test=4, seed=0)


def test_task_labels_follow_the_datasets_class_names():
    assert cnn_circuit.task_labels({"dataset": "mnist", "classes": ["3", "5"]}) == [3, 5]
    assert cnn_circuit.task_labels({"dataset": "fashion_mnist", "classes": ["Shirt", "T-shirt/top"]}) == [6, 0]
    assert cnn_circuit.task_labels({"dataset": "fashion_mnist", "classes": None}) == list(range(10))


def test_load_task_reads_only_its_datasets_files_and_names_its_classes(monkeypatch):
    """The registry hands every run both datasets' files (<dataset>_<name>); a setting reads its own."""
    from qtlmnist.systems import get

    seen = {}

    def fake_dataset_raw(paths, dataset):
        seen.update(paths=paths, dataset=dataset)
        return fake_raw()

    monkeypatch.setattr(cnn_circuit, "dataset_raw", fake_dataset_raw)
    values = {"dataset": "fashion_mnist", "classes": ["Dress", "Trouser"], "train_images": 30, "test_images": None}
    task = cnn_circuit.load_task(get("cnn_circuit").inputs, values, seed=3)
    assert seen["dataset"] == "fashion_mnist"
    assert set(seen["paths"]) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert all(path.startswith("results/fashion_mnist/raw/") for path in seen["paths"].values())
    assert task.classes == ("Dress", "Trouser") and len(task.train[1]) == 30
    assert len(task.evaluation["test"][1]) == 20 and set(task.evaluation["test"][1]) == {0, 1}
