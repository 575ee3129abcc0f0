"""The shared training loop and evaluation of every trainable system (one place for both).

`run` is what a rule script calls: the system's task, circuit and model (see `common` for the interface),
trained by `fit` (Keras, Adam, seeded: the rule script calls `runtime.seed_tensorflow` first, so a rerun gives
the same bits), then `evaluate`d on every set of the task three ways:

  as run   the model's own forward pass, as the original evaluated it (with the estimator's Gaussian noise
           when the setting has precision > 0, see `PrecisionNoise`);
  exact    the circuit's exact expectations / probabilities (engine), no noise at all;
  shots    the model split at its CircuitLayer: the classical part before it in TensorFlow, the circuit on Aer
           with the trained weights and the configured shots (`shots.aer_estimates`), expectations or
           probabilities estimated from the counts, then the classical part after it in TensorFlow (every
           set but `train`, whose shots would cost the most and say the least).

A setting with model "sarkar" runs `run_sarkar` instead: this project's own hybrid (the Sarkar pipeline's
circuit-count features, the `classifier` section's network) on the system's task, evaluated the same way.

This module imports TensorFlow and Keras: rule scripts call `runtime.seed_tensorflow` before importing it.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import pandas as pd

from .common import Circuit, Task, accuracy, confusion
from .engine import CircuitLayer
from .shots import aer_estimates

log = logging.getLogger(__name__)

# Adam's epsilon as torch.optim.Adam's (both originals are PyTorch); Keras' default is 1e-7.
ADAM_EPSILON = 1e-8

EVAL_BATCH = 512  # rows per forward pass when evaluating (memory only: results do not depend on it)
# Aer seeds: run seed s, evaluation set i -> s * RUN_SEED_STRIDE + i * SET_SEED_STRIDE; aer_estimates adds
# basis + 2113 * row, below SET_SEED_STRIDE for up to 47,000 rows, so no two (run, set, row) share a seed.
RUN_SEED_STRIDE = 10**10
SET_SEED_STRIDE = 10**8


class PrecisionNoise(keras.layers.Layer):
    """Adds Gaussian noise of standard deviation `precision` to every value, in every forward pass (training
    and inference alike).

    This is what Qiskit's StatevectorEstimator does when it is run with precision > 0 (`rng.normal(evs,
    precision)`), and qiskit-machine-learning's EstimatorQNN runs its forward pass with default_precision =
    1/64. Its parameter-shift gradients run the estimator without precision, i.e. exactly; the noise here is
    additive and independent of the weights, so autodiff gives the same exact gradient. precision = 0 adds
    nothing. The draws come from a seeded Keras SeedGenerator, so a rerun sees the same noise.
    """

    def __init__(self, precision: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not precision >= 0:
            raise ValueError(f"precision = {precision}: the noise's standard deviation must be >= 0 (0 = exact)")
        self.precision = float(precision)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x):
        if self.precision == 0:
            return x
        noise = keras.random.normal(keras.ops.shape(x), stddev=self.precision, dtype=x.dtype, seed=self.seed_generator)
        return x + noise

    def compute_output_shape(self, input_shape):
        return input_shape


# --- the model's parts -----------------------------------------------------------------------------------


class Split:
    """A hybrid model cut at its CircuitLayer: `before` (inputs -> circuit inputs; None when the circuit reads
    the model's inputs directly), the layer, and `after` (circuit outputs -> model outputs, past a
    PrecisionNoise layer that reads the circuit's output, which shots replace)."""

    def __init__(self, model):
        circuits = [layer for layer in model.layers if isinstance(layer, CircuitLayer)]
        if len(circuits) != 1:
            raise ValueError(f"a quantum model must hold exactly one CircuitLayer, {model.name} has {len(circuits)}")
        self.layer = layer = circuits[0]
        noise = [n for n in model.layers if isinstance(n, PrecisionNoise) and n.input is layer.output]
        last = noise[0] if noise else layer
        self.noise = noise[0] if noise else None
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self.before = None if layer.input is model.inputs[0] else keras.Model(inputs, layer.input)
        self.after = keras.Model(last.output, model.outputs)

    def circuit_inputs(self, x: np.ndarray) -> np.ndarray:
        if self.before is None:
            return np.asarray(x, dtype=np.float64)
        return forward(self.before, x).astype(np.float64)

    def exact(self, circuit_inputs: np.ndarray) -> np.ndarray:
        return forward(self.layer, circuit_inputs)

    def head(self, circuit_outputs: np.ndarray) -> np.ndarray:
        values = circuit_outputs.astype(self.layer.compute_dtype)
        return forward(self.after, values)


def forward(model, x: np.ndarray) -> np.ndarray:
    """The model's outputs in eager chunks of EVAL_BATCH rows: unlike `predict`, no tf.function is traced
    again for every new set size (tracing an 11-qubit circuit's graph costs seconds)."""
    chunks = [np.asarray(model(x[i : i + EVAL_BATCH], training=False)) for i in range(0, len(x), EVAL_BATCH)]
    return np.concatenate(chunks)


def layer_weights(model) -> dict[str, list[np.ndarray]]:
    """Every layer's weights (trainable or not) as float64 copies, by layer name; layers without any left out."""
    weights = {layer.name: [np.array(w, dtype=np.float64) for w in layer.get_weights()] for layer in model.layers}
    return {name: arrays for name, arrays in weights.items() if sum(a.size for a in arrays)}


def weight_change(before: dict[str, list[np.ndarray]], after: dict[str, list[np.ndarray]]) -> dict[str, dict]:
    """Per layer: the L2 norm of its initial weights and of their change (all its arrays as one vector), so a
    layer that training never moved (no gradient reached it) reads change_l2 = 0 exactly."""

    def norm(arrays):
        return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))

    return {
        name: {"initial_l2": norm(before[name]), "change_l2": norm([b - a for a, b in zip(before[name], after[name])])}
        for name in before
    }


def count_parameters(model) -> dict[str, int]:
    """Trainable parameters: in the circuit, in the classical layers, in all."""
    total = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    circuit = int(sum(layer.circuit_weights.shape[0] for layer in model.layers if isinstance(layer, CircuitLayer)))
    return {"circuit": circuit, "classical": total - circuit, "total": total}


# --- training --------------------------------------------------------------------------------------------


class _EpochAccuracy(keras.callbacks.Callback):
    """After each epoch: the mean training loss and the as-run accuracy on every evaluation set."""

    def __init__(self, system, sets: dict):
        super().__init__()
        self.system, self.sets, self.rows = system, sets, []

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, "loss": float(logs["loss"])}
        for name, (x, y) in self.sets.items():
            row[f"{name}_accuracy"] = accuracy(y, self.system.decide(forward(self.model, x)))
        log.info("epoch %s", row)
        self.rows.append(row)


def fit(system, model, task: Task, values: dict) -> pd.DataFrame:
    """Adam on the system's loss, `epochs` passes of `batch_size` over the training set (in file order when
    `shuffle` is false, as a loop over the rows; else reshuffled each epoch by Keras' seeded generator).
    Returns the history: epoch, loss (mean over the epoch's batches), {set}_accuracy (as run) for each set of
    `history_sets` the task has (a forward pass over each per epoch: list only the affordable ones)."""
    model.compile(optimizer=keras.optimizers.Adam(values["learning_rate"], epsilon=ADAM_EPSILON), loss=system.LOSS)
    x, y = task.train
    tracked = {name: data for name, data in task.sets().items() if name in values["history_sets"]}
    history = _EpochAccuracy(system, tracked)
    model.fit(
        x,
        system.targets(y),
        batch_size=values["batch_size"],
        epochs=values["epochs"],
        shuffle=values["shuffle"],
        callbacks=[history],
        verbose=2,
    )
    return pd.DataFrame(history.rows)


# --- evaluation ------------------------------------------------------------------------------------------


def evaluate(system, model, task: Task, circuit: Circuit | None, shots: int, seed: int, threads: int) -> dict:
    """Per evaluation set: n, majority_rate (chance: the share of its most frequent class), accuracy (as run),
    accuracy_exact and accuracy_shots (None for a classical control), and the confusion counts of each."""
    n_classes = len(task.class_names(system))
    split = Split(model) if circuit is not None else None
    if split is not None and split.layer.engine.circuit is not circuit.circuit:
        raise ValueError("the model's CircuitLayer must be built from the circuit object passed to evaluate")
    noisy = split is not None and split.noise is not None and split.noise.precision > 0
    results, seconds = {}, {"exact": 0.0, "shots": 0.0}
    for index, (name, (x, labels)) in enumerate(task.sets().items()):
        as_run = system.decide(forward(model, x))
        results[name] = result = {"n": len(labels), "accuracy": accuracy(labels, as_run)}
        # chance: the accuracy of always answering the set's most frequent class
        result["majority_rate"] = float(np.bincount(labels, minlength=n_classes).max() / len(labels))
        result |= {"confusion": confusion(labels, as_run, n_classes), "accuracy_exact": result["accuracy"]}
        result |= {"accuracy_shots": None, "confusion_shots": None}
        if split is None:
            continue
        start = time.perf_counter()
        angles = split.circuit_inputs(x)
        if noisy:  # else the model's own pass is already exact
            result["accuracy_exact"] = accuracy(labels, system.decide(split.head(split.exact(angles))))
        seconds["exact"] += time.perf_counter() - start
        if name == "train":  # as run and exact only: its shots would cost the most and say the least
            continue
        start = time.perf_counter()
        probabilities, expectations = aer_estimates(
            circuit.circuit,
            circuit.inputs,
            circuit.weights,
            angles,
            split.layer.circuit_weights.numpy(),
            circuit.observables,
            shots=shots,
            seed=seed * RUN_SEED_STRIDE + index * SET_SEED_STRIDE,
            threads=threads,
        )
        by_shots = system.decide(split.head(probabilities if circuit.output == "probabilities" else expectations))
        seconds["shots"] += time.perf_counter() - start
        result["accuracy_shots"] = accuracy(labels, by_shots)
        result["confusion_shots"] = confusion(labels, by_shots, n_classes)
        log.info("%s: %s", name, {k: v for k, v in result.items() if not k.startswith("confusion")})
    return {"sets": results, "seconds": seconds}


def run(system, inputs: dict, values: dict, seed: int, threads: int):
    """Train and evaluate one (system, setting, seed): (metrics dict, history DataFrame, trained model).

    `values` are the setting's merged config values; the driver reads model, epochs, batch_size,
    learning_rate, shuffle and shots, the system the rest (model "sarkar": `run_sarkar`).
    """
    quantum = values["model"] == "quantum"
    task = system.load_task(inputs, values, seed)
    train = run_sarkar if values["model"] == "sarkar" else train_and_evaluate
    model, history, evaluation = train(system, task, values, seed, threads)
    for name, result in evaluation["sets"].items():
        column = f"{name}_accuracy"
        if column not in history:
            continue
        best = int(history[column].to_numpy().argmax())
        result["best_epoch"] = int(history["epoch"].iloc[best])
        result["best_epoch_accuracy"] = float(history[column].iloc[best])
    metrics = {
        "model": values["model"],
        "seed": seed,
        "class_names": list(task.class_names(system)),
        "parameters": count_parameters(model),
        "shots": values["shots"] if values["model"] in ("quantum", "sarkar") else None,
        "precision": float(values.get("precision", 0.0)) if quantum else None,
        "train_rows": len(task.train[1]),
        "final_loss": float(history["loss"].iloc[-1]),
        **evaluation,
    }
    return metrics, history, model


def train_and_evaluate(system, task: Task, values: dict, seed: int, threads: int):
    """The system's circuit model (model "quantum") or its classical control: built, `fit` and `evaluate`d;
    (model, history, evaluation). The circuit is compiled (and an unsupported gate refused) when the model is
    built, before any training."""
    circuit = system.circuit(values) if values["model"] == "quantum" else None
    model = system.build(keras, values, seed, circuit)
    rows = len(task.train[1])
    log.info("model %s: %s parameters; %d training rows", values["model"], count_parameters(model), rows)
    initial = layer_weights(model)
    start = time.perf_counter()
    history = fit(system, model, task, values)
    fit_seconds = time.perf_counter() - start
    changes = weight_change(initial, layer_weights(model))
    log.info("weights: L2 norms of the initial weights and of their change in training, per layer: %s", changes)
    start = time.perf_counter()
    evaluation = evaluate(system, model, task, circuit, values["shots"], seed, threads)
    evaluation["seconds"] |= {"fit": fit_seconds, "evaluate": time.perf_counter() - start}
    # Per layer, how far training moved its weights: a layer no gradient reached reads 0.
    evaluation["weight_change"] = changes
    return model, history, evaluation


def run_sarkar(system, task: Task, values: dict, seed: int, threads: int):
    """This project's hybrid on the system's task: the classifier of the `classifier` section (values
    "classifier", with a softmax over the task's classes) trained on the task's circuit-count features, its
    learning-rate schedule watching the task's `val` set; seeded by the run's seed. (model, history, evaluation)
    as `run` has them. Its features were counted with `values["shots"]` shots per image in the Sarkar pipeline,
    so its accuracy as run is a shots accuracy (accuracy_shots); there is no exact one (accuracy_exact None).
    """
    from .. import classifier

    if "val" not in task.evaluation:
        raise ValueError("a sarkar setting's task needs a `val` set for the classifier's learning-rate schedule")
    n_classes = len(task.class_names(system))
    rows, features = task.train[0].shape
    log.info("model sarkar: %d training rows, %d features, %d classes", rows, features, n_classes)
    start = time.perf_counter()
    model, history = classifier.train_configured(
        keras, task.train, task.evaluation["val"], values["classifier"], seed, n_classes=n_classes
    )
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    evaluation = evaluate(system, model, task, None, values["shots"], seed, threads)
    for result in evaluation["sets"].values():
        result |= {"accuracy_exact": None, "accuracy_shots": result["accuracy"], "confusion_shots": result["confusion"]}
    evaluation["seconds"] |= {"fit": fit_seconds, "evaluate": time.perf_counter() - start}
    return model, history, evaluation
