"""The shared training loop and evaluation of every trainable system (one place for both).

`run_setting` is what a rule script calls: every seed of one setting, in groups of the setting's `group_size`
(default: all in one); `run_group` gives each seed of a group the system's task, circuit and model (see
`common` for the interface), the group's seeds trained together by `fit_group` (one compiled step for the whole
group, Adam, seeded: the rule script calls `runtime.seed_tensorflow` first, so a rerun gives the same bits, and
each seed trains exactly as it would alone), then each `evaluate`d on every set of its task three ways:

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

import functools
import logging
import time
import warnings

import keras
import numpy as np
import pandas as pd

from .common import Circuit, Task, accuracy, confusion
from .engine import CircuitLayer, compile_step
from .separable import setting_circuit
from .shots import aer_estimates

log = logging.getLogger(__name__)

# Adam's epsilon as torch.optim.Adam's (both originals are PyTorch); Keras' default is 1e-7.
ADAM_EPSILON = 1e-8

# The systems' classical layers compute in float64 (a system may declare float32: System.floatx), like the
# circuit (complex128): seeds vectorised over a
# leading axis (SeedStack) then train as each would alone to 1e-9 (in float32 a batched matmul and a plain one
# differ in the last bits, and chaotic trainings, e.g. 000's encoder feeding ZZ phases, amplify that within a
# few steps), and runs depend far less on the CPU's code path (AVX2 vs AVX-512). The sources trained in
# float32; precision changes no model.
FLOATX = "float64"
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


def _seed_conv2d(pfor_input, fallback):
    """`tf.vectorized_map`'s conversion of a Conv2D whose kernel differs per seed (SeedStack's stacked
    kernels): one grouped convolution with the seeds as channel groups, input (S, B, H, W, C) -> (B, H, W, S*C),
    kernel (S, kh, kw, C, F) -> (kh, kw, C, S*F), so output channels s*F..s*F+F-1 see only seed s's input
    channels, then back to (S, B, H', W', F). TensorFlow's own converter takes only a kernel shared by every
    iteration; a per-seed kernel otherwise falls back to a while loop, one small convolution per seed (002's
    10-seed training: 11.1 CPU s as a loop, 6.4 grouped over 100 steps; docs/performance.md). A shared
    kernel, or a layout other than NHWC, goes to TensorFlow's converter as before."""
    import tensorflow as tf
    from tensorflow.python.ops.parallel_for import pfor

    if not pfor_input.inputs[1].is_stacked or pfor_input.get_attr("data_format") not in (b"NHWC", "NHWC"):
        return fallback(pfor_input)
    pfor_input.stack_inputs()
    x, kernel = pfor_input.stacked_input(0), pfor_input.stacked_input(1)
    n = pfor_input.pfor.loop_len_vector[0]
    xs, ks = tf.shape(x), tf.shape(kernel)
    grouped = tf.raw_ops.Conv2D(
        input=tf.reshape(tf.transpose(x, [1, 2, 3, 0, 4]), tf.stack([xs[1], xs[2], xs[3], n * xs[4]])),
        filter=tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), tf.stack([ks[1], ks[2], ks[3], n * ks[4]])),
        strides=pfor_input.get_attr("strides"),
        padding=pfor_input.get_attr("padding"),
        explicit_paddings=pfor_input.get_attr("explicit_paddings"),
        data_format="NHWC",
        dilations=pfor_input.get_attr("dilations"),
        use_cudnn_on_gpu=pfor_input.get_attr("use_cudnn_on_gpu"),
    )
    gs = tf.shape(grouped)
    out = tf.transpose(tf.reshape(grouped, tf.stack([gs[0], gs[1], gs[2], n, ks[4]])), [3, 0, 1, 2, 4])
    return [pfor.wrap(out, True)]


@functools.cache  # one probe and one registration per process
def install_seed_conv2d() -> bool:
    """Registers `_seed_conv2d` as vectorized_map's Conv2D conversion (once per process; it hands every case
    it does not handle to the converter it replaces). TensorFlow keeps this registry in a private module, and
    only its oneDNN CPU kernels (the default on x86) have grouped convolutions: where either is missing, the
    while-loop fallback stays (slower, same results) and one line says so."""
    import tensorflow as tf

    try:
        from tensorflow.python.ops.parallel_for import pfor

        registry = pfor._pfor_converter_registry
        previous = registry["Conv2D"]
    except (ImportError, AttributeError, KeyError) as error:
        log.warning("per-seed Conv2D kernels run as a while loop (TensorFlow's pfor registry: %s)", error)
        return False
    if getattr(previous, "seed_conv2d", False):
        return True
    try:  # a grouped convolution and its gradients: oneDNN's CPU kernels have them, TensorFlow's plain ones not
        x, kernel = tf.ones([1, 3, 3, 2]), tf.ones([2, 2, 1, 4])
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.nn.conv2d(x, kernel, 1, "VALID")
        tape.gradient(y, [x, kernel])
    except (tf.errors.OpError, ValueError) as error:
        log.warning("per-seed Conv2D kernels run as a while loop (no grouped convolution here: %s)", error)
        return False

    def converter(pfor_input):
        return _seed_conv2d(pfor_input, previous)

    converter.seed_conv2d = True
    registry["Conv2D"] = converter
    return True


class SeedStack:
    """The models of a group's seeds as one: every weight (trainable or not) of the seeds' models, which share
    one architecture, stacked along a new leading seed axis, and the template model's forward pass vectorised
    over that axis (`tf.vectorized_map` of Keras' `stateless_call`), so one graph op serves every seed where a
    group of separate models would run each op once per seed. `unstack` writes each seed's slice back into its
    own model (for evaluation and saving)."""

    def __init__(self, models: list):
        import tensorflow as tf

        self.models, self.template = models, models[0]
        install_seed_conv2d()

        def stacked(name, trainable):
            columns = zip(*(getattr(model, name) for model in models))
            return [tf.Variable(np.stack([np.asarray(v) for v in column]), trainable=trainable) for column in columns]

        self.trainable = stacked("trainable_variables", True)
        self.fixed = stacked("non_trainable_variables", False)

    def call(self, xs, training: bool):
        """Outputs (seeds, batch, ...) of every seed's model on its own inputs xs[s]; with `training`, the
        non-trainable state each call advances (e.g. PrecisionNoise's generator) is written back."""
        import tensorflow as tf

        def one(args):
            trainable, fixed, x = args
            return self.template.stateless_call(list(trainable), list(fixed), x, training=training)

        outputs, state = tf.vectorized_map(one, (self.trainable, self.fixed, xs), fallback_to_while_loop=True)
        if training:
            for variable, value in zip(self.fixed, state):
                variable.assign(value)
        return outputs

    def unstack(self) -> None:
        for k, model in enumerate(self.models):
            for variable, stacked in zip(
                model.trainable_variables + model.non_trainable_variables, self.trainable + self.fixed
            ):
                variable.assign(stacked[k])


def _batches(n_rows: int, batch_size: int, shuffle: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's row indices, batch by batch: in file order, or a fresh permutation from the seed's own
    generator (so each seed of a group draws its own shuffles)."""
    order = rng.permutation(n_rows) if shuffle else np.arange(n_rows)
    return [order[i : i + batch_size] for i in range(0, n_rows, batch_size)]


def fit_group(system, models: list, tasks: list[Task], values: dict, seeds: list[int]) -> list[pd.DataFrame]:
    """Train one model per seed as one: every weight gets a leading seed axis (`SeedStack`), one compiled step
    runs all seeds' forward passes on each seed's own batch, and one Adam updates the stacked weights.

    Seed s's loss depends only on its slice of the weights, so the gradient of the summed loss with respect
    to that slice is seed s's own gradient (the sum's derivative is 1), and Adam is elementwise with a step
    count that all seeds share because they step together: every seed trains as it would alone (tested
    against a group of one, and against Keras' `fit`). The gain is per-step overhead, one op for all seeds,
    which dominates small circuits at small batches (001 trains at batch 1).

    `epochs` passes of `batch_size` over each seed's training set (in file order when `shuffle` is false; else
    reshuffled each epoch from the seed's own generator). Returns one history per seed: epoch, loss (the mean
    of the epoch's batch losses, weighted by batch size, as Keras reports it), {set}_accuracy (as run) for
    each set of `history_sets` the task has. The models hold their trained weights when it returns.
    """
    import tensorflow as tf

    rows = {len(task.train[1]) for task in tasks}
    if len(rows) != 1:
        raise ValueError(f"the seeds of one group must train on the same number of rows, got {sorted(rows)}")
    n_rows = rows.pop()
    loss_function = keras.losses.get(system.LOSS)
    stack = SeedStack(models)
    optimizer = keras.optimizers.Adam(values["learning_rate"], epsilon=ADAM_EPSILON)
    optimizer.build(stack.trainable)
    x = np.stack([task.train[0] for task in tasks])
    y = np.stack([system.targets(task.train[1]) for task in tasks])

    def step(xs, ys):
        with tf.GradientTape() as tape:
            outputs = stack.call(xs, training=True)
            losses = tf.stack(
                [tf.reduce_mean(loss_function(t, o)) for t, o in zip(tf.unstack(ys), tf.unstack(outputs))]
            )
            total = tf.reduce_sum(losses)
        gradients = tape.gradient(total, stack.trainable)
        # A layer whose gradient is cut (002 as shipped: the CNN) is left as it is, and said, as Keras' fit does
        # (once, when the step is traced: which gradients exist is fixed by the graph).
        names = [v.path for v in stack.template.trainable_variables]
        if missing := [name for name, g in zip(names, gradients) if g is None]:
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the loss", stacklevel=1)
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, stack.trainable) if g is not None])
        return losses

    @tf.function
    def predict(xs):
        return stack.call(xs, training=False)

    steps_per_epoch = -(-n_rows // values["batch_size"])
    # XLA where the setting asks for it (`jit`: its compile pays on long runs), else a plain graph; an XLA
    # failure falls back to the graph with one logged line (engine.compile_step)
    step = compile_step(step, values.get("jit", False), values["epochs"] * steps_per_epoch)
    tracked = [name for name in tasks[0].sets() if name in values["history_sets"]]
    # each tracked set of every seed stacked once, not every epoch: (seeds, rows, ...) and the seeds' labels
    tracked_x = {name: np.stack([task.sets()[name][0] for task in tasks]) for name in tracked}
    tracked_y = {name: [task.sets()[name][1] for task in tasks] for name in tracked}
    generators = [np.random.default_rng(seed) for seed in seeds]
    seed_index = np.arange(len(seeds))[:, None]
    histories = [[] for _ in seeds]
    for epoch in range(values["epochs"]):
        totals = np.zeros(len(seeds))
        for batches in zip(*(_batches(n_rows, values["batch_size"], values["shuffle"], g) for g in generators)):
            picked = np.stack(batches)
            totals += step(x[seed_index, picked], y[seed_index, picked]).numpy() * picked.shape[1]
        accuracies = {}
        for name in tracked:
            stacked = tracked_x[name]
            outputs = np.concatenate(
                [predict(stacked[:, i : i + EVAL_BATCH]).numpy() for i in range(0, stacked.shape[1], EVAL_BATCH)],
                axis=1,
            )
            accuracies[name] = [accuracy(y, system.decide(out)) for y, out in zip(tracked_y[name], outputs)]
        for k, seed in enumerate(seeds):
            row = {"epoch": epoch + 1, "loss": float(totals[k] / n_rows)}
            row |= {f"{name}_accuracy": accuracies[name][k] for name in tracked}
            log.info("seed %d epoch %s", seed, row)
            histories[k].append(row)
    stack.unstack()
    return [pd.DataFrame(rows) for rows in histories]


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
        # per image, so that paired tests (McNemar, a quantum model against its control) need no rerun
        result |= {"labels": np.asarray(labels).tolist(), "predictions": as_run.tolist(), "predictions_shots": None}
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
        reads_probabilities = circuit.output == "probabilities"  # else only the qubits the observables read
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
            probabilities=reads_probabilities,
        )
        by_shots = system.decide(split.head(probabilities if reads_probabilities else expectations))
        seconds["shots"] += time.perf_counter() - start
        result["accuracy_shots"] = accuracy(labels, by_shots)
        result["confusion_shots"] = confusion(labels, by_shots, n_classes)
        result["predictions_shots"] = by_shots.tolist()
        log.info("%s: %s", name, {k: v for k, v in result.items() if not k.startswith("confusion")})
    return {"sets": results, "seconds": seconds}


def run_group(system, inputs: dict, values: dict, seeds: list[int], threads: int) -> list[tuple]:
    """Train and evaluate one (system, setting) over `seeds`, all seeds as one group (`fit_group`): one
    (metrics dict, history DataFrame, trained model) per seed, in `seeds` order.

    `values` are the setting's merged config values; the driver reads model, epochs, batch_size,
    learning_rate, shuffle and shots, the system the rest (model "sarkar": `run_sarkar`, whose classifiers
    train as one stacked group or seed by seed by the setting's `sarkar_loop`).
    """
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat in one group: {seeds}")
    tasks = [system.load_task(inputs, values, seed) for seed in seeds]
    if values["model"] == "sarkar":
        trained = run_sarkar(system, tasks, values, seeds, threads)
    else:
        trained = train_and_evaluate(system, tasks, values, seeds, threads)
    return [_metrics(system, values, seed, task, *result) for seed, task, result in zip(seeds, tasks, trained)]


def run_setting(system, inputs: dict, values: dict, seeds: list[int], threads: int) -> list[tuple]:
    """What a setting's job runs: its `seeds` in groups of `group_size` (null or absent: all in one group), each
    group by `run_group`, one after another; one (metrics, history, model) per seed, in `seeds` order.

    A group is always one setting's seeds with one `values`: seeds that differ in anything else cannot share a
    group (the config has no per-seed values). The grouping is part of the config because a group's seed and
    the same seed alone may differ in the last bits over a long, chaotic training (tests/test_systems.py)."""
    size = values.get("group_size") or len(seeds)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat in one setting: {seeds}")
    return [
        result
        for start in range(0, len(seeds), size)
        for result in run_group(system, inputs, values, seeds[start : start + size], threads)
    ]


def run(system, inputs: dict, values: dict, seed: int, threads: int):
    """One seed alone (a group of one): (metrics dict, history DataFrame, trained model)."""
    return run_group(system, inputs, values, [seed], threads)[0]


def _metrics(system, values: dict, seed: int, task: Task, model, history: pd.DataFrame, evaluation: dict):
    quantum = values["model"] == "quantum"
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
        "entanglement": values.get("entanglement", "entangled") if quantum else None,  # the circuit variant
        "train_rows": len(task.train[1]),
        "final_loss": float(history["loss"].iloc[-1]),
        **evaluation,
    }
    return metrics, history, model


def build_models(system, values: dict, seeds: list[int], circuit: Circuit | None) -> list:
    """One model per seed, in the system's floatx (FLOATX unless its System says otherwise), each built right
    after seeding Keras with its seed (so its initial weights are those of a run of that seed alone, wherever
    it stands in the group)."""
    entry = getattr(system, "SYSTEM", None)
    # the dtype policy, not floatx: Keras fixes its global policy from floatx once, when it is first read
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(entry.floatx if entry is not None else FLOATX)
    try:
        models = []
        for seed in seeds:
            keras.utils.set_random_seed(seed)
            models.append(system.build(keras, values, seed, circuit))
        return models
    finally:
        keras.config.set_dtype_policy(policy)


def setting_models(system, values: dict, seeds: list[int]) -> tuple[Circuit | None, list]:
    """(the setting's circuit, one model per seed): the circuit is `separable.setting_circuit` (the system's, or
    its separable or product version by values["entanglement"]) for model "quantum", None for a control; the one
    object built into every model of the group and, in a run, sent to Aer. Every training path builds here
    (the systems' runs, the study's search, curves and retrain)."""
    circuit = setting_circuit(system, values) if values["model"] == "quantum" else None
    return circuit, build_models(system, values, seeds, circuit)


def train_and_evaluate(system, tasks: list[Task], values: dict, seeds: list[int], threads: int) -> list[tuple]:
    """The system's circuit model (model "quantum") or its classical control, one per seed: built
    (`build_models`), trained together by `fit_group` and `evaluate`d seed by seed; [(model, history,
    evaluation)] in seed order. The circuit is the setting's (`separable.setting_circuit`: the system's circuit,
    or its separable or product version by the setting's `entanglement`), the one object built into the model
    and sent to Aer; it is compiled (and an unsupported gate refused) when the first model is built, before
    any training."""
    circuit, models = setting_models(system, values, seeds)
    rows = len(tasks[0].train[1])
    log.info("model %s: %s parameters; %d training rows", values["model"], count_parameters(models[0]), rows)
    initial = [layer_weights(model) for model in models]
    start = time.perf_counter()
    histories = fit_group(system, models, tasks, values, seeds)
    fit_seconds = (time.perf_counter() - start) / len(seeds)  # the group's time, shared out per seed
    results = []
    for seed, task, model, history, before in zip(seeds, tasks, models, histories, initial):
        changes = weight_change(before, layer_weights(model))
        log.info("seed %d weights: L2 norms of the initial weights and of their change, per layer: %s", seed, changes)
        start = time.perf_counter()
        evaluation = evaluate(system, model, task, circuit, values["shots"], seed, threads)
        evaluation["seconds"] |= {"fit": fit_seconds, "evaluate": time.perf_counter() - start}
        # Per layer, how far training moved its weights: a layer no gradient reached reads 0.
        evaluation["weight_change"] = changes
        results.append((model, history, evaluation))
    return results


def run_sarkar(system, tasks: list[Task], values: dict, seeds: list[int], threads: int) -> list[tuple]:
    """This project's hybrid on the system's task, per seed: the classifier of the `classifier` section (values
    "classifier", with a softmax over the task's classes) trained on the task's circuit-count features, its
    learning-rate schedule watching the task's `val` set; seeded by the run's seed. [(model, history,
    evaluation)] as `train_and_evaluate` has them. values["sarkar_loop"]: "grouped" trains the group's classifiers
    as one stacked graph (`classifier.train_group`: the same initial weights, batch orders and schedule per seed,
    its own dropout draws), "keras" one Keras fit per seed. Its features were counted with `values["shots"]`
    shots per image in the Sarkar pipeline, so its accuracy as run is a shots accuracy (accuracy_shots); there
    is no exact one (accuracy_exact None).
    """
    from .. import classifier

    if any("val" not in task.evaluation for task in tasks):
        raise ValueError("a sarkar setting's task needs a `val` set for the classifier's learning-rate schedule")
    n_classes = len(tasks[0].class_names(system))
    rows, features = tasks[0].train[0].shape
    loop = values.get("sarkar_loop", "keras")  # systems.sarkar_loop; absent = keras (setting_values)
    if loop not in ("keras", "grouped"):
        raise ValueError(f"sarkar_loop = {loop!r}: one of keras, grouped (systems.sarkar_loop)")
    log.info("model sarkar: %d training rows, %d features, %d classes; %s loop", rows, features, n_classes, loop)
    if loop == "grouped":
        start = time.perf_counter()
        fitted = classifier.train_group(
            keras,
            [t.train for t in tasks],
            [t.evaluation["val"] for t in tasks],
            values["classifier"],
            seeds,
            n_classes,
        )
        fit_seconds = [(time.perf_counter() - start) / len(seeds)] * len(seeds)  # the group's time, shared out
    else:
        fitted, fit_seconds = [], []
        for seed, task in zip(seeds, tasks):
            start = time.perf_counter()
            keras.utils.set_random_seed(seed)
            fitted.append(
                classifier.train_configured(
                    keras, task.train, task.evaluation["val"], values["classifier"], seed, n_classes=n_classes
                )
            )
            fit_seconds.append(time.perf_counter() - start)
    results = []
    for seed, task, (model, history), seconds in zip(seeds, tasks, fitted, fit_seconds):
        start = time.perf_counter()
        evaluation = evaluate(system, model, task, None, values["shots"], seed, threads)
        for result in evaluation["sets"].values():
            result |= {
                "accuracy_exact": None,
                "accuracy_shots": result["accuracy"],
                "confusion_shots": result["confusion"],
            }
        evaluation["seconds"] |= {"fit": seconds, "evaluate": time.perf_counter() - start}
        results.append((model, history, evaluation))
    return results
