"""The same circuit with shots: run a trainable circuit on Aer for given inputs and trained weights, and
estimate outcome probabilities and Pauli expectation values from the counts.

Each measurement basis is one circuit: the trained circuit without its final measurements, then H (for X) or
Sdg then H (for Y) on the qubits whose Pauli letter asks for it, then all qubits measured (or, where the
caller needs no probabilities, only the qubits its terms read: Aer then builds shorter counts, e.g. 001's
11-qubit circuit read on one qubit costs 1.8 ms an image at 1,024 shots instead of 2.6). Basis 0 is the
computational basis (it gives the probabilities and every Z string); terms with X or Y letters share a basis
when their letters agree qubit by qubit. A term's estimate is the mean of (-1)**(parity of the measured bits
on its non-I qubits) in its basis.

Seeds follow `quantum.aer_features`: each basis circuit is transpiled once (to Aer's gates less the
parametrised multi-qubit ones, which Aer binds wrongly: `parameter_safe_basis`), rows are bound through
`parameter_binds` in chunks, and row r (global row first_row + r) in basis k is simulated with
seed + k + SEED_STRIDE * (first_row + r), so a row's counts depend only on the seed, its row and its basis,
never on the chunking (basis 0 reproduces `aer_features`' seeds where every qubit is measured; a circuit
measured on fewer qubits draws other counts from the same seed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.circuit.library import get_standard_gate_name_mapping

from ..quantum import SEED_STRIDE, counts_to_features, make_simulator
from .engine import compile_circuit, parity_signs, pauli_terms


def measurement_bases(labels: Iterable[str], num_qubits: int) -> tuple[list[str], list[int]]:
    """(bases, basis of each label): bases as labels of X/Y/Z per qubit (rightmost = qubit 0), basis 0 all Z;
    each Pauli label goes to the first basis that agrees with its non-I letters, else opens a new one."""
    bases: list[list[str | None]] = [["Z"] * num_qubits]
    chosen = []
    for label in labels:
        letters = list(reversed(label))
        for k, basis in enumerate(bases):  # noqa: B007 (k is read after the loop: the basis it stopped at)
            if all(a == "I" or b in (None, a) for a, b in zip(letters, basis)):
                break
        else:
            k, basis = len(bases), [None] * num_qubits
            bases.append(basis)
        for q, letter in enumerate(letters):
            if letter != "I":
                basis[q] = letter
        chosen.append(k)
    return ["".join(reversed([b or "Z" for b in basis])) for basis in bases], chosen


def basis_circuit(circuit: QuantumCircuit, basis: str, measured: Sequence[int] | None = None) -> QuantumCircuit:
    """The circuit without its final measurements, rotated into `basis` and measured on every qubit, or on
    the qubits `measured` (clbit q <- qubit q, so the counts' index is sum_q b_q 2**q; an unmeasured clbit
    reads 0)."""
    n = circuit.num_qubits
    qubits = range(n) if measured is None else sorted(measured)
    out = QuantumCircuit(n, n)
    out.compose(circuit.remove_final_measurements(inplace=False), qubits=range(n), inplace=True)
    for q, letter in enumerate(reversed(basis)):
        if letter == "Y":
            out.sdg(q)
        if letter in "XY":
            out.h(q)
    out.measure(qubits, qubits)
    return out


def parameter_safe_basis(simulator) -> list[str]:
    """Aer's gates, less those with both parameters and more than one qubit.

    Aer 0.18 binds parametrised multi-qubit gates wrongly through parameter_binds (crx and cry act as the
    identity, cu1 gives wrong counts; Qiskit/qiskit-aer#2323, #2391, #2403), so those are decomposed into
    1-qubit rotations and CX, the path the feature stage already uses.
    """
    standard = get_standard_gate_name_mapping()
    return sorted(
        name
        for name in simulator.target.operation_names
        if name in standard and (standard[name].num_qubits <= 1 or not standard[name].params)
    )


def aer_estimates(
    circuit: QuantumCircuit,
    inputs: Sequence[Parameter],
    weights: Sequence[Parameter],
    x: np.ndarray,
    weight_values: np.ndarray,
    observables: Sequence = (),
    shots: int = 1024,
    seed: int = 0,
    first_row: int = 0,
    chunk_size: int = 2000,
    threads: int = 1,
    probabilities: bool = True,
) -> tuple[np.ndarray | None, np.ndarray]:
    """(probabilities (N, 2**n), expectations (N, len(observables))) estimated from `shots` shots per row.
    probabilities=False: None for the probabilities, and each basis measures only the qubits its terms read
    (the expectations' estimator is the same; its shots are drawn from those qubits' marginal).

    x: (N, len(inputs)) input values; weight_values: (len(weights),) trained weights, the same for every row.
    The circuit is checked as by the engine (same errors for unsupported gates and undeclared parameters).
    """
    engine = compile_circuit(circuit, inputs, weights)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    weight_values = np.asarray(weight_values, dtype=np.float64)
    if x.shape[1] != len(engine.input_params):
        raise ValueError(
            f"the data has {x.shape[1]} columns but the circuit declares {len(engine.input_params)} inputs"
        )
    if weight_values.shape != (len(engine.weight_params),):
        raise ValueError(
            f"{weight_values.size} weight values given, the circuit declares {len(engine.weight_params)} weights"
        )
    n, n_rows = circuit.num_qubits, len(x)
    terms = pauli_terms(observables, n)
    bases, basis_of = measurement_bases([label for _, label, _ in terms], n)
    if not circuit.parameters:  # rows differ only through parameter_binds, one experiment per row
        raise ValueError("the circuit has no parameters: every row would be the same experiment")
    if len(bases) >= SEED_STRIDE:  # seed + k + SEED_STRIDE * row must not repeat across (row, basis)
        raise ValueError(f"{len(bases)} measurement bases; at most {SEED_STRIDE - 1} keep the seeds distinct")

    values = {p: x[:, j] for j, p in enumerate(engine.input_params)}
    values.update({p: np.full(n_rows, weight_values[j]) for j, p in enumerate(engine.weight_params)})
    simulator, _ = make_simulator(threads)
    basis_gates = parameter_safe_basis(simulator)
    frequencies = []
    for k, basis in enumerate(bases):
        read = {q for (_, label, _), b in zip(terms, basis_of) if b == k for q, a in enumerate(label[::-1]) if a != "I"}
        if not probabilities and not read:  # basis 0 when no term reads a qubit in it
            frequencies.append(None)
            continue
        measured = None if probabilities else read
        compiled = transpile(basis_circuit(circuit, basis, measured), basis_gates=basis_gates, optimization_level=0)
        compiled.global_phase = 0  # changes no count, and Aer's parameter binding rejects a parametrised one
        estimate = np.empty((n_rows, 2**n))
        for start in range(0, n_rows, chunk_size):
            stop = min(start + chunk_size, n_rows)
            binds = {p: values[p][start:stop].tolist() for p in compiled.parameters}
            result = simulator.run(
                compiled,
                parameter_binds=[binds],
                shots=shots,
                seed_simulator=seed + k + SEED_STRIDE * (first_row + start),
            ).result()
            if not result.success:
                raise RuntimeError(f"Aer run for basis {basis}, rows {start}..{stop} failed: {result.status}")
            estimate[start:stop] = counts_to_features([result.data(j)["counts"] for j in range(stop - start)], n)
        frequencies.append(estimate)

    expectations = np.zeros((n_rows, len(observables)))
    for (k, label, coefficient), basis in zip(terms, basis_of):
        support = int("".join("0" if letter == "I" else "1" for letter in label), 2)
        if support == 0:  # the identity: 1 in every shot (its basis may not have run)
            expectations[:, k] += coefficient
            continue
        expectations[:, k] += coefficient * (frequencies[basis] @ parity_signs(support, n))
    return frequencies[0] if probabilities else None, expectations
