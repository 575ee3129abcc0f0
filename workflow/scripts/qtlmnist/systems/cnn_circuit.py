"""System 002: a small CNN feeding a 2-qubit circuit, then a linear head (zindaouinihed/Hybrid-Quantum-Classifier).

What the original did (seed document 002_1d185a870a7f18ab.txt, an article on the repository; the code is
`hybrid_quantum_classifier.py` there): PyTorch + qiskit-machine-learning, CIFAR-10 cats (3) vs dogs (5), the
first 800 such training images at 32x32x3 in [0, 1];

    CNN:  Conv(16, 3x3) ReLU -> Conv(32, 3x3) ReLU -> MaxPool(2) -> Flatten -> Linear(16) ReLU -> Linear(2)
    QNN:  EstimatorQNN(circuit, observables=Pauli("ZZ"), input_params=[x1, x2]) wrapped in TorchConnector
    head: Linear(1, 1), BCEWithLogitsLoss, Adam(lr 1e-4), batch 16 (shuffled), 30 epochs

and reported only the training loss ("the training loss decreases over epochs"), no test accuracy.

    circuit   |psi(x)> = CX(1->0) [Ry(x0) (x) Ry(x1)] CZ CX(0->1) [Ry(x0) H (x) Ry(x1) H] |00>,
              output <psi| Z Z |psi> = -sin(2 x0) / 2 (no weights; x1 has no effect)

What really trained there. The QNN is given no `weight_params`, so the circuit has no trainable parameter
(TorchConnector registers an empty weight tensor), and `input_gradients` is left at EstimatorQNN's default
False, so its backward returns no input gradient: TorchConnector hands None to the CNN, whose parameters keep
`.grad = None` and are skipped by Adam. The CNN's only path to the loss runs through the circuit, so it stays
at its random initialisation: the whole model trained the head's 2 numbers (a, b), logit = a <ZZ> + b, a
logistic regression on one frozen random feature. (The article speaks of trainable RX/RY/RZ rotations; the
code has none.)

What we changed, and why. CIFAR-10 cannot be fetched here, so the tasks are MNIST and Fashion-MNIST
(28x28x1; the article names both as the project's test sets), the class list a setting's value: two classes as
in the original, or ten. The CNN's input channels and flattened width follow the image shape, nothing else.
The model is Keras 3 on the project's circuit engine (exact statevector: EstimatorQNN's default estimator is
exact too, the V1 reference Estimator in qiskit-machine-learning 0.8 and QMLEstimator's exact mode in 0.9),
trained by the shared loop (`training.fit`). A setting picks one of three models, with the same seed the same
initial CNN and head:

    model quantum, input_gradients false   the original as shipped: only the head trains
    model quantum, input_gradients true    "fixed": the CNN is trained through the circuit
    model control                          the circuit replaced by a parameter-free classical stand-in
                                           (see `build_control`)

Entanglement removed (config `entanglement`, qtlmnist.systems.separable): "separable" drops the CX, CZ and
CX, leaving the product state Ry(2 x0) H|0> (x) Ry(2 x1) H|0> and the output sin(2 x0) sin(2 x1) (tested). The
encoding (H, Ry) is a product already, so there is no "product" variant.

Layers are initialised as PyTorch's defaults (weights and biases uniform on +-1/sqrt(fan_in)), because as
shipped the frozen random CNN *is* the feature, so its scale is part of the system; and the two-class head is
the original's Linear(1, 1) on BCE-with-logits, written as a softmax over [0, z] (see `_head`).
"""

from __future__ import annotations

import numpy as np

from .. import data
from .common import CLASS_COUNTS, Circuit, Claim, Pair, System, Task, dataset_raw, raw_files, unknown_classes

# Every task names its own classes (Task.classes): they follow the setting's `dataset` and `classes`.
CLASS_NAMES = ()
CNN_PREFIX = "cnn_"  # every CNN layer's name starts with it (its weight change is a claim; tests find it by it)
# Softmax probabilities over the task's classes against class indices; for two classes exactly the
# original's BCEWithLogitsLoss on its one logit (see `_head`).
LOSS = "sparse_categorical_crossentropy"

CODE, ARTICLE, OURS = "code; seed 002", "article; seed 002", "this replication"
LEARNS = "The hybrid learns to classify (the source reports only that the training loss decreases)"
FIXED_LEARNS = "Fixed (input_gradients=True): the hybrid learns to classify"
CONTROL = "Classical control: same CNN and head, x0 passed through"


def _learns(claim: str, source: str, setting: str) -> Claim:
    """Its test accuracy lies above chance (the share of the test set's most frequent class)."""
    return Claim(claim, source, None, setting, "test", compare="above_chance")


def _cnn_trains(claim: str, source: str, setting: str) -> Claim:
    """Training moves the CNN's weights (their change above 0% of their initial L2 norm)."""
    return Claim(claim, source, 0.0, setting, "train", "weight_change", "above", CNN_PREFIX)


CLAIMS = (
    # MNIST 3 vs 5: the original's label indices (CIFAR-10 3 = cat, 5 = dog) and a confusable digit pair
    _learns(LEARNS, CODE, "mnist_3v5_as_shipped"),
    _cnn_trains("The CNN is trained through the circuit (article: backpropagation)", ARTICLE, "mnist_3v5_as_shipped"),
    _cnn_trains("Fixed (input_gradients=True): the CNN is trained through the circuit", OURS, "mnist_3v5_fixed"),
    _learns(FIXED_LEARNS, OURS, "mnist_3v5_fixed"),
    _learns("Fixed, Adam lr 1e-3 (sensitivity)", OURS, "mnist_3v5_fixed_lr1e_3"),
    Claim(CONTROL, OURS, None, "mnist_3v5_control", "test"),
    # Fashion-MNIST T-shirt/top vs Shirt: its most confused pair, as cats vs dogs is CIFAR-10's
    _learns(LEARNS, CODE, "fashion_shirts_as_shipped"),
    _learns(FIXED_LEARNS, OURS, "fashion_shirts_fixed"),
    _learns("Fixed, Adam lr 1e-3 (sensitivity)", OURS, "fashion_shirts_fixed_lr1e_3"),
    Claim(CONTROL, OURS, None, "fashion_shirts_control", "test"),
    # ten classes: one number passes the circuit (and the control's stand-in) to the head
    _learns(LEARNS, CODE, "mnist_all_as_shipped"),
    _learns(FIXED_LEARNS, OURS, "mnist_all_fixed"),
    Claim(CONTROL, OURS, None, "mnist_all_control", "test"),
    _learns(LEARNS, CODE, "fashion_all_as_shipped"),
    _learns(FIXED_LEARNS, OURS, "fashion_all_fixed"),
    Claim(CONTROL, OURS, None, "fashion_all_control", "test"),
)


def check(values: dict) -> list[str]:
    """The classes are the dataset's, and the files hold as many images of them as the setting asks for."""
    dataset, classes = values["dataset"], values["classes"]
    names = data.DATASETS[dataset].class_names
    if unknown := unknown_classes(dataset, classes):
        return [f"classes = {classes}: {unknown} are not {dataset} class names (allowed: {', '.join(names)})"]
    labels = range(len(names)) if classes is None else [names.index(name) for name in classes]
    problems = []
    for key, split in (("train_images", "train"), ("test_images", "test")):
        available = sum(CLASS_COUNTS[dataset][split][label] for label in labels)
        if values[key] is not None and values[key] > available:
            problems.append(
                f"{key} = {values[key]}: the {dataset} {split} file holds {available} images of classes "
                f"{classes or 'all'} (allowed: <= {available}, or null for all)"
            )
    return problems


SYSTEM = System(
    seed_document="002",
    title="zindaouinihed/Hybrid-Quantum-Classifier: CNN -> weightless 2-qubit circuit -> Linear(1, k)",
    # a setting reads one of the two datasets (its `dataset`); the names say which
    inputs={f"{dataset}_{name}": path for dataset in data.DATASETS for name, path in raw_files(dataset).items()},
    check=check,
    # its CNN's convolutions dominate a run and cost about twice as much per step in float64 on CPU (measured,
    # 10 seeds of mnist_3v5 fixed: 23 vs 12 CPU ms per seed and step); the original trained in float32
    floatx="float32",
    pairs=tuple(
        Pair(f"{task}_{variant}", f"{task}_control")
        for task, variants in (
            ("mnist_3v5", ("as_shipped", "fixed", "fixed_lr1e_3")),
            ("fashion_shirts", ("as_shipped", "fixed", "fixed_lr1e_3")),
            ("mnist_all", ("as_shipped", "fixed")),
            ("fashion_all", ("as_shipped", "fixed")),
        )
        for variant in variants
    ),
)


# --- the circuit ---------------------------------------------------------------------------------------------


def circuit(values: dict | None = None) -> Circuit:
    """Inputs x (2), no weights, observable ZZ: the original's circuit, gate for gate.

        |psi(x)> = CX(1->0) [Ry(x0) (x) Ry(x1)] CZ CX(0->1) [Ry(x0) H (x) Ry(x1) H] |00>,   output <psi| Z Z |psi>

    x0, x1 are the CNN's two outputs (the original's Parameters x1, x2, in input_params order); each is
    encoded twice, and there are no trainable weights (the original passed no weight_params), so the weights
    are an empty ParameterVector. The observable is the original's Pauli("ZZ"), which is also EstimatorQNN's
    default (`SparsePauliOp` "Z" * num_qubits), so either reading of the code gives the same model: one output.

    In closed form the output is -sin(2 x0) / 2, whatever x1 is (tested against Statevector). Heisenberg
    picture: CX(1->0) maps ZZ to Z0; Ry(x0) maps Z0 to cos(x0) Z0 - sin(x0) X0; CZ then CX(0->1) map X0 to
    -Y0 Y1, whose mean is 0 on the product state Ry(x0 + pi/2)|0> (x) Ry(x1 + pi/2)|0> (real amplitudes),
    while <Z0> there is cos(x0 + pi/2) = -sin(x0). So the second CNN output and the second qubit never reach
    the loss, and the output is bounded in [-1/2, 1/2].
    """
    from qiskit.circuit import ParameterVector, QuantumCircuit
    from qiskit.quantum_info import SparsePauliOp

    x = ParameterVector("x", 2)
    w = ParameterVector("w", 0)
    qc = QuantumCircuit(2, name="zindaouinihed")
    qc.h(0)
    qc.h(1)
    qc.ry(x[0], 0)  # encoding
    qc.ry(x[1], 1)
    qc.cx(0, 1)  # "entanglement"
    qc.cz(0, 1)
    qc.ry(x[0], 0)  # "second quantum layer": the same inputs again, not new weights
    qc.ry(x[1], 1)
    qc.cx(1, 0)  # "stronger entanglement"
    # the encoding: H and Ry(x) (instructions 0-3), Ry(x) again (6-7); the CX, CZ, CX are its fixed layers
    return Circuit(qc, tuple(x), tuple(w), "expectations", (SparsePauliOp("ZZ"),), ((0, 4), (6, 8)))


# --- models --------------------------------------------------------------------------------------------------


def _torch_uniform(keras, fan_in: int, seed: int, layer: int) -> dict:
    """PyTorch's default Conv/Linear initialisers, uniform on +-1/sqrt(fan_in) for weight and bias, as Keras
    layer arguments. Kernel and bias get their own seeds: a seeded Keras initialiser draws the same stream
    for any shape, so one initialiser for both would make the bias a copy of the kernel's first entries."""
    bound = 1.0 / np.sqrt(fan_in)
    return {
        "kernel_initializer": keras.initializers.RandomUniform(-bound, bound, seed=seed * 1000 + 2 * layer),
        "bias_initializer": keras.initializers.RandomUniform(-bound, bound, seed=seed * 1000 + 2 * layer + 1),
    }


def _cnn(keras, image_shape: tuple[int, int, int], conv: tuple[int, ...], hidden: int, seed: int):
    """(input, 2 angles): Conv(c, 3x3) ReLU for each c in conv -> MaxPool(2) -> Flatten -> Dense(hidden)
    ReLU -> Dense(2), the original's CNN with conv=(16, 32), hidden=16."""
    inputs = keras.Input(image_shape, name="image")
    h, channels = inputs, image_shape[-1]
    for k, filters in enumerate(conv, start=1):
        init = _torch_uniform(keras, channels * 3 * 3, seed, layer=k)
        h = keras.layers.Conv2D(filters, 3, activation="relu", name=f"{CNN_PREFIX}conv{k}", **init)(h)
        channels = filters
    h = keras.layers.MaxPooling2D(2, name=f"{CNN_PREFIX}pool")(h)
    h = keras.layers.Flatten(name=f"{CNN_PREFIX}flatten")(h)
    for name, units, activation, fan_in, layer in (
        ("hidden", hidden, "relu", h.shape[-1], 101),
        ("angles", 2, None, hidden, 102),
    ):
        init = _torch_uniform(keras, fan_in, seed, layer)
        h = keras.layers.Dense(units, activation=activation, name=f"{CNN_PREFIX}{name}", **init)(h)
    return inputs, h


def _first_angle(angles):
    return angles[:, :1]


def _head(keras, features, n_classes: int, seed: int):
    """Dense from the circuit's 1 output to the logits, then class probabilities.

    Two classes: one logit z (the original's Linear(1, 1)) and probabilities softmax([0, z]) = [1 - s(z), s(z)],
    so sparse categorical cross-entropy on them is exactly the original's BCEWithLogitsLoss, with its 2 head
    parameters, while every task shares one output format (probabilities over n_classes, argmax predicts).
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    init = _torch_uniform(keras, features.shape[-1], seed, layer=201)
    n_logits = 1 if n_classes == 2 else n_classes
    logits = keras.layers.Dense(n_logits, name="head", **init)(features)
    if n_classes == 2:
        logits = keras.layers.Concatenate(name="logits")([keras.ops.zeros_like(logits), logits])
    return keras.layers.Softmax(name="softmax")(logits)


def build_model(
    keras,
    n_classes: int,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    conv: tuple[int, ...] = (16, 32),
    hidden: int = 16,
    input_gradients: bool = False,
    seed: int = 0,
    spec: Circuit | None = None,
):
    """The hybrid: CNN -> circuit (layer "circuit", `engine.CircuitLayer` of `spec`, default `circuit()`) ->
    head -> softmax over n_classes.

    input_gradients=False is the original as shipped (the CNN is never trained; Keras, unlike PyTorch, says
    so on fit: "Gradients do not exist for variables ['cnn_conv1/kernel', ...]"), True the fixed model. The
    circuit has no weights, so its layer trains nothing itself (its empty variable is not trainable).
    """
    from .engine import CircuitLayer  # imports TensorFlow: callers seed it first (runtime.seed_tensorflow)

    spec = circuit() if spec is None else spec
    inputs, angles = _cnn(keras, image_shape, tuple(conv), hidden, seed)
    options = {"seed": seed, "input_gradients": input_gradients, "name": "circuit"}
    layer = CircuitLayer(spec.circuit, spec.inputs, spec.weights, spec.observables, **options)
    head = _head(keras, layer(angles), n_classes, seed)
    name = "cnn_circuit_fixed" if input_gradients else "cnn_circuit_as_shipped"
    return keras.Model(inputs, head, name=name)


def build_control(
    keras,
    n_classes: int,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    conv: tuple[int, ...] = (16, 32),
    hidden: int = 16,
    seed: int = 0,
):
    """The classical control: the same CNN and head, the circuit replaced by a classical stand-in with the same
    number of trainable parameters (the circuit has none, so neither has the stand-in) and the same widths
    (2 -> 1). The stand-in passes the first angle x0 through unchanged: the circuit's output is the function
    -sin(2 x0) / 2 of x0 alone, so the control keeps exactly the information the circuit lets through and
    removes only the circuit's bounded, periodic squashing. Trained end to end (no gradient is stopped).
    Parameter count = CNN + head, equal to `build_model`'s for the same arguments.
    """
    inputs, angles = _cnn(keras, image_shape, tuple(conv), hidden, seed)
    stand_in = keras.layers.Lambda(_first_angle, output_shape=(1,), name="circuit_stand_in")(angles)
    return keras.Model(inputs, _head(keras, stand_in, n_classes, seed), name="cnn_control")


def task_labels(values: dict) -> list[int]:
    """The dataset labels of the setting's classes, in task order (classes null: all of the dataset's)."""
    names = data.DATASETS[values["dataset"]].class_names
    return list(range(len(names))) if values["classes"] is None else [names.index(c) for c in values["classes"]]


def build(keras, values: dict, seed: int, spec: Circuit | None):
    """The setting's model: values["model"] "quantum" (`build_model`, with its `input_gradients`) or "control"
    (`build_control`), for the setting's dataset's image shape and number of classes, CNN widths `conv` and
    `hidden`."""
    sizes = {
        "image_shape": (*data.DATASETS[values["dataset"]].image_shape, 1),
        "conv": tuple(values["conv"]),
        "hidden": values["hidden"],
    }
    n_classes = len(task_labels(values))
    if values["model"] == "control":
        return build_control(keras, n_classes, seed=seed, **sizes)
    return build_model(keras, n_classes, input_gradients=values["input_gradients"], seed=seed, spec=spec, **sizes)


def targets(labels: np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=np.int32)


def decide(outputs: np.ndarray) -> np.ndarray:
    """The most probable class (two classes: class 1 when the head's logit z > 0)."""
    return np.asarray(outputs).argmax(axis=1)


# --- data ----------------------------------------------------------------------------------------------------


def select(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    labels: tuple[int, ...] | list[int],
    n_train: int | None = 800,
    n_test: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) for the images of `labels`, from the (uint8 images, labels) of the
    raw training and test files (`common.dataset_raw`).

    Images are pixels / 255 as float32, shape (N, 28, 28, 1); labels are remapped to positions in `labels`
    (labels=(3, 5) gives 3 -> 0, 5 -> 1). Train comes from the train file, test from the test file, each a
    stratified subset of n_train / n_test rows (None: all rows of those classes), deterministic per seed.
    The original took the first 800 cat/dog images in file order; a stratified draw keeps the classes in
    their file proportions and lets seeds vary the subset. The default n_train is the original's 800.
    """
    labels = [int(c) for c in labels]
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise ValueError(f"classes must be at least two distinct labels, got {labels}")
    remap = np.full(256, -1, dtype=np.int64)
    remap[labels] = np.arange(len(labels))
    arrays = []
    for split, (images, file_labels), size in (("train", train, n_train), ("test", test, n_test)):
        rows = np.flatnonzero(np.isin(file_labels, labels))
        if len(rows) == 0:
            raise ValueError(f"no {split} images of classes {labels}")
        rows = rows[data.stratified_subset(file_labels[rows], size, seed)]
        x = data.normalise(images[rows]).reshape(len(rows), *images.shape[1:], 1)
        arrays += [x, remap[file_labels[rows]].astype(np.int64)]
    return tuple(arrays)


def load_task(inputs, values: dict, seed: int) -> Task:
    """The setting's `dataset` and `classes`: `train_images` training images drawn (stratified) with the run's
    seed; tested on `test_images` of the test file (null: every test image of those classes, the same for
    every seed). `inputs` holds both datasets' raw files, named <dataset>_<file> (the registry's entry)."""
    dataset = values["dataset"]
    prefix = f"{dataset}_"
    paths = {name.removeprefix(prefix): path for name, path in dict(inputs).items() if name.startswith(prefix)}
    train, test = dataset_raw(paths, dataset)
    chosen = task_labels(values)
    x, y, x_test, y_test = select(train, test, chosen, values["train_images"], values["test_images"], seed)
    names = data.DATASETS[dataset].class_names
    return Task(train=(x, y), evaluation={"test": (x_test, y_test)}, classes=tuple(names[c] for c in chosen))
