"""`make bench`, second part: how fast each trainable system trains with our simulator, against the routes the
seed code used, on the same circuit, batch, initial parameters, loss and optimiser, in one run.

Routes (one fresh process each, every library on `--threads` threads, 1 by default as `systems.threads`):
  ours         the system's Keras model with its `engine.CircuitLayer` (TensorFlow statevector, autodiff),
               trained by `model.fit` as `training.fit` trains it (without the per-epoch evaluation);
  ours_graph   the same model trained by one step (forward, loss, gradient, Adam) through
               `engine.compile_step(jit=False)`: a plain tf.function, as a custom training loop runs it;
  ours_xla     the same step through `engine.compile_step(jit=True)`: XLA;
  qml_shift    qiskit-machine-learning: `EstimatorQNN` (`SamplerQNN` with parity for 000) built from the same
               QuantumCircuit object, its exact primitives (default_precision 0, shots None) and its default
               parameter-shift gradients, through `TorchConnector` in a torch model with the same classical
               layers (the seed code's route);
  pl_shift     PennyLane `default.qubit`, torch interface, diff_method="parameter-shift", on the same circuit
               converted gate by gate (`pennylane_circuit`);
  pl_backprop  the same QNode with diff_method="backprop";
  pl_jax       PennyLane default.qubit with the JAX interface (backprop), the QNode vmapped over the batch and
               the whole training step (model, loss, gradient, Adam) under one `jax.jit` (XLA);
  tc_jax       tensorcircuit-ng on its JAX backend, the circuit built natively gate by gate
               (`tensorcircuit_circuit`; its `from_qiskit` fails on Qiskit 2's parameter expressions), vmapped,
               the training step under one `jax.jit` as pl_jax.
The JAX routes run the system's classical layers and loss in JAX (`_jax_model`), float64 (jax_enable_x64).
002 (cnn_circuit) is benchmarked as `cnn_circuit_proxy`: the CNN's last Dense layer, the circuit and the head.

Inputs are random (throughput does not depend on their values; no data set is needed): angles for 001, pixels
for 000, loading angles of random non-negative latents for 004. Before timing, each route (1) evaluates its
circuit on `CHECK_ROWS` random inputs and weights, which must equal qiskit's `Statevector` to `CIRCUIT_TOL`
(else it is not timed), and (2) computes the loss gradient w.r.t. every trained parameter on the system's first
batch from the same initial parameters (those of the system's own seeded Keras model), compared with ours in
float64 (Keras model built with floatx float64; torch in float64; qml through the same QNN's forward and
backward without TorchConnector's cast to torch.float, whose float32 gradient is reported beside it).

Timing: one warm-up step (tracing, XLA's compile where a route compiles, first-call costs; reported as
first_step_s, wall and CPU), then steps of the system's batch over `timed_samples` rows until they are done or
the route has run `--cap` seconds of wall time (stopping after the step that crosses it). samples/s is samples
over wall seconds, and over CPU seconds of the route's process (time.process_time); seconds per epoch = the
system's training rows per epoch / samples/s. A typical run of the setting = the first step + its other steps
(`Case.steps`) at the timed seconds per step: extrapolated from the timed steps, not run. Ours against the
fastest peer: the faster of our routes against the fastest other route by that total, on wall and CPU clocks.

Timings are reported, never asserted: they depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import importlib
import multiprocessing
import operator
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROUTES = (
    "ours", "ours_graph", "ours_xla", "qml_shift", "pl_shift", "pl_backprop", "pl_jax", "tc_jax",
    "ours_group", "pl_jax_group", "tc_jax_group",
)  # fmt: skip
REFERENCE = "ours"
OURS = ("ours", "ours_graph", "ours_xla", "ours_group")  # our engine's paths; every other route is a peer
# a setting's seeds trained as one (ours: `training.SeedStack`, as `fit_group` trains; the JAX peers: the same
# jitted step vmapped over a leading seed axis): compared only with each other
GROUP_ROUTES = ("ours_group", "pl_jax_group", "tc_jax_group")
ROUTE_TITLES = {
    "ours": "engine.CircuitLayer in Keras (autodiff), model.fit",
    "ours_graph": "engine.CircuitLayer in Keras (autodiff), one step by engine.compile_step(jit=False)",
    "ours_xla": "engine.CircuitLayer in Keras (autodiff), one step by engine.compile_step(jit=True): XLA",
    "qml_shift": "qiskit-machine-learning QNN + TorchConnector (parameter shift)",
    "pl_shift": "PennyLane default.qubit, torch (parameter shift)",
    "pl_backprop": "PennyLane default.qubit, torch (backprop)",
    "pl_jax": "PennyLane default.qubit, JAX (backprop, jax.jit + vmap)",
    "tc_jax": "tensorcircuit-ng, JAX backend (jax.jit + vmap; XLA)",
    "ours_group": "the setting's seeds as one model (training.SeedStack, float64), one step by compile_step(jit=False)",
    "pl_jax_group": "pl_jax's step vmapped over the setting's seeds (one jax.jit)",
    "tc_jax_group": "tc_jax's step vmapped over the setting's seeds (one jax.jit)",
}
JAX_ROUTES = ("pl_jax", "tc_jax", "pl_jax_group", "tc_jax_group")
TRAINED_INPUTS = ("quantum_mnist", "cnn_circuit")  # layers before the circuit are trained through it
CHECK_ROWS = 4  # random circuit inputs on which every route's circuit must equal Statevector
CIRCUIT_TOL = 1e-10
GRADIENT_TOL = 1e-8
CAP_S = 60.0


# --- the systems as benchmarked --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One system's training shape: its module, the config values of the setting it trains with (empty for a
    system that is not registered yet), its batch, rows per epoch, epochs, learning rate, and how many rows to
    time (several epochs' worth where one epoch is short)."""

    system: str  # module in qtlmnist.systems
    seed_document: str
    setting: str | None
    batch: int
    epoch_samples: int
    epochs: int
    learning_rate: float
    timed_samples: int
    values: dict = field(default_factory=dict, compare=False)
    seeds: int = 1  # the setting's seeds, trained together by the group routes

    @property
    def steps(self) -> int:
        """Training steps of a run of the setting: epochs x batches per epoch (the last one may be partial)."""
        return self.epochs * -(-self.epoch_samples // self.batch)


def cases(config: dict) -> dict[str, Case]:
    """The benchmarked systems, shaped as they train: 001 and 000 from their config settings (001's `exact`:
    the as-published 80 rows, batch 1, 30 epochs, without the estimator noise, so gradients compare), 004 from
    its `posted_4` setting (the post's batch 8, one epoch of the 4-label task), 002 from `mnist_3v5_fixed` (batch
    16, the circuit's input gradients on) as `cnn_circuit_proxy`: its CNN is classical work the peers would
    rebuild layer by layer, so the benchmark keeps only the CNN's last layer in front of the circuit."""
    from qtlmnist import systems
    from qtlmnist.systems import reuploading

    p7 = systems.setting_values(config, "paradoxical7_qnn", "exact")
    qm = systems.setting_values(config, "quantum_mnist", "hybrid")
    rp = systems.setting_values(config, "reuploading", "posted_4")
    cc = systems.setting_values(config, "cnn_circuit", "mnist_3v5_fixed")
    seeds = {
        name: len(systems.setting_seeds(config, name, setting))
        for name, setting in (("paradoxical7_qnn", "exact"), ("quantum_mnist", "hybrid"),
                              ("reuploading", "posted_4"), ("cnn_circuit", "mnist_3v5_fixed"))
    }  # fmt: skip
    # 004 trains on every Fashion-MNIST training image of its task's classes
    rp_rows = sum(systems.CLASS_COUNTS["fashion_mnist"]["train"][i] for i in reuploading.class_indices(rp["classes"]))
    return {
        "paradoxical7_qnn": Case(
            "paradoxical7_qnn", "001", "exact", p7["batch_size"], p7["train_images"], p7["epochs"],
            p7["learning_rate"], timed_samples=3 * p7["train_images"], values=p7, seeds=seeds["paradoxical7_qnn"],
        ),
        "quantum_mnist": Case(
            "quantum_mnist", "000", "hybrid", qm["batch_size"], qm["train_images"], qm["epochs"],
            qm["learning_rate"], timed_samples=40 * qm["batch_size"], values=qm, seeds=seeds["quantum_mnist"],
        ),
        "reuploading": Case(
            "reuploading", "004", "posted_4", rp["batch_size"], rp_rows, rp["epochs"], rp["learning_rate"],
            timed_samples=80 * rp["batch_size"], values=rp, seeds=seeds["reuploading"],
        ),
        "cnn_circuit": Case(
            "cnn_circuit", "002", "mnist_3v5_fixed", cc["batch_size"], cc["train_images"], cc["epochs"],
            cc["learning_rate"], timed_samples=60 * cc["batch_size"], values=cc, seeds=seeds["cnn_circuit"],
        ),
    }  # fmt: skip


def _module(case: Case):
    return importlib.import_module(f"qtlmnist.systems.{case.system}")


def circuit_spec(case: Case):
    """The system's one circuit, a `common.Circuit`."""
    return _module(case).circuit(case.values)


def parity(case: Case) -> np.ndarray | None:
    """(2**n, 2) parity matrix applied to 000's outcome probabilities; None for systems read out by <Z>."""
    return _module(case).parity_matrix() if case.system == "quantum_mnist" else None


def _n_classes(case: Case) -> int:
    classes = case.values.get("classes") if case.system in ("reuploading", "cnn_circuit") else None
    return len(classes) if classes else len(_module(case).CLASS_NAMES)


def training_data(case: Case, spec, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, class indices) for `rows` rows: random, in each system's input domain."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, _n_classes(case), rows)
    if case.system == "quantum_mnist":
        return rng.random((rows, 784)).astype(np.float32), labels
    if case.system == "cnn_circuit":  # the CNN's hidden ReLU features
        return np.maximum(rng.normal(size=(rows, case.values["hidden"])), 0.0).astype(np.float32), labels
    if case.system == "reuploading":
        latents = np.maximum(rng.normal(size=(rows, 2**spec.circuit.num_qubits)), 0.0)  # ReLU-like
        return _module(case).loading_angles(latents), labels
    return rng.uniform(0.0, np.pi / 2, (rows, len(spec.inputs))).astype(np.float32), labels


def targets(case: Case, labels: np.ndarray) -> np.ndarray:
    """What the system's loss compares its output with (004: the class index)."""
    return _module(case).targets(labels)


# --- reference circuit outputs (qiskit only) -------------------------------------------------------------


def statevector_outputs(spec, x: np.ndarray, w: np.ndarray, parity_matrix: np.ndarray | None = None) -> np.ndarray:
    """(rows, outputs) from qiskit's Statevector of the bound circuit: expectations of the observables, or
    outcome probabilities (index sum_q b_q 2**q), times the parity matrix when one is given."""
    from qiskit.quantum_info import Statevector

    unitary = spec.circuit.remove_final_measurements(inplace=False)
    rows = []
    for values in np.atleast_2d(x):
        binding = dict(zip(spec.inputs, map(float, values))) | dict(zip(spec.weights, map(float, w)))
        state = Statevector(unitary.assign_parameters(binding))
        if spec.output == "probabilities":
            rows.append(state.probabilities())
        else:
            rows.append([state.expectation_value(o).real for o in spec.observables])
    out = np.asarray(rows, dtype=np.float64)
    return out @ parity_matrix if parity_matrix is not None else out


# --- comparison and table (pure) -------------------------------------------------------------------------


def gradient_difference(reference: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> float:
    """max |reference - other| over every parameter; both map the same parameter names to same-shaped arrays."""
    if set(reference) != set(other):
        raise ValueError(f"the gradients name different parameters: {sorted(reference)} vs {sorted(other)}")
    differences = []
    for name, value in reference.items():
        a, b = np.asarray(value, dtype=np.float64), np.asarray(other[name], dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(f"gradient of {name}: shape {a.shape} vs {b.shape}")
        differences.append(np.max(np.abs(a - b), initial=0.0))
    return float(max(differences, default=0.0))


def summarise(case: Case, routes: dict[str, dict]) -> dict[str, dict]:
    """Per route: rates, seconds per epoch and per training, speed-ups of ours over it (wall and CPU), the
    largest gradient difference to ours, and a typical run's wall time: the first step (tracing, compiling and
    one step: compile_s) plus the setting's other steps at the timed seconds per step (step_s). A route's dict
    holds samples, seconds, cpu_seconds, first_step_s and gradients (or an error); derived numbers are None
    where a route did not run."""
    reference = routes.get(REFERENCE, {})
    summary = {}
    for name, run in routes.items():
        row = {k: run.get(k) for k in ("samples", "seconds", "cpu_seconds", "first_step_s", "capped", "error")}
        row["first_step_cpu_s"] = run.get("first_step_cpu_s")
        row |= {k: run.get(k) for k in ("circuit_max_abs_diff", "grad_max_abs_diff_float32")}
        timed = bool(run.get("samples")) and bool(run.get("seconds"))
        row["samples_per_s"] = run["samples"] / run["seconds"] if timed else None
        row["samples_per_cpu_s"] = run["samples"] / run["cpu_seconds"] if timed and run.get("cpu_seconds") else None
        for clock, key in (("", "samples_per_s"), ("_cpu", "samples_per_cpu_s")):
            rate = row[key]
            row[f"s_per_epoch{clock}"] = case.epoch_samples / rate if rate else None
            row[f"s_per_training{clock}"] = case.epochs * case.epoch_samples / rate if rate else None
        steps = run.get("steps") or -(-run.get("samples", 0) // case.batch)  # a group's step serves every seed
        row["step_s"] = run["seconds"] / steps if timed else None
        row["step_cpu_s"] = run["cpu_seconds"] / steps if timed else None
        row["compile_s"] = run.get("first_step_s") if timed else None
        row["typical_run_s"] = row["compile_s"] + (case.steps - 1) * row["step_s"] if timed else None
        cpu_timed = timed and row["first_step_cpu_s"] is not None
        row["typical_run_cpu_s"] = row["first_step_cpu_s"] + (case.steps - 1) * row["step_cpu_s"] if cpu_timed else None
        summary[name] = row
    for name, row in summary.items():
        for clock, key in (("", "samples_per_s"), ("_cpu", "samples_per_cpu_s")):
            ours = summary.get(REFERENCE, {}).get(key)
            row[f"speedup_of_ours{clock}"] = ours / row[key] if ours and row[key] else None
        grads = routes[name].get("gradients")
        has_reference = bool(reference.get("gradients"))
        row["grad_max_abs"] = (
            max((float(np.max(np.abs(g), initial=0.0)) for g in grads.values()), default=None) if grads else None
        )
        row["grad_max_abs_diff"] = (
            gradient_difference(reference["gradients"], grads) if grads and has_reference else None
        )
    return summary


def versus_fastest_peer(summary: dict[str, dict], clock: str = "", group: bool = False) -> dict:
    """Ours (the faster of our routes by a typical run's time) against the fastest peer: their totals and
    peer / ours (>= 1: ours is at least as fast). clock "" is wall time, "_cpu" the route's CPU time (what
    counts on a loaded machine, where wall time also holds the waits for a core). group: among the routes that
    train the setting's seeds together (a typical run of all its seeds), else among the others (one seed).
    None where either side did not run."""
    key = f"typical_run{clock}_s"
    summary = {name: row for name, row in summary.items() if (name in GROUP_ROUTES) == group}

    def fastest(names):
        timed = [(summary[n][key], n) for n in names if summary[n].get(key) is not None]
        return min(timed) if timed else (None, None)

    ours_s, ours = fastest([n for n in summary if n in OURS])
    peer_s, peer = fastest([n for n in summary if n not in OURS])
    ratio = peer_s / ours_s if ours_s and peer_s else None
    return {"ours": ours, "ours_s": ours_s, "fastest_peer": peer, "peer_s": peer_s, "peer_over_ours": ratio}


def peers_table(results: dict[str, dict]) -> str:
    """Markdown table of ours against the fastest peer per system (`results`: system -> its entry in
    systems.json): a typical run's total, compilation included, one seed and the setting's seeds together, on
    CPU time (what load does not stretch) and wall time; the wall comparison names its routes where they are
    not the CPU one's. peer / ours >= 1: ours is at least as fast."""
    from qtlmnist.report import markdown_table

    def routes(versus: dict) -> tuple:
        return versus["ours"], versus["fastest_peer"]

    rows = []
    for system, entry in results.items():
        for group in (False, True):
            clock = "_group" if group else ""
            cpu, wall = entry.get(f"versus_fastest_peer{clock}_cpu"), entry.get(f"versus_fastest_peer{clock}")
            if cpu is None or routes(cpu) == (None, None):
                continue  # those routes were not run
            wall_cell = _ratio(wall["peer_over_ours"] if wall else None)
            if wall and wall["peer_over_ours"] is not None and routes(wall) != routes(cpu):
                wall_cell += f" ({wall['ours']} vs {wall['fastest_peer']})"
            rows.append(
                [
                    "" if group else f"{entry['seed_document']} {system} ({entry['batch']}, {entry['steps']:,})",
                    f"{entry['seeds']} seeds together" if group else "one seed",
                    "-" if cpu["ours"] is None else f"{cpu['ours']} {_number(cpu['ours_s'])}",
                    "-" if cpu["fastest_peer"] is None else f"{cpu['fastest_peer']} {_number(cpu['peer_s'])}",
                    _ratio(cpu["peer_over_ours"]),
                    wall_cell,
                ]
            )
    columns = ["system (batch, steps of a run)", "run", "ours: route, CPU s", "fastest peer: route, CPU s"]
    return markdown_table([*columns, "peer / ours (CPU)", "peer / ours (wall)"], rows)


def _ratio(value) -> str:
    return "-" if value is None else f"**{value:.2f}**" if value >= 1 else f"{value:.2f}"


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def notes(row: dict) -> str:
    """What a reader must know about a row: an error, a cap, the TorchConnector float32 gradient."""
    parts = []
    if row.get("error"):
        parts.append(f"not timed: {row['error']}")
    if row.get("capped"):
        parts.append(f"capped: {row['samples']} rows in {row['seconds']:.0f} s")
    if row.get("grad_max_abs_diff_float32") is not None:
        parts.append(f"TorchConnector's float32 gradient: {row['grad_max_abs_diff_float32']:.1e}")
    return "; ".join(parts)


def table(results: dict[str, dict]) -> str:
    """Markdown table of every system's routes (`results`: system -> its entry in systems.json)."""
    header = (
        "| system | route | batch | rows timed | samples/s (wall) | samples/s (CPU) | s/epoch (CPU) "
        "| ours is x faster (wall) | ours is x faster (CPU) | max abs grad diff vs ours | first step s (compile) "
        "| ms/step (wall) | ms/step (CPU) | typical run s (wall) | typical run s (CPU) | note |"
    )
    lines = [header, "|" + "---|" * 16]
    for system, entry in results.items():
        for route, row in entry["routes"].items():
            cells = [
                f"{entry['seed_document']} {system}",
                route,
                str(entry["batch"]),
                str(row["samples"] or 0),
                _number(row["samples_per_s"]),
                _number(row["samples_per_cpu_s"]),
                _number(row["s_per_epoch_cpu"]),
                _number(row["speedup_of_ours"]),
                _number(row["speedup_of_ours_cpu"]),
                "-" if row["grad_max_abs_diff"] is None else f"{row['grad_max_abs_diff']:.1e}",
                _number(row["compile_s"]),
                _number(None if row["step_s"] is None else 1e3 * row["step_s"]),
                _number(None if row["step_cpu_s"] is None else 1e3 * row["step_cpu_s"]),
                _number(row["typical_run_s"]),
                _number(row["typical_run_cpu_s"]),
                notes(row),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- PennyLane: the same circuit, gate by gate -----------------------------------------------------------

# Qiskit gate -> PennyLane operation with the same matrix (p is PhaseShift; rz is exp(-i theta Z / 2) in both)
PENNYLANE_GATES = {
    "h": "Hadamard", "x": "PauliX", "y": "PauliY", "z": "PauliZ", "s": "S", "t": "T", "sx": "SX",
    "rx": "RX", "ry": "RY", "rz": "RZ", "p": "PhaseShift",
    "cx": "CNOT", "cy": "CY", "cz": "CZ", "swap": "SWAP", "crx": "CRX", "cry": "CRY", "crz": "CRZ",
    "cp": "ControlledPhaseShift", "rxx": "IsingXX", "ryy": "IsingYY", "rzz": "IsingZZ",
}  # fmt: skip
PENNYLANE_SKIPPED = ("barrier", "measure", "id")
_MATH = ("sin", "cos", "tan", "arcsin", "arccos", "arctan", "exp", "log", "abs", "sign")
_SYMPY_MATH = dict(zip(("sin", "cos", "tan", "asin", "acos", "atan", "exp", "log", "Abs", "sign"), _MATH))


def _circuit_check(case, out: np.ndarray, reference: np.ndarray) -> tuple[float, dict | None]:
    """(max abs difference, error row or None) of a route's circuit outputs, read out as the system reads them
    (through the parity, if any), against Statevector's: an error row when they differ by more than
    CIRCUIT_TOL."""
    out = out @ parity(case) if parity(case) is not None else out
    diff = float(np.max(np.abs(out - reference)))
    if diff <= CIRCUIT_TOL:
        return diff, None
    return diff, {"circuit_max_abs_diff": diff, "error": f"circuit differs from Statevector by {diff:.1e}"}


def _columns(spec) -> dict:
    """Each circuit parameter's place: ("x", j) for input j, ("w", j) for weight j."""
    return {p: ("x", j) for j, p in enumerate(spec.inputs)} | {p: ("w", j) for j, p in enumerate(spec.weights)}


def _gate_steps(spec, supported: dict, library: str, wire) -> list[tuple]:
    """(gate name, angle functions, wires) per instruction of the circuit for a gate-by-gate converter: the
    instructions PENNYLANE_SKIPPED names are left out, a gate the library lacks (`supported`) is refused, and
    `wire` maps a Qiskit qubit index to the library's wire."""
    circuit = spec.circuit
    by_name = {p.name: p for p in (*spec.inputs, *spec.weights)}
    steps = []
    for position, instruction in enumerate(circuit.data):
        name = instruction.operation.name
        if name in PENNYLANE_SKIPPED:
            continue
        if name not in supported:
            raise ValueError(f"instruction {position} ('{name}') has no {library} counterpart in the converter")
        wires = [wire(circuit.find_bit(q).index) for q in instruction.qubits]
        steps.append((name, [_angle_function(p, by_name) for p in instruction.operation.params], wires))
    return steps


def _angle_function(value, by_name: dict):
    """A function of the parameter lookup giving a gate angle: a Parameter, an expression (via sympy, evaluated
    with PennyLane's math so torch tensors keep their graph), or a number."""
    from qiskit.circuit import Parameter, ParameterExpression

    if isinstance(value, Parameter):
        return lambda lookup: lookup(value)
    if isinstance(value, ParameterExpression) and value.parameters:
        return _sympy_function(value.sympify(), by_name)
    number = float(value)
    return lambda lookup: number


def _sympy_function(node, by_name: dict):
    import pennylane as qml

    if node.is_Symbol:
        parameter = by_name[node.name]
        return lambda lookup: lookup(parameter)
    if node.is_number:
        number = float(node)
        return lambda lookup: number
    args = [_sympy_function(arg, by_name) for arg in node.args]
    if node.is_Add:
        return lambda lookup: functools.reduce(operator.add, (a(lookup) for a in args))
    if node.is_Mul:
        return lambda lookup: functools.reduce(operator.mul, (a(lookup) for a in args))
    if node.is_Pow:
        return lambda lookup: args[0](lookup) ** args[1](lookup)
    name = node.func.__name__
    if name in _SYMPY_MATH:
        function = getattr(qml.math, _SYMPY_MATH[name])
        return lambda lookup: function(args[0](lookup))
    raise ValueError(f"the converter cannot translate '{name}' in a gate angle")


def _pennylane_observable(observable):
    """A SparsePauliOp as a PennyLane observable on wires = Qiskit qubit indices."""
    import pennylane as qml
    from qiskit.quantum_info import SparsePauliOp

    paulis = {"X": qml.PauliX, "Y": qml.PauliY, "Z": qml.PauliZ}
    terms, coefficients = [], []
    for label, coefficient in SparsePauliOp(observable).to_list():
        factors = [paulis[letter](q) for q, letter in enumerate(reversed(label)) if letter != "I"]
        terms.append(qml.prod(*factors) if len(factors) > 1 else factors[0] if factors else qml.Identity(0))
        coefficients.append(float(np.real(coefficient)))
    if len(terms) == 1 and coefficients[0] == 1.0:
        return terms[0]
    return qml.dot(coefficients, terms)


def pennylane_circuit(spec):
    """(qfunc(x, w), measure()) replaying `spec.circuit` in PennyLane: wire q is Qiskit's qubit q, x is
    (batch, inputs) (broadcast), w (weights,). measure() returns the expectations of the observables, or
    the probabilities in Qiskit's index order (wire n-1 is the most significant bit)."""
    import pennylane as qml

    circuit = spec.circuit
    columns = _columns(spec)
    steps = [
        (getattr(qml, PENNYLANE_GATES[name]), angles, wires)
        for name, angles, wires in _gate_steps(spec, PENNYLANE_GATES, "PennyLane", lambda q: q)
    ]
    observables = [_pennylane_observable(o) for o in spec.observables]
    n = circuit.num_qubits

    def qfunc(x, w):
        def lookup(parameter):
            kind, j = columns[parameter]
            return x[..., j] if kind == "x" else w[j]

        for gate, angles, wires in steps:
            gate(*[angle(lookup) for angle in angles], wires=wires)

    def measure():
        if spec.output == "probabilities":
            return qml.probs(wires=list(range(n))[::-1])
        return [qml.expval(o) for o in observables]

    return qfunc, measure


# --- the routes (each runs in a child process) -----------------------------------------------------------


def _time_steps(step, n_rows: int, batch: int, cap: float) -> dict:
    """One warm-up step on rows [0, batch), then steps over [0, n_rows) until done or `cap` seconds passed."""
    start, cpu = time.perf_counter(), time.process_time()
    step(0, batch)
    first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < n_rows:
        step(done, min(done + batch, n_rows))
        done = min(done + batch, n_rows)
        if time.perf_counter() - start >= cap and done < n_rows:
            break
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return {
        "samples": done,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "first_step_s": first,
        "first_step_cpu_s": first_cpu,
        "capped": done < n_rows,
    }


def cnn_circuit_proxy(keras, case: Case, spec, seed: int):
    """002 as benchmarked: the CNN's hidden features -> its last Dense(2) ("cnn_angles", PyTorch's
    initialisation) -> the circuit (input gradients on, as `mnist_3v5_fixed`) -> the system's head."""
    from qtlmnist.systems import cnn_circuit
    from qtlmnist.systems.engine import CircuitLayer

    hidden = case.values["hidden"]
    features = keras.Input((hidden,), name="features")
    init = cnn_circuit._torch_uniform(keras, hidden, seed, layer=102)
    angles = keras.layers.Dense(2, name="cnn_angles", **init)(features)
    layer = CircuitLayer(spec.circuit, spec.inputs, spec.weights, spec.observables, seed=seed, name="circuit")
    return keras.Model(features, cnn_circuit._head(keras, layer(angles), _n_classes(case), seed), name="proxy")


def keras_model(keras, case: Case, spec, seed: int, dtype: str = "float32"):
    """The system's Keras model, compiled as it trains (`training.fit`).

    dtype "float64" builds it with floatx and the dtype policy float64 (restored after), so that the head and
    the loss are float64 too: the models train in float32 around the float64 circuit, which would limit a
    gradient comparison to ~1e-7."""
    from qtlmnist.systems import training

    module = _module(case)
    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)  # inputs and initialisers
    keras.config.set_dtype_policy(dtype)  # layers (Keras caches the policy at its first use)
    try:
        if case.system == "cnn_circuit":
            model = cnn_circuit_proxy(keras, case, spec, seed)
        else:
            model = module.build(keras, case.values, seed, spec)
        optimizer = keras.optimizers.Adam(case.learning_rate, epsilon=training.ADAM_EPSILON)
        model.compile(optimizer=optimizer, loss=module.LOSS)
        return model
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])


def circuit_layer(model):
    from qtlmnist.systems.engine import CircuitLayer

    return next(layer for layer in model.layers if isinstance(layer, CircuitLayer))


def keras_loss_gradient(keras, model, params: dict, x: np.ndarray, y: np.ndarray, jit: bool = False) -> dict:
    """d(mean loss over the rows)/d(every trainable weight) at `params` (path -> array), as model.fit's
    step computes it (loss reduction sum_over_batch_size), as float64 arrays by path; jit: under XLA."""
    import tensorflow as tf

    for variable in model.trainable_weights:
        variable.assign(params[variable.path])
    loss = keras.losses.get(model.loss)

    def gradient(x, y):
        with tf.GradientTape() as tape:
            value = keras.ops.mean(loss(y, model(x, training=True)))
        return tape.gradient(value, model.trainable_weights)

    if jit:
        gradient = tf.function(gradient, jit_compile=True)
    gradients = gradient(tf.constant(np.asarray(x, np.float64)), tf.constant(np.asarray(y)))
    return {v.path: np.asarray(g, dtype=np.float64) for v, g in zip(model.trainable_weights, gradients)}


def _route_ours(case, spec, check, data, start, cap, seed, jit: bool | None = None):
    """The system's Keras model as built and compiled for training (float32 head) is timed; a float64 copy
    with the same initial weights gives the gradient (jit True: under XLA), and its engine the circuit check.
    jit None: trained by model.fit (Keras leaves XLA off: op determinism is on); True / False: by one training
    step (forward, loss, gradient, the model's Adam) run through `engine.compile_step` with that jit, as a
    custom training loop runs it (the first step's time is then mostly XLA's compile)."""
    import keras

    model = keras_model(keras, case, spec, seed)
    initial = {v.path: np.asarray(v.numpy(), dtype=np.float64) for v in model.trainable_weights}
    exact = keras_model(keras, case, spec, seed, "float64")

    layer = circuit_layer(exact)
    circuit_x, circuit_w, reference = check
    if spec.output == "probabilities":
        out = np.asarray(layer.engine.probabilities(circuit_x, circuit_w))
    else:
        out = np.asarray(layer.engine.expectations(circuit_x, circuit_w, layer.observables))
    out = out @ parity(case) if parity(case) is not None else out
    circuit_diff = float(np.max(np.abs(out - reference)))

    x, y = data
    gradients = keras_loss_gradient(keras, exact, initial, x[: case.batch], y[: case.batch], bool(jit))
    if jit is not None:
        timing = _time_steps(_keras_step(keras, model, jit, case.steps, x, y), len(x), case.batch, cap)
        return {"gradients": gradients, "circuit_max_abs_diff": circuit_diff, **timing}

    class Cap(keras.callbacks.Callback):
        """Counts the rows trained and stops after the step that passes `cap` seconds."""

        def on_train_begin(self, logs=None):
            self.began, self.rows = time.perf_counter(), 0

        def on_train_batch_end(self, batch, logs=None):
            self.rows += case.batch
            if time.perf_counter() - self.began >= cap:
                self.model.stop_training = True

    def fit(rows: int) -> int:
        counter = Cap()
        model.fit(x[:rows], y[:rows], batch_size=case.batch, epochs=1, shuffle=False, verbose=0, callbacks=[counter])
        return min(counter.rows, rows)

    began, cpu = time.perf_counter(), time.process_time()
    fit(case.batch)  # warm-up: traces the training step once, as the first epoch of a run does
    first, first_cpu = time.perf_counter() - began, time.process_time() - cpu
    began, cpu = time.perf_counter(), time.process_time()
    rows = fit(len(x))  # one fit over every timed row, as training.fit runs an epoch
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    timing = {"samples": rows, "seconds": seconds, "cpu_seconds": cpu_seconds, "first_step_s": first}
    timing["first_step_cpu_s"] = first_cpu
    return {
        "initial": initial,
        "adam_epsilon": float(model.optimizer.epsilon),
        "gradients": gradients,
        "circuit_max_abs_diff": circuit_diff,
        "capped": rows < len(x),
        **timing,
    }


def _keras_step(keras, model, jit: bool, steps: int, x: np.ndarray, y: np.ndarray):
    """step(a, b): one training step of `model` on rows [a, b), compiled by `engine.compile_step`."""
    import tensorflow as tf

    from qtlmnist.systems import engine

    loss = keras.losses.get(model.loss)
    variables = model.trainable_weights
    model.optimizer.build(variables)  # its moments exist before the step is traced

    def train_step(x, y):
        with tf.GradientTape() as tape:
            value = keras.ops.mean(loss(y, model(x, training=True)))
        model.optimizer.apply(tape.gradient(value, variables), variables)
        return value

    step = engine.compile_step(train_step, jit, steps)
    x, y = tf.constant(x), tf.constant(y)

    def run(a, b):
        step(x[a:b], y[a:b]).numpy()

    return run


def _route_ours_group(case, spec, check, data, start, cap, seed):
    """The setting's seeds as one model, as `training.fit_group` trains them: float64 Keras models (seed 0's
    starting where ours did, the others from their own seeds), stacked by `training.SeedStack`, the summed
    loss, one Adam, one step through `engine.compile_step` with the setting's `jit`; every seed on the same
    rows (the cost does not depend on their values). Gradient: seed 0's slice of the summed loss's."""
    import keras
    import tensorflow as tf

    from qtlmnist.systems import engine, training

    models = [keras_model(keras, case, spec, seed + k, "float64") for k in range(case.seeds)]
    params, _ = start
    for variable in models[0].trainable_weights:
        variable.assign(params[variable.path])
    stack = training.SeedStack(models)
    optimizer = keras.optimizers.Adam(case.learning_rate, epsilon=training.ADAM_EPSILON)
    optimizer.build(stack.trainable)
    loss_function = keras.losses.get(models[0].loss)

    def total_loss(xs, ys):
        outputs = stack.call(xs, training=True)
        return tf.reduce_sum(
            tf.stack([tf.reduce_mean(loss_function(t, o)) for t, o in zip(tf.unstack(ys), tf.unstack(outputs))])
        )

    x, y = data
    xs = tf.constant(np.stack([np.asarray(x, np.float64)] * case.seeds))
    ys = tf.constant(np.stack([np.asarray(y)] * case.seeds))
    with tf.GradientTape() as tape:
        value = total_loss(xs[:, : case.batch], ys[:, : case.batch])
    first = tape.gradient(value, stack.trainable)
    paths = [v.path for v in models[0].trainable_weights]
    gradients = {path: np.asarray(g[0], np.float64) for path, g in zip(paths, first)}

    def train_step(xs, ys):
        with tf.GradientTape() as tape:
            value = total_loss(xs, ys)
        optimizer.apply_gradients(zip(tape.gradient(value, stack.trainable), stack.trainable))
        return value

    step = engine.compile_step(train_step, case.values.get("jit", False), case.steps)

    def run(a, b):
        step(xs[:, a:b], ys[:, a:b]).numpy()

    timing = _time_steps(run, len(x), case.batch, cap)
    timing["steps"] = -(-timing["samples"] // case.batch)
    timing["samples"] *= case.seeds  # rows of every seed
    return {"gradients": gradients, **timing}


class _TorchModel:
    """The system's classical layers in torch around a circuit module (inputs -> outputs, its weights as
    `.weight`), with the system's loss; `load` and `gradients` use the Keras model's parameter paths (a Keras
    kernel is the transpose of torch's Linear weight)."""

    def __init__(self, case: Case, spec, circuit, dtype, parity_matrix: np.ndarray | None = None):
        import torch

        self.case, self.circuit = case, circuit
        self.before = self.after = None
        # a weightless circuit (002) has no trainable circuit weights in Keras either
        self.names = {"circuit/circuit_weights": circuit.weight} if len(spec.weights) else {}
        if case.system == "cnn_circuit":  # hidden features -> Linear(hidden, 2) -> <ZZ> -> Linear(1, 1) -> [0, z]
            self.before = torch.nn.Linear(case.values["hidden"], len(spec.inputs), dtype=dtype)
            self.after = torch.nn.Linear(1, 1, dtype=dtype)
            self.names |= {"cnn_angles/kernel": self.before.weight, "cnn_angles/bias": self.before.bias}
            self.names |= {"head/kernel": self.after.weight, "head/bias": self.after.bias}
        elif case.system == "paradoxical7_qnn":  # <Z> -> Linear(1, 1)
            self.after = torch.nn.Linear(1, 1, dtype=dtype)
            self.names |= {"linear/kernel": self.after.weight, "linear/bias": self.after.bias}
        elif case.system == "quantum_mnist":  # Linear(784, 4) encoder -> circuit -> parity
            self.before = torch.nn.Linear(784, len(spec.inputs), dtype=dtype)
            self.names |= {"encoder/kernel": self.before.weight, "encoder/bias": self.before.bias}
        else:  # n <Z> -> Dense softmax
            self.after = torch.nn.Linear(len(spec.observables), _n_classes(case), dtype=dtype)
            self.names |= {"softmax/kernel": self.after.weight, "softmax/bias": self.after.bias}
        self.parity = None if parity_matrix is None else torch.as_tensor(parity_matrix, dtype=dtype)

    def parameters(self) -> list:
        return list(self.names.values())

    def forward(self, x):
        h = self.before(x) if self.before is not None else x
        h = self.circuit(h)
        h = h @ self.parity if self.parity is not None else h
        return self.after(h) if self.after is not None else h

    def loss(self, x, y):
        import torch.nn.functional as F

        out = self.forward(x)
        if self.case.system == "paradoxical7_qnn":
            return F.mse_loss(out, y)
        if self.case.system == "quantum_mnist":  # cross-entropy on the parity probabilities (Keras from_logits=False)
            return F.nll_loss(out.log(), y)
        if self.case.system == "cnn_circuit":  # softmax over [0, z], as cnn_circuit._head
            import torch

            return F.cross_entropy(torch.cat([torch.zeros_like(out), out], dim=1), y)
        return F.cross_entropy(out, y)  # Dense softmax, then cross-entropy

    def load(self, params: dict) -> None:
        import torch

        with torch.no_grad():
            for name, parameter in self.names.items():
                value = np.asarray(params[name])
                parameter.copy_(torch.as_tensor(value.T if value.ndim == 2 else value, dtype=parameter.dtype))

    def gradients(self, x, y, batch: int) -> dict:
        """Loss gradient on rows [0, batch) at the loaded parameters, as float64 arrays in Keras' layout."""
        for parameter in self.parameters():
            parameter.grad = None
        self.loss(x[:batch], y[:batch]).backward()
        out = {}
        for name, parameter in self.names.items():
            value = parameter.grad.detach().cpu().numpy().astype(np.float64)
            out[name] = value.T if value.ndim == 2 else value
        return out

    def train(self, x, y, batch: int, learning_rate: float, epsilon: float, cap: float) -> dict:
        """Adam (torch's, with the Keras model's epsilon) over the rows, timed by `_time_steps`."""
        import torch

        optimizer = torch.optim.Adam(self.parameters(), lr=learning_rate, eps=epsilon)

        def step(a, b):
            optimizer.zero_grad()
            self.loss(x[a:b], y[a:b]).backward()
            optimizer.step()

        return _time_steps(step, len(x), batch, cap)


def _torch_data(case: Case, data, dtype):
    import torch

    x, y = data
    labels = dtype if case.system == "paradoxical7_qnn" else torch.long  # MSE targets, or class indices
    return torch.as_tensor(np.asarray(x), dtype=dtype), torch.as_tensor(np.asarray(y), dtype=labels)


def _qnn(case: Case, spec):
    """The seed code's QNN on the same QuantumCircuit object, with exact primitives and its default gradient
    (parameter shift). Input gradients only where layers before the circuit are trained (000's encoder).

    default_precision=0 asks for no estimator noise; in qiskit-machine-learning 0.9.1 the default estimator
    (QMLEstimator, exact mode) already ignores the QNN's default_precision of 1/64, which older versions
    passed to qiskit's StatevectorEstimator as Gaussian noise."""
    from qiskit_machine_learning.neural_networks import EstimatorQNN, SamplerQNN
    from qiskit_machine_learning.primitives import QMLEstimator, QMLSampler

    train_inputs = case.system in TRAINED_INPUTS
    if spec.output == "probabilities":
        return SamplerQNN(
            circuit=spec.circuit,
            sampler=QMLSampler(),  # shots=None: exact probabilities
            input_params=list(spec.inputs),
            weight_params=list(spec.weights),
            interpret=lambda outcome: outcome.bit_count() % 2,  # parity, as quantum_mnist.parity_matrix
            output_shape=2,
            input_gradients=train_inputs,
        )
    return EstimatorQNN(
        circuit=spec.circuit,
        estimator=QMLEstimator(default_precision=0.0),
        observables=list(spec.observables),
        input_params=list(spec.inputs),
        weight_params=list(spec.weights),
        input_gradients=train_inputs,
        default_precision=0.0,
    )


def _route_qml(case, spec, check, data, start, cap, seed):
    import torch
    from qiskit_machine_learning.connectors import TorchConnector

    qnn = _qnn(case, spec)
    circuit_x, circuit_w, reference = check
    circuit_diff = float(np.max(np.abs(qnn.forward(circuit_x, circuit_w) - reference)))
    if not circuit_diff <= CIRCUIT_TOL:
        return {
            "circuit_max_abs_diff": circuit_diff,
            "error": f"circuit differs from Statevector by {circuit_diff:.1e}",
        }

    class Float64QNN(torch.autograd.Function):
        """TorchConnector's autograd function without its cast to torch.float: the same qnn.forward and
        qnn.backward (parameter shift), contracted with the incoming gradient in float64."""

        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return torch.as_tensor(qnn.forward(x.detach().numpy(), w.detach().numpy()), dtype=torch.float64)

        @staticmethod
        def backward(ctx, grad_output):
            x, w = ctx.saved_tensors
            input_grad, weight_grad = qnn.backward(x.detach().numpy(), w.detach().numpy())
            g = grad_output.detach().numpy()
            dx = None if input_grad is None else torch.as_tensor(np.einsum("bo,boi->bi", g, input_grad))
            if weight_grad is None:  # a weightless circuit (002)
                return dx, torch.zeros_like(w)
            return dx, torch.as_tensor(np.einsum("bo,bow->w", g, weight_grad))

    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(qnn.num_weights, dtype=torch.float64))

        def forward(self, x):
            return Float64QNN.apply(x, self.weight)

    params, epsilon = start
    exact = _TorchModel(case, spec, Exact(), torch.float64)  # SamplerQNN applies the parity itself
    exact.load(params)
    gradients = exact.gradients(*_torch_data(case, data, torch.float64), case.batch)
    seed_model = _TorchModel(case, spec, TorchConnector(qnn), torch.float32)  # TorchConnector computes in float32
    seed_model.load(params)
    x, y = _torch_data(case, data, torch.float32)
    float32 = gradient_difference(gradients, seed_model.gradients(x, y, case.batch))
    timing = seed_model.train(x, y, case.batch, case.learning_rate, epsilon, cap)
    return {
        "gradients": gradients,
        "circuit_max_abs_diff": circuit_diff,
        "grad_max_abs_diff_float32": float32,
        **timing,
    }


def _route_pennylane(method: str):
    def route(case, spec, check, data, start, cap, seed):
        import pennylane as qml
        import torch

        qfunc, measure = pennylane_circuit(spec)

        @qml.qnode(qml.device("default.qubit", wires=spec.circuit.num_qubits), interface="torch", diff_method=method)
        def qnode(x, w):
            qfunc(x, w)
            return measure()

        if method == "parameter-shift" and case.system in TRAINED_INPUTS:
            # its inputs are trained (encoder): parameter shift cannot differentiate broadcast parameters, so
            # the batch is split into one tape per row
            qnode = qml.transforms.broadcast_expand(qnode)

        class Circuit(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.weight = torch.nn.Parameter(torch.zeros(len(spec.weights), dtype=torch.float64))

            def forward(self, x):
                out = qnode(x, self.weight)
                return out if spec.output == "probabilities" else torch.stack(list(out), dim=-1)

        circuit_x, circuit_w, reference = check
        circuit = Circuit()
        with torch.no_grad():
            circuit.weight.copy_(torch.as_tensor(circuit_w))
            out = circuit(torch.as_tensor(circuit_x)).numpy()
        circuit_diff, mismatch = _circuit_check(case, out, reference)
        if mismatch:  # before any timing: a wrong conversion is not benchmarked
            return mismatch
        params, epsilon = start
        model = _TorchModel(case, spec, circuit, torch.float64, parity(case))
        model.load(params)
        x, y = _torch_data(case, data, torch.float64)
        gradients = model.gradients(x, y, case.batch)
        timing = model.train(x, y, case.batch, case.learning_rate, epsilon, cap)
        return {"gradients": gradients, "circuit_max_abs_diff": circuit_diff, **timing}

    return route


# --- the compiled peers: PennyLane and tensorcircuit-ng on JAX (jax.jit + vmap, XLA) ---------------------


def _jax_float64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 angles and complex128 states, as ours


def _pennylane_jax_circuit(spec):
    """(x_row, w) -> outputs: PennyLane default.qubit with the JAX interface and backprop, as converted by
    `pennylane_circuit`."""
    import jax.numpy as jnp
    import pennylane as qml

    _jax_float64()
    qfunc, measure = pennylane_circuit(spec)

    @qml.qnode(qml.device("default.qubit", wires=spec.circuit.num_qubits), interface="jax", diff_method="backprop")
    def qnode(x, w):
        qfunc(x, w)
        return measure()

    def outputs(x, w):
        out = qnode(x, w)
        return out if spec.output == "probabilities" else jnp.stack(list(out))

    return outputs


# Qiskit gate -> tensorcircuit-ng gate with the same matrix (phase is Qiskit's p; rz is exp(-i theta Z / 2))
TENSORCIRCUIT_GATES = {
    "h": "h", "x": "x", "y": "y", "z": "z", "s": "s", "t": "t",
    "rx": "rx", "ry": "ry", "rz": "rz", "p": "phase", "cx": "cnot", "cz": "cz", "swap": "swap",
}  # fmt: skip


def tensorcircuit_circuit(spec):
    """(x_row, w) -> outputs: `spec.circuit` built natively in tensorcircuit-ng (its `from_qiskit` fails on
    Qiskit 2's parameter expressions), gate by gate. tensorcircuit's qubit 0 is the most significant bit of
    its state index, so Qiskit's qubit q is its qubit n-1-q and the state index is Qiskit's."""
    import jax.numpy as jnp
    import tensorcircuit as tc
    from qiskit.quantum_info import SparsePauliOp

    _jax_float64()
    tc.set_backend("jax")
    tc.set_dtype("complex128")
    n = spec.circuit.num_qubits
    columns = _columns(spec)
    steps = [
        (TENSORCIRCUIT_GATES[name], angles, wires)
        for name, angles, wires in _gate_steps(spec, TENSORCIRCUIT_GATES, "tensorcircuit-ng", lambda q: n - 1 - q)
    ]
    terms = []  # per observable: (coefficient, {"x": [...], "y": [...], "z": [...]}) on tensorcircuit qubits
    for observable in spec.observables:
        pauli = []
        for label, coefficient in SparsePauliOp(observable).to_list():
            where = {k: [n - 1 - q for q, letter in enumerate(reversed(label)) if letter == k.upper()] for k in "xyz"}
            pauli.append((float(np.real(coefficient)), where))
        terms.append(pauli)

    def outputs(x, w):
        def lookup(parameter):
            kind, j = columns[parameter]
            return x[j] if kind == "x" else w[j]

        c = tc.Circuit(n)
        for gate, angles, wires in steps:
            values = [angle(lookup) for angle in angles]
            getattr(c, gate)(*wires, **({"theta": values[0]} if values else {}))
        if spec.output == "probabilities":
            return jnp.abs(c.state()) ** 2
        return jnp.stack([sum(k * jnp.real(c.expectation_ps(**where)) for k, where in pauli) for pauli in terms])

    return outputs


def _jax_model(case: Case, spec, circuit_outputs):
    """(loss(params, x, y), forward(params, x)): the system's classical layers in JAX around the vmapped
    circuit, with the Keras model's parameter paths and layouts (kernel (in, out))."""
    import jax
    import jax.numpy as jnp

    batched = jax.vmap(circuit_outputs, in_axes=(0, None))
    parity_matrix = parity(case)

    def forward(params, x):
        w = params.get("circuit/circuit_weights", jnp.zeros(0))
        if case.system == "quantum_mnist":
            return batched(x @ params["encoder/kernel"] + params["encoder/bias"], w) @ parity_matrix
        if case.system == "cnn_circuit":
            z = batched(x @ params["cnn_angles/kernel"] + params["cnn_angles/bias"], w)
            z = z @ params["head/kernel"] + params["head/bias"]
            return jnp.concatenate([jnp.zeros_like(z), z], axis=1)  # logits; softmax over [0, z]
        z = batched(x, w)
        if case.system == "paradoxical7_qnn":
            return z @ params["linear/kernel"] + params["linear/bias"]
        return z @ params["softmax/kernel"] + params["softmax/bias"]  # logits

    def loss(params, x, y):
        out = forward(params, x)
        if case.system == "paradoxical7_qnn":
            return jnp.mean((out - y) ** 2)
        if case.system == "quantum_mnist":  # probabilities
            return -jnp.mean(jnp.log(jnp.take_along_axis(out, y[:, None], axis=1)))
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None], axis=1))

    return loss, forward


def _route_jax(build_circuit, group: bool = False):
    """A JAX route: the training step under one jax.jit; group: vmapped over a leading seed axis of the
    parameters, moments and data (the setting's seeds, each from the same start and on the same rows: the cost
    does not depend on their values), as ours_group runs them; its gradient is seed 0's slice."""

    def route(case, spec, check, data, start, cap, seed):
        import jax
        import jax.numpy as jnp

        circuit_outputs = build_circuit(spec)
        circuit_x, circuit_w, reference = check
        out = np.asarray(jax.vmap(circuit_outputs, in_axes=(0, None))(jnp.asarray(circuit_x), jnp.asarray(circuit_w)))
        circuit_diff, mismatch = _circuit_check(case, out, reference)
        if mismatch:  # before any timing: a wrong conversion is not benchmarked
            return mismatch
        params, epsilon = start
        params = {name: jnp.asarray(value) for name, value in params.items()}
        loss, _ = _jax_model(case, spec, circuit_outputs)
        x, y = data
        x = jnp.asarray(np.asarray(x, np.float64))
        y = jnp.asarray(np.asarray(y, np.float64 if case.system == "paradoxical7_qnn" else np.int32))
        seeds = case.seeds if group else 1
        if group:
            params = jax.tree.map(lambda p: jnp.stack([p] * seeds), params)
            x, y = jnp.stack([x] * seeds), jnp.stack([y] * seeds)

            def summed(params, x, y):
                return jnp.sum(jax.vmap(loss)(params, x, y))

            gradients = jax.grad(summed)(params, x[:, : case.batch], y[:, : case.batch])
            gradients = {name: np.asarray(g[0], np.float64) for name, g in gradients.items()}
        else:
            gradients = jax.grad(loss)(params, x[: case.batch], y[: case.batch])
            gradients = {name: np.asarray(g, np.float64) for name, g in gradients.items()}

        beta1, beta2, rate = 0.9, 0.999, case.learning_rate  # Keras' Adam

        def update(params, moments, t, x, y):
            value, grads = jax.value_and_grad(loss)(params, x, y)
            m, v = moments
            m = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, m, grads)
            v = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, v, grads)
            scale = rate * jnp.sqrt(1 - beta2**t) / (1 - beta1**t)
            params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + epsilon), params, m, v)
            return params, (m, v), value

        step = jax.jit(jax.vmap(update, in_axes=(0, 0, None, 0, 0)) if group else update)
        zeros = jax.tree.map(jnp.zeros_like, params)
        state = {"params": params, "moments": (zeros, zeros), "t": 0}

        def train_step(a, b):
            state["t"] += 1
            rows = (slice(None), slice(a, b)) if group else slice(a, b)
            params, moments, value = step(state["params"], state["moments"], float(state["t"]), x[rows], y[rows])
            value.block_until_ready()  # JAX dispatches asynchronously: a step ends when its result exists
            state["params"], state["moments"] = params, moments

        timing = _time_steps(train_step, x.shape[-2] if group else len(x), case.batch, cap)
        if group:
            timing["steps"] = -(-timing["samples"] // case.batch)
            timing["samples"] *= seeds  # rows of every seed
        return {"gradients": gradients, "circuit_max_abs_diff": circuit_diff, **timing}

    return route


ROUTE_FUNCTIONS = {
    "ours": _route_ours,
    "ours_graph": functools.partial(_route_ours, jit=False),
    "ours_xla": functools.partial(_route_ours, jit=True),
    "qml_shift": _route_qml,
    "pl_shift": _route_pennylane("parameter-shift"),
    "pl_backprop": _route_pennylane("backprop"),
    "pl_jax": _route_jax(_pennylane_jax_circuit),
    "tc_jax": _route_jax(tensorcircuit_circuit),
    "ours_group": _route_ours_group,
    "pl_jax_group": _route_jax(_pennylane_jax_circuit, group=True),
    "tc_jax_group": _route_jax(tensorcircuit_circuit, group=True),
}


def _run_route(route, case, check, data, start, cap, seed, threads):
    """In a child process: one route on one system; exceptions come back as an error row."""
    from qtlmnist import runtime

    # before TensorFlow or torch is imported (BLAS reads the variables the parent set before starting the child)
    runtime.limit_threads(threads)
    if route in JAX_ROUTES:  # JAX's XLA CPU runtime: Eigen single-threaded, an intra-op pool of `threads`
        os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
    try:
        if route in OURS:
            runtime.seed_tensorflow(seed, threads)
        elif route not in JAX_ROUTES:
            import torch

            torch.set_num_threads(threads)
        result = ROUTE_FUNCTIONS[route](case, circuit_spec(case), check, data, start, cap, seed)
        return result | {"versions": versions()}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def versions() -> dict:
    """Versions of what is importable in this process."""
    import importlib.metadata

    found = {"python": platform.python_version()}
    for name in (
        "numpy",
        "tensorflow-cpu",
        "keras",
        "qiskit",
        "qiskit-aer",
        "qiskit-machine-learning",
        "torch",
        "pennylane",
        "jax",
        "jaxlib",
        "tensorcircuit-ng",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):  # a route's library not installed
            found[name] = importlib.metadata.version(name)
    return found


def run_case(case: Case, routes, cap: float, seed: int, threads: int) -> dict:
    spec = circuit_spec(case)
    rng = np.random.default_rng([seed, 1])
    circuit_x = rng.uniform(-np.pi, np.pi, (CHECK_ROWS, len(spec.inputs)))
    circuit_w = rng.uniform(-np.pi, np.pi, len(spec.weights))
    check = (circuit_x, circuit_w, statevector_outputs(spec, circuit_x, circuit_w, parity(case)))
    x, labels = training_data(case, spec, case.timed_samples, seed)
    data = (x, targets(case, labels))
    context = multiprocessing.get_context("spawn")
    results, start = {}, None
    for route in [REFERENCE, *(r for r in routes if r != REFERENCE)]:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            try:
                result = pool.submit(_run_route, route, case, check, data, start, cap, seed, threads).result()
            except Exception as error:
                result = {"error": f"the process failed: {type(error).__name__}: {error}"}
        if route == REFERENCE:
            if "initial" not in result:
                raise RuntimeError(f"{case.system}: our route failed, nothing to compare with: {result.get('error')}")
            start = (result.pop("initial"), result.pop("adam_epsilon"))  # every route starts where ours did
        results[route] = result
        print(f"  {case.system:17s} {route:12s} {_brief(result)}", flush=True)
    return {
        "system": case.system,
        "seed_document": case.seed_document,
        "setting": case.setting,
        "batch": case.batch,
        "epoch_samples": case.epoch_samples,
        "epochs": case.epochs,
        "timed_samples": case.timed_samples,
        "circuit": {
            "qubits": spec.circuit.num_qubits,
            "inputs": len(spec.inputs),
            "weights": len(spec.weights),
            "gates": dict(spec.circuit.count_ops()),
        },
        "steps": case.steps,
        "routes": (summary := summarise(case, results)),
        "versus_fastest_peer": versus_fastest_peer(summary),
        "versus_fastest_peer_cpu": versus_fastest_peer(summary, "_cpu"),
        "seeds": case.seeds,
        "versus_fastest_peer_group": versus_fastest_peer(summary, group=True),
        "versus_fastest_peer_group_cpu": versus_fastest_peer(summary, "_cpu", group=True),
        "versions": {route: result.get("versions") for route, result in results.items()},
    }


def _brief(result: dict) -> str:
    if result.get("error") and not result.get("samples"):
        return result["error"]
    return f"{result['samples']} rows in {result['seconds']:.1f} s (CPU {result['cpu_seconds']:.1f} s)"


def main(argv: list[str] | None = None) -> None:
    from qtlmnist import provenance
    from qtlmnist.arrays import save_json

    started = provenance.now()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=None, help="systems to run (default: all)")
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES)
    parser.add_argument("--cap", type=float, default=CAP_S, help="wall seconds per route and system")
    parser.add_argument("--threads", type=int, default=None, help="per route (default: systems.threads)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)

    import yaml

    config = yaml.safe_load(args.config.read_text())
    threads = args.threads or config["systems"]["threads"]
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)  # read by each child's numpy, torch and TensorFlow at import
    chosen = cases(config)
    names = args.systems or list(chosen)
    print(f"trainable systems, {threads} thread(s) per route, cap {args.cap:.0f} s per route:", flush=True)
    results = {name: run_case(chosen[name], args.routes, args.cap, args.seed, threads) for name in names}
    report = {
        "threads": threads,
        "cap_s": args.cap,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "routes": {route: ROUTE_TITLES[route] for route in args.routes},
        "gradient_tolerance": GRADIENT_TOL,
        "circuit_tolerance": CIRCUIT_TOL,
        "systems": results,
    }
    save_json(args.results / "bench" / "systems.json", report)
    save_json(
        provenance.beside(args.results / "bench" / "systems.json"),
        provenance.record(
            "bench", config | {"args": vars(args)}, [args.results / "bench" / "systems.json"], started=started
        ),
    )
    print()
    print(table(results))
    for name, entry in results.items():
        ours = entry["routes"][REFERENCE]
        print(
            f"{entry['seed_document']} {name}: ours {ours['s_per_epoch_cpu']:.2f} CPU s per epoch of "
            f"{entry['epoch_samples']} rows ({ours['s_per_training_cpu']:.1f} s for {entry['epochs']} epochs)"
        )
        for clock in ("", "_cpu", "_group", "_group_cpu"):
            versus = entry[f"versus_fastest_peer{clock}"]
            if versus["peer_over_ours"] is not None:
                seeds = f"{entry['seeds']} seeds together, " if "group" in clock else ""
                print(
                    f"  typical run of {seeds}{entry['steps']} steps with compilation "
                    f"({'CPU' if 'cpu' in clock else 'wall'}): "
                    f"ours ({versus['ours']}) {versus['ours_s']:.1f} s, fastest peer ({versus['fastest_peer']}) "
                    f"{versus['peer_s']:.1f} s: peer / ours = {versus['peer_over_ours']:.2f}"
                )


if __name__ == "__main__":
    main()
