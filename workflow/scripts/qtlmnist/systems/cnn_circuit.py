"""Seed 002: a small CNN feeding a 2-qubit circuit, then a linear head (zindaouinihed/Hybrid-Quantum-Classifier).

What the original did (seed document 002_1d185a870a7f18ab.txt, an article on the repository; the code is
`hybrid_quantum_classifier.py` there): PyTorch + qiskit-machine-learning, CIFAR-10 cats (3) vs dogs (5), the
first 800 such training images at 32x32x3 in [0, 1];

    CNN:  Conv(16, 3x3) ReLU -> Conv(32, 3x3) ReLU -> MaxPool(2) -> Flatten -> Linear(16) ReLU -> Linear(2)
    QNN:  EstimatorQNN(circuit, observables=Pauli("ZZ"), input_params=[x1, x2]) wrapped in TorchConnector
    head: Linear(1, 1), BCEWithLogitsLoss, Adam(lr 1e-4), batch 16 (shuffled), 30 epochs

and reported only the training loss ("the training loss decreases over epochs"), no test accuracy.

What really trained there. The QNN is given no `weight_params`, so the circuit has no trainable parameter
(TorchConnector registers an empty weight tensor), and `input_gradients` is left at EstimatorQNN's default
False, so its backward returns no input gradient: TorchConnector hands None to the CNN, whose parameters keep
`.grad = None` and are skipped by Adam. The CNN's only path to the loss runs through the circuit, so it stays
at its random initialisation: the whole model trained the head's 2 numbers (a, b), logit = a <ZZ> + b, a
logistic regression on one frozen random feature. (The article speaks of trainable RX/RY/RZ rotations; the
code has none.)

What we changed, and why. CIFAR-10 cannot be fetched here, so the tasks are MNIST and Fashion-MNIST
(28x28x1, the class list a parameter: two classes as in the original, or ten); the CNN's input channels and
the flattened width follow the image shape, nothing else. The model is Keras 3 on the project's circuit
engine (exact statevector: EstimatorQNN's default estimator is exact too, the V1 reference Estimator in
qiskit-machine-learning 0.8 and QMLEstimator's exact mode in 0.9). Three variants, same CNN, same seed -> same initial weights:

    "as_shipped"  input_gradients=False: only the head trains (the original's behaviour)
    "fixed"       input_gradients=True: the CNN is trained through the circuit
    "control"     the circuit replaced by a parameter-free classical stand-in (see `build_control`)

Layers are initialised as PyTorch's defaults (weights and biases uniform on +-1/sqrt(fan_in)), because in
"as_shipped" the frozen random CNN *is* the feature, so its scale is part of the system.
"""

from __future__ import annotations

import numpy as np
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from .. import data

VARIANTS = ("as_shipped", "fixed", "control")
CNN_PREFIX = "cnn_"  # every CNN layer's name starts with it (tests and callers find the CNN by it)


# --- the circuit ---------------------------------------------------------------------------------------------


def circuit() -> tuple[QuantumCircuit, ParameterVector, ParameterVector, list[SparsePauliOp]]:
    """(circuit, inputs x (2), weights w (0), observables [ZZ]): the original's circuit, gate for gate.

        |psi(x)> = CX(1->0) [Ry(x0) (x) Ry(x1)] CZ CX(0->1) [Ry(x0) H (x) Ry(x1) H] |00>,   output <psi| Z Z |psi>

    x0, x1 are the CNN's two outputs (the original's Parameters x1, x2, in input_params order); each is
    encoded twice, and there are no trainable weights (the original passed no weight_params), so `w` is an
    empty ParameterVector. The observable is the original's Pauli("ZZ"), which is also EstimatorQNN's default
    (`SparsePauliOp` "Z" * num_qubits), so either reading of the code gives the same model: one output.

    In closed form the output is -sin(2 x0) / 2, whatever x1 is (tested against Statevector). Heisenberg
    picture: CX(1->0) maps ZZ to Z0; Ry(x0) maps Z0 to cos(x0) Z0 - sin(x0) X0; CZ then CX(0->1) map X0 to
    -Y0 Y1, whose mean is 0 on the product state Ry(x0 + pi/2)|0> (x) Ry(x1 + pi/2)|0> (real amplitudes),
    while <Z0> there is cos(x0 + pi/2) = -sin(x0). So the second CNN output and the second qubit never reach
    the loss, and the output is bounded in [-1/2, 1/2].
    """
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
    return qc, x, w, [SparsePauliOp("ZZ")]


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
):
    """The hybrid: CNN -> circuit (layer "circuit", `engine.CircuitLayer`) -> head -> softmax over n_classes.

    input_gradients=False is the original as shipped (the CNN is never trained; Keras, unlike PyTorch, says
    so on fit: "Gradients do not exist for variables ['cnn_conv1/kernel', ...]"), True the fixed model.
    The output is (batch, n_classes) probabilities; train with sparse categorical cross-entropy.
    """
    from . import engine  # imports TensorFlow: callers seed it first (runtime.seed_tensorflow)

    inputs, angles = _cnn(keras, image_shape, tuple(conv), hidden, seed)
    qc, x, w, observables = circuit()
    layer = engine.CircuitLayer(qc, x, w, observables, seed=seed, input_gradients=input_gradients, name="circuit")
    head = _head(keras, layer(angles), n_classes, seed)
    if not len(w):
        # the circuit has no weights, but CircuitLayer still makes an empty trainable variable, which the
        # optimiser would warn about on every fit ("Gradients do not exist"); it holds nothing to train
        layer.circuit_weights.trainable = False
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


def build_variant(keras, variant: str, n_classes: int, seed: int = 0, **sizes):
    """One of VARIANTS by name; `sizes` (image_shape, conv, hidden) go to the builder."""
    if variant == "control":
        return build_control(keras, n_classes, seed=seed, **sizes)
    if variant in VARIANTS:
        return build_model(keras, n_classes, input_gradients=variant == "fixed", seed=seed, **sizes)
    raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def circuit_angles(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """(N, 2) float64: the angles the CNN feeds to the circuit, for running the circuit on Aer with shots."""
    import keras

    front = keras.Model(model.inputs, model.get_layer("circuit").input)
    return np.asarray(front.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)


def head_probabilities(model, expectations: np.ndarray) -> np.ndarray:
    """(N, n_classes): the head applied to circuit expectation values (exact or estimated from shots)."""
    import keras

    head = model.get_layer("head")
    logits = head(keras.ops.convert_to_tensor(np.asarray(expectations, dtype=np.float32)))
    if head.units == 1:  # two classes: softmax([0, z]), as in `_head`
        logits = keras.ops.concatenate([keras.ops.zeros_like(logits), logits], axis=-1)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))


# --- data ----------------------------------------------------------------------------------------------------


def load_task(
    raw: dict[str, np.ndarray],
    classes: tuple[int, ...] | list[int],
    n_train: int | None = 800,
    n_test: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) for the images of `classes`, from `data.load_raw`'s arrays.

    Images are pixels / 255 as float32, shape (N, 28, 28, 1); labels are remapped to positions in `classes`
    (classes=(3, 5) gives 3 -> 0, 5 -> 1). Train comes from the train file, test from the t10k file, each a
    stratified subset of n_train / n_test rows (None: all rows of those classes), deterministic per seed.
    The original took the first 800 cat/dog images in file order; a stratified draw keeps the classes in
    their file proportions and lets seeds vary the subset. The default n_train is the original's 800.
    """
    classes = [int(c) for c in classes]
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must be at least two distinct labels, got {classes}")
    remap = np.full(256, -1, dtype=np.int64)
    remap[classes] = np.arange(len(classes))
    arrays = []
    for split, size in (("train", n_train), ("t10k", n_test)):
        images, labels = raw[f"{split}-images-idx3-ubyte"], raw[f"{split}-labels-idx1-ubyte"]
        rows = np.flatnonzero(np.isin(labels, classes))
        if len(rows) == 0:
            raise ValueError(f"no {split} images of classes {classes}")
        rows = rows[data.stratified_subset(labels[rows], size, seed)]
        x = data.normalise(images[rows]).reshape(len(rows), *images.shape[1:], 1)
        arrays += [x, remap[labels[rows]].astype(np.int64)]
    return tuple(arrays)


# --- training (to be merged into the framework's shared loop) ------------------------------------------------


def train(
    model,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int = 30,
    batch_size: int = 16,
    learning_rate: float = 1e-4,
    seed: int = 0,
    validation_data=None,
):
    """model.compile + model.fit with the original's budget and optimiser (30 epochs, batch 16 shuffled, Adam
    lr 1e-4: 1500 steps on 800 images) and loss (cross-entropy); returns the Keras History. Seeds the shuffling with `seed`; the caller sets
    threads and determinism once per process with `runtime.seed_tensorflow`."""
    import keras

    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model.fit(
        x, y, epochs=epochs, batch_size=batch_size, shuffle=True, validation_data=validation_data, verbose=0
    )
