"""A differentiable exact statevector simulator, written as TensorFlow ops, that executes a Qiskit circuit.

One `QuantumCircuit` with `Parameter`s is drawn, run on Aer with shots (`shots.aer_estimates`) and trained
here: `compile_circuit` walks its instructions once, checks them, precomputes every constant and returns a
`CompiledCircuit`, which maps (inputs x, weights w) to the statevector, the outcome probabilities or Pauli
expectation values; `CircuitLayer` wraps it as a Keras 3 layer that owns the weights.

Convention (Qiskit's, the same as `Statevector`): the state of n qubits is a (batch, 2**n) complex128 tensor
with column index i = sum_q b_q 2**q, b_q the bit of qubit q, starting from |0...0>; a Pauli label's rightmost
letter acts on qubit 0. A 1-qubit gate M on qubit q views the state as (batch, 2**(n-1-q), 2, 2**q), whose
axis 2 is b_q, and sets

    psi'[b, h, a, l] = sum_c M[a, c] psi[b, h, c, l]          (one broadcast matmul)

with M of shape (2, 2) when it depends on weights or on nothing, (batch, 2, 2) when it depends on inputs.
A 2-qubit gate does the same on the bit pair (hi, lo) with a 4x4 matrix indexed 2 b_hi + b_lo. Gates with
fixed parameters that only permute basis states and multiply phases (x, cx, cz, swap, rz(0.3), ...) are
composed at compile time, so a run of them costs one gather and one multiply. The 1-qubit gates before the
first multi-qubit gate act on a product state: each qubit's 2-vector is evolved alone and the state is
their Kronecker product, formed once.

Parameters are split into inputs (per sample, x of shape (batch, k)) and weights (shared, w of shape (m,)),
both float64. Gate angles may be `Parameter`s or `ParameterExpression`s; expressions are translated into TF
ops through Qiskit's public `ParameterExpression.sympify()` (sympy), whose tree is stable where Qiskit's own
replay format is private. Gradients are TensorFlow's autodiff, exact to float64 round-off.

This module imports TensorFlow and Keras: rule scripts call `runtime.seed_tensorflow` before importing it.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import SparsePauliOp

# Gates without angles; their matrices are Qiskit's own (`Gate.to_matrix`), read at compile time.
FIXED_GATES = (
    "id", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "sxdg",
    "cx", "cy", "cz", "ch", "swap", "iswap", "ccx", "cswap",
)  # fmt: skip
# One-angle gates are G(theta) = A + cos(f theta) B + sin(f theta) C with constant A, B, C read off Qiskit's
# matrices; f = 1/2 for the rotations exp(-i theta/2 P), 1 for the phase gates.
ANGLE_GATES = {
    "rx": 0.5, "ry": 0.5, "rz": 0.5, "p": 1.0,
    "crx": 0.5, "cry": 0.5, "crz": 0.5, "cp": 1.0,
    "rxx": 0.5, "ryy": 0.5, "rzz": 0.5,
}  # fmt: skip
# u(theta, phi, lam) = p(phi) ry(theta) p(lam) exactly (no global phase), so it reuses the one-angle forms.
U_GATE = "u"
# barrier does nothing to the state; measure is allowed only as a qubit's last operation (the probabilities
# are those of measuring at the end), and is remembered in `measured_qubits`.
IGNORED = ("barrier", "measure")
SUPPORTED_GATES = tuple(sorted((*FIXED_GATES, *ANGLE_GATES, U_GATE, *IGNORED)))

ParameterLookup = Callable[[Parameter], tf.Tensor]
# a layer of 1-qubit gates on a circuit of up to this many qubits is applied as one 2**n x 2**n matrix
DENSE_QUBITS = 6
# a run of Ry and CX onto one qubit with at least this many CX is one `_Multiplexed` step (below it, the gates'
# own steps are as few)
MULTIPLEXED_MIN_CX = 2
JIT_CHOICES = ("auto", True, False)
# steps `compile_step(jit="auto")` times on each path before it chooses (variables restored after)
PROBE_STEPS = 3

log = logging.getLogger(__name__)


# --- gate angles: Parameter / ParameterExpression -> TF ------------------------------------------------------


def _sympy_to_tf(node, by_name: dict[str, Parameter], where: str) -> Callable[[ParameterLookup], object]:
    """A function of the parameter lookup that evaluates the sympy tree `node` with TF ops (checked now)."""
    if node.is_Symbol:
        parameter = by_name[node.name]
        return lambda lookup: lookup(parameter)
    if node.is_number:  # constant subtrees (pi, 2.0, sqrt(2)) fold to a Python float
        number = complex(node)
        if number.imag != 0:
            raise ValueError(f"{where}: the angle has the complex constant {node}; gate angles must be real")
        return lambda lookup: number.real
    args = [_sympy_to_tf(arg, by_name, where) for arg in node.args]
    if node.is_Add:
        return lambda lookup: _fold(args, lookup, lambda a, b: a + b)
    if node.is_Mul:
        return lambda lookup: _fold(args, lookup, lambda a, b: a * b)
    name = node.func.__name__
    if name in _SYMPY_FUNCTIONS:
        function = _SYMPY_FUNCTIONS[name]
        return lambda lookup: function(args[0](lookup))
    if node.is_Pow:
        return lambda lookup: tf.pow(args[0](lookup), args[1](lookup))
    raise ValueError(
        f"{where}: the angle uses '{name}', which the engine cannot translate "
        f"(it knows +, *, **, {', '.join(sorted(_SYMPY_FUNCTIONS))})"
    )


def _fold(args, lookup, combine):
    result = args[0](lookup)
    for arg in args[1:]:
        result = combine(result, arg(lookup))
    return result


# The functions Qiskit's ParameterExpression offers, by their sympy names; angles are real, so conjugate is
# the identity.
_SYMPY_FUNCTIONS = {
    "sin": tf.sin,
    "cos": tf.cos,
    "tan": tf.tan,
    "asin": tf.asin,
    "acos": tf.acos,
    "atan": tf.atan,
    "exp": tf.exp,
    "log": tf.math.log,
    "Abs": tf.abs,
    "sign": tf.sign,
    "conjugate": lambda t: t,
}


def _angle(value, by_name: dict[str, Parameter], where: str) -> tuple[Callable[[ParameterLookup], tf.Tensor], set]:
    """(function of the parameter lookup giving the angle as a float64 tensor, the parameters it reads)."""
    if isinstance(value, Parameter):
        return (lambda lookup: lookup(value)), {value}
    if isinstance(value, ParameterExpression) and value.parameters:
        evaluate = _sympy_to_tf(value.sympify(), by_name, where)
        return (lambda lookup: tf.convert_to_tensor(evaluate(lookup), tf.float64)), set(value.parameters)
    number = complex(value)
    if number.imag != 0:
        raise ValueError(f"{where}: the angle {value} is complex; gate angles must be real")
    return (lambda lookup: tf.constant(number.real, tf.float64)), set()


# --- gate matrices ---------------------------------------------------------------------------------------


def _complex(t: tf.Tensor) -> tf.Tensor:
    # tf.complex rather than tf.cast: the gradient of a real -> complex cast warns about dropping imaginary parts
    return tf.complex(t, tf.zeros_like(t))


def _one_angle_form(operation, f: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A, B, C with G(theta) = A + cos(f theta) B + sin(f theta) C, from Qiskit's matrices at three angles."""

    def matrix(theta: float) -> np.ndarray:
        gate = operation.to_mutable()
        gate.params = [theta]
        return gate.to_matrix()

    at_zero, at_pi, at_half_pi = matrix(0.0), matrix(np.pi / f), matrix(np.pi / (2 * f))
    a = (at_zero + at_pi) / 2
    b = (at_zero - at_pi) / 2
    c = at_half_pi - a
    check = 0.7321
    if not np.allclose(a + np.cos(f * check) * b + np.sin(f * check) * c, matrix(check), atol=1e-14):
        raise AssertionError(f"gate '{operation.name}' is not of the form A + cos B + sin C")  # a wrong table entry
    return a, b, c


def _one_angle_matrix(theta: tf.Tensor, f: float, form: tuple[np.ndarray, ...]) -> tf.Tensor:
    """G(theta) as (2**k, 2**k), or (batch, 2**k, 2**k) when theta has a batch axis."""
    a, b, c = form
    cos = _complex(tf.cos(f * theta))[..., None, None]
    sin = _complex(tf.sin(f * theta))[..., None, None]
    return cos * b + sin * c + a  # tensor first, so the numpy constants join TF ops


class _Gate:
    """One instruction ready to apply: its qubits in ascending order and either a constant matrix or a builder
    of one, indexed sum_j b_{qargs[j]} 2**j (Qiskit's order for that qubit list; for two qubits 2 b_hi + b_lo)."""

    def __init__(
        self, qargs: tuple[int, ...], const=None, build=None, per_sample: bool = False, one_angle=None, phase=None
    ):
        self.qargs = qargs
        self.const = const
        self.build = build
        self.per_sample = per_sample
        # (angle function, f, (A, B, C), its Parameter when the angle is one) of a one-angle gate, so that a
        # layer of them is built in one go
        self.one_angle = one_angle
        # a diagonal one-angle gate: (u, slope, polynomial), its entry on local basis state j being
        # u[j] exp(i slope[j] theta), and polynomial theta's terms ({monomial: coefficient}, `_polynomial`)
        self.phase = phase

    def matrix(self, lookup: ParameterLookup):
        return self.const if self.const is not None else self.build(lookup)


def _ascending(matrix: np.ndarray, qargs: tuple[int, ...]) -> np.ndarray:
    """Re-index a matrix given in Qiskit's order for `qargs` to the order for sorted(qargs)."""
    order = np.argsort(qargs)  # the j-th smallest qubit is qargs[order[j]]
    index = np.arange(2 ** len(qargs))
    old = sum(((index >> j) & 1) << int(order[j]) for j in range(len(qargs)))
    return matrix[np.ix_(old, old)]


def _make_gate(operation, qargs: tuple[int, ...], by_name, inputs: set, where: str) -> _Gate:
    """A constant matrix when no parameter enters (read from Qiskit), else a builder of TF ops."""
    name, ascending = operation.name, tuple(sorted(qargs))
    if name in FIXED_GATES or not any(isinstance(p, ParameterExpression) and p.parameters for p in operation.params):
        gate = operation.to_mutable()
        gate.params = [complex(p).real if isinstance(p, ParameterExpression) else p for p in operation.params]
        return _Gate(ascending, const=_ascending(np.asarray(gate.to_matrix(), dtype=np.complex128), qargs))
    angles, used = [], set()
    for value in operation.params:
        evaluate, reads = _angle(value, by_name, where)
        angles.append(evaluate)
        used |= reads
    per_sample = bool(used & inputs)
    if name == U_GATE:
        p_form = _one_angle_form(get_standard_gate_name_mapping()["p"], ANGLE_GATES["p"])
        ry_form = _one_angle_form(get_standard_gate_name_mapping()["ry"], ANGLE_GATES["ry"])
        theta, phi, lam = angles

        def build(lookup):
            p_phi = _one_angle_matrix(phi(lookup), ANGLE_GATES["p"], p_form)
            ry = _one_angle_matrix(theta(lookup), ANGLE_GATES["ry"], ry_form)
            p_lam = _one_angle_matrix(lam(lookup), ANGLE_GATES["p"], p_form)
            return tf.linalg.matmul(p_phi, tf.linalg.matmul(ry, p_lam))

        return _Gate(ascending, build=build, per_sample=per_sample)
    f = ANGLE_GATES[name]
    form = tuple(_ascending(m, qargs) for m in _one_angle_form(operation, f))
    (theta,) = angles
    direct = operation.params[0] if isinstance(operation.params[0], Parameter) else None
    build = lambda lookup: _one_angle_matrix(theta(lookup), f, form)  # noqa: E731
    phase = _phase_form(form, f)
    if phase is not None:
        phase = (*phase, _polynomial(operation.params[0], by_name))
    return _Gate(ascending, build=build, per_sample=per_sample, one_angle=(theta, f, form, direct), phase=phase)


def _phase_form(form: tuple[np.ndarray, ...], f: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(u, slope) with G(theta) = diag(u exp(i slope theta)) if the one-angle gate A + cos(f theta) B +
    sin(f theta) C is diagonal with entries of modulus 1 (p, rz, cp, crz, rzz), else None. An entry is
    A_jj + cos B_jj + sin C_jj: constant when B_jj = C_jj = 0, B_jj exp(+-i f theta) when A_jj = 0 and
    C_jj = +-i B_jj; anything else is not a phase."""
    a, b, c = form
    if any(np.abs(m - np.diag(np.diag(m))).max() > 1e-12 for m in form):
        return None
    a, b, c = np.diag(a), np.diag(b), np.diag(c)
    u, slope = np.empty(len(a), np.complex128), np.empty(len(a))
    for j in range(len(a)):
        if abs(b[j]) <= 1e-12 and abs(c[j]) <= 1e-12:
            u[j], slope[j] = a[j], 0.0
        elif abs(a[j]) <= 1e-12 and abs(c[j] - 1j * b[j]) <= 1e-12:
            u[j], slope[j] = b[j], f
        elif abs(a[j]) <= 1e-12 and abs(c[j] + 1j * b[j]) <= 1e-12:
            u[j], slope[j] = b[j], -f
        else:
            return None
    return (u, slope) if np.allclose(np.abs(u), 1.0, atol=1e-12) else None


def _polynomial(value, by_name: dict[str, Parameter]) -> dict[tuple[Parameter, ...], float] | None:
    """{monomial: coefficient} when the angle is a polynomial in its parameters (a Parameter, 2 x, pi - x,
    2 (pi - x)(pi - y)), a monomial being its parameters with repetition (() the constant), else None. Such an
    angle reaches a phase block through coefficient matrices: a constant or linear term costs no op of its
    own, and the products of all the block's terms of one degree are formed together."""
    import sympy

    if isinstance(value, Parameter):
        return {(value,): 1.0}
    expression = value.sympify()
    symbols = sorted(expression.free_symbols, key=lambda symbol: symbol.name)
    try:
        polynomial = sympy.Poly(expression, *symbols)
    except sympy.PolynomialError:  # sin(x), 1 / x, ...
        return None
    terms = {}
    for exponents, coefficient in polynomial.terms():
        coefficient = complex(coefficient)
        if coefficient.imag != 0:
            return None
        monomial = tuple(by_name[s.name] for s, e in zip(symbols, exponents) for _ in range(e))
        terms[monomial] = coefficient.real
    return terms


def _monomial(matrix: np.ndarray, qargs: tuple[int, ...], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(source, phase) with psi'[i] = phase[i] psi[source[i]] if the gate is a permutation with phases, else
    None."""
    nonzero = matrix != 0
    if not np.all(nonzero.sum(axis=1) == 1):
        return None
    column = nonzero.argmax(axis=1)
    index = np.arange(2**n)
    local = sum(((index >> q) & 1) << j for j, q in enumerate(qargs))
    mask = sum(1 << q for q in qargs)
    source_local = column[local]
    source = (index & ~mask) | sum(((source_local >> j) & 1) << q for j, q in enumerate(qargs))
    return source, matrix[local, source_local]


# --- steps of the simulation -----------------------------------------------------------------------------


def _in_layer(gate: _Gate) -> bool:
    """Whether `_layer_matrices` can build the gate together with others: a constant or a one-angle gate."""
    return len(gate.qargs) == 1 and (gate.const is not None or gate.one_angle is not None)


def _layer_matrices(runs: list[list[_Gate]], lookup) -> tf.Tensor:
    """The product of each run of 1-qubit gates (one run per qubit, in time order), all runs at once: (m, 2, 2),
    or (batch, m, 2, 2) when an angle depends on the inputs. Every gate is A + cos(f theta) B + sin(f theta) C
    (a constant: A = its matrix, B = C = 0; a missing one in a shorter run: the identity), so the k-th gates
    of all runs are built by one set of ops over a stacked angle vector: a few large ops instead of a dozen
    small ones per gate, which is what a small circuit's step costs."""
    m, identity, zero = len(runs), np.eye(2, dtype=np.complex128), np.zeros((2, 2), np.complex128)
    total = None
    for k in range(max(len(run) for run in runs)):
        parts = [run[k] if k < len(run) else None for run in runs]
        forms, f = [], np.zeros(m)
        for j, gate in enumerate(parts):
            if gate is None or gate.const is not None:
                forms.append((identity if gate is None else gate.const, zero, zero))
                continue
            _, f[j], form, _ = gate.one_angle
            forms.append(form)
        a, b, c = (np.stack([form[i] for form in forms]) for i in range(3))
        angles = _stacked_angles(
            [(j, gate) for j, gate in enumerate(parts) if gate is not None and gate.const is None], m, lookup
        )
        if angles is None:
            matrix = tf.constant(a)
        else:
            cos = _complex(tf.cos(f * angles))[..., None, None]
            sin = _complex(tf.sin(f * angles))[..., None, None]
            matrix = cos * b + sin * c + a
        total = matrix if total is None else tf.linalg.matmul(matrix, total)
    return total


def _stacked_angles(gates: list[tuple[int, _Gate]], width: int, lookup, through: np.ndarray | None = None):
    """The angles of one-angle gates at their positions of a (..., width) vector (0 elsewhere), times `through`
    (a (width, k) constant) when given: (batch, ...) when one depends on the inputs, None when there are none.
    A Parameter is picked from the inputs or the weights by a 0/1 matmul (a dense gradient, unlike a gather;
    with `through` folded into it), expressions are stacked."""
    through = np.eye(width) if through is None else through
    direct = {"weight": [], "input": []}  # (position, column) of angles that are a Parameter
    shared, per_sample = [], []  # (position, angle tensor) of expressions
    for j, gate in gates:
        theta, _, _, parameter = gate.one_angle
        if parameter is not None:
            kind, column = lookup.index[parameter]
            direct[kind].append((j, column))
        else:
            (per_sample if gate.per_sample else shared).append((j, tf.cast(theta(lookup), tf.float64)))
    angles = None
    for kind, source in (("weight", lookup.w), ("input", lookup.x)):
        if direct[kind]:
            select = np.zeros((lookup.sizes[kind], width))
            for j, column in direct[kind]:
                select[column, j] = 1.0
            select = select @ through
            term = tf.linalg.matmul(source, select) if kind == "input" else tf.linalg.matvec(select.T, source)
            angles = term if angles is None else angles + term
    for found, axis in ((shared, 0), (per_sample, -1)):
        if found:
            select = np.zeros((len(found), width))
            select[np.arange(len(found)), [j for j, _ in found]] = 1.0
            select = select @ through
            values = tf.stack([t for _, t in found], axis=axis)
            term = tf.linalg.matmul(values, select) if axis else tf.linalg.matvec(select.T, values)
            angles = term if angles is None else angles + term
    return angles


class _OneQubitLayer:
    """Runs of 1-qubit gates on several qubits (they commute), their matrices built together by
    `_layer_matrices`, then applied qubit by qubit."""

    def __init__(self, n: int, runs: dict[int, list[_Gate]]):
        self.qubits = sorted(runs)
        self.runs = [runs[q] for q in self.qubits]
        self.views = [(-1, 2 ** (n - 1 - q), 2, 2**q) for q in self.qubits]
        self.dim = 2**n

    def apply(self, state, lookup):
        matrices = _layer_matrices(self.runs, lookup)
        per_sample = matrices.shape.rank == 4
        for j, view in enumerate(self.views):
            matrix = matrices[:, j, None] if per_sample else matrices[j]  # (batch, 1, 2, 2) broadcasts over blocks
            state = tf.reshape(tf.linalg.matmul(matrix, tf.reshape(state, view)), (-1, self.dim))
        return state


class _DenseLayer:
    """A `_OneQubitLayer` on a circuit of at most DENSE_QUBITS qubits, applied as one 2**n x 2**n matrix: the
    Kronecker product of its qubits' 2x2 matrices (the identity on the others), formed in numpy when they are
    constant, else with two ops per qubit (so only for a layer on every qubit); then one matmul, where qubit by
    qubit takes four ops per qubit. A small circuit's step costs per op, not per flop (a 64 x 64 matrix is
    still small)."""

    def __init__(self, n: int, runs: dict[int, list[_Gate]]):
        self.n, self.qubits = n, sorted(runs)
        self.runs = [runs[q] for q in self.qubits]
        self.const = None
        if all(gate.const is not None for run in self.runs for gate in run):
            self.const = self._kron([_fused(run).const for run in self.runs], np)

    def _kron(self, matrices, xp):
        """The Kronecker product over qubits n-1 ... 0 (qubit 0 is the fastest-varying index) of the layer's
        matrices (a list of (..., 2, 2)) and identities."""
        given = dict(zip(self.qubits, matrices))
        total = None
        for q in range(self.n):
            m = given.get(q, np.eye(2, dtype=np.complex128))
            if total is None:
                total = m
                continue
            d = total.shape[-1]
            outer = m[..., :, None, :, None] * total[..., None, :, None, :]  # [a, i, c, j] = m[a, c] total[i, j]
            total = xp.reshape(outer, (-1, 2 * d, 2 * d) if len(outer.shape) == 5 else (2 * d, 2 * d))
        return total

    def apply(self, state, lookup):
        if self.const is not None:
            return tf.linalg.matmul(state, self.const, transpose_b=True)
        matrices = _layer_matrices(self.runs, lookup)  # (m, 2, 2) or (batch, m, 2, 2)
        kron = self._kron(tf.unstack(matrices, axis=-3), tf)
        if kron.shape.rank == 3:  # per sample
            return tf.linalg.matvec(kron, state)
        return tf.linalg.matmul(state, kron, transpose_b=True)


class _Permutation:
    """psi'[i] = phase[i] psi[source[i]]: a run of constant permutations with phases (`_PhaseBlock`)."""

    def __init__(self, source: np.ndarray, phase: np.ndarray):
        self.source, self.phase = source, phase

    def apply(self, state, lookup):
        if not np.array_equal(self.source, np.arange(len(self.source))):
            state = tf.gather(state, self.source, axis=1)
        if not np.all(self.phase == 1):
            state = state * self.phase
        return state


class _PhaseBlock:
    """A run of constant permutations with phases (x, cx, swap, cz, ccx, rz(0.3), ...) and diagonal gates with
    angles (p, rz, cp, crz, rzz), collected at compile time and applied as one step: the run maps

        psi'[i] = F[i] exp(i sum_k theta_k R[k, i]) psi[source[i]]

    with F a constant phase, source the run's permutation, theta_k the k-th angle and R[k, i] what gate k adds
    to the phase of basis state i: its slope on the local state its qubits hold at that point of the run (for
    cx and p the parity over the run's input bits, the phase polynomial; rz's entries exp(-+ i theta / 2) keep
    their global phase). A permutation after a diagonal re-indexes F and R; a diagonal after a permutation
    adds its row. An angle that is a polynomial in its parameters (`_polynomial`: x, 2 x, pi - x,
    2 (pi - x)(pi - y)) splits into one row per monomial, and rows of one monomial are summed: constant terms
    fold into F, linear ones into one matrix per kind of parameter, and the block's products of one degree
    are formed together; any other expression is one row of its own. The step is then a few matmuls of the
    angles into the phases, one complex exponential, one multiply and, if the permutation is not the
    identity, one gather, however long the run."""

    def __init__(self, n: int):
        self.n, self.dim = n, 2**n
        self.source = np.arange(self.dim)
        self.factor = np.ones(self.dim, np.complex128)
        self.terms: dict[tuple[Parameter, ...], np.ndarray] = {}  # monomial -> its row (() the constant)
        self.expressions: list[tuple[Callable, bool, np.ndarray]] = []  # (angle, per sample, row)
        self.gates = 0

    def add(self, gate: _Gate) -> None:
        self.gates += 1
        if gate.const is not None:
            source, phase = _monomial(gate.const, gate.qargs, self.n)
            self.source, self.factor = self.source[source], phase * self.factor[source]
            self.terms = {monomial: row[source] for monomial, row in self.terms.items()}
            self.expressions = [(angle, batch, row[source]) for angle, batch, row in self.expressions]
            return
        u, slope, polynomial = gate.phase
        index = np.arange(self.dim)
        local = sum(((index >> q) & 1) << j for j, q in enumerate(gate.qargs))
        self.factor = self.factor * u[local]
        row = slope[local]
        if polynomial is None:
            self.expressions.append((gate.one_angle[0], gate.per_sample, row))
            return
        for monomial, coefficient in polynomial.items():
            self.terms[monomial] = self.terms.get(monomial, 0.0) + coefficient * row

    def step(self, index: dict[Parameter, tuple[str, int]], sizes: dict[str, int]):
        """The run as one step: a `_Permutation` when no angle enters it, else a `_Phases`."""
        factor = self.factor * np.exp(1j * self.terms.get((), 0.0))
        if not self.expressions and all(monomial == () for monomial in self.terms):
            return _Permutation(self.source, factor)
        linear = {kind: np.zeros((size, self.dim)) for kind, size in sizes.items()}
        products: dict[tuple[str, int], list] = {}  # (source, degree) -> [(columns, row)]
        for monomial, row in self.terms.items():
            kinds = {index[p][0] for p in monomial}
            if len(monomial) == 1:
                kind, column = index[monomial[0]]
                linear[kind][column] += row
            elif len(monomial) > 1:  # columns of the source: x, w, or x then w side by side
                kind = kinds.pop() if len(kinds) == 1 else "both"
                shift = {"input": 0, "weight": sizes["input"] if kind == "both" else 0}
                columns = [shift[index[p][0]] + index[p][1] for p in monomial]
                products.setdefault((kind, len(monomial)), []).append((columns, row))
        linear = {kind: m for kind, m in linear.items() if np.any(m)}
        width = {"input": sizes["input"], "weight": sizes["weight"], "both": sizes["input"] + sizes["weight"]}
        selected = []  # (source, [0/1 matrix picking each monomial's t-th factor], rows)
        for (kind, degree), found in products.items():
            picks = [np.zeros((width[kind], len(found))) for _ in range(degree)]
            for j, (columns, _) in enumerate(found):
                for t, column in enumerate(columns):
                    picks[t][column, j] = 1.0
            selected.append((kind, picks, np.stack([row for _, row in found])))
        return _Phases(self.source, factor, linear, selected, self.expressions)


class _Phases:
    """A `_PhaseBlock` with angles: psi'[i] = factor[i] exp(i phase[i]) psi[source[i]], the phase a sum of
    matmuls into 2**n columns: of the inputs and of the weights (linear terms), of products of their columns
    (each factor picked by a 0/1 matmul, whose gradient stays dense), and of other expressions."""

    def __init__(self, source, factor, linear: dict[str, np.ndarray], products: list, expressions):
        self.source = None if np.array_equal(source, np.arange(len(source))) else source
        self.factor = None if np.all(factor == 1.0) else factor
        self.linear, self.products = linear, products
        # expressions of the inputs (each a (batch,) tensor) and of the weights only (a scalar): (angles, rows)
        self.expressions = {}
        for per_sample in (True, False):
            if found := [(angle, row) for angle, batch, row in expressions if batch == per_sample]:
                self.expressions[per_sample] = ([a for a, _ in found], np.stack([row for _, row in found]))

    def apply(self, state, lookup):
        terms = []

        def add(values, rows, per_sample: bool) -> None:  # (batch, k) or (k,) values through (k, 2**n) rows
            terms.append(tf.linalg.matmul(values, rows) if per_sample else tf.linalg.matvec(rows, values, True))

        if "input" in self.linear:
            add(lookup.x, self.linear["input"], True)
        if "weight" in self.linear:
            add(lookup.w, self.linear["weight"], False)
        for kind, picks, rows in self.products:
            if kind == "both":
                w = tf.broadcast_to(lookup.w, tf.stack([tf.shape(lookup.x)[0], tf.size(lookup.w)]))
                values = tf.concat([lookup.x, w], axis=1)
            else:
                values = lookup.x if kind == "input" else lookup.w
            per_sample = kind != "weight"
            factors = [tf.linalg.matmul(values, pick) if per_sample else tf.linalg.matvec(pick, values, True)
                       for pick in picks]  # fmt: skip
            product = factors[0]
            for factor in factors[1:]:
                product = product * factor
            add(product, rows, per_sample)
        for per_sample, (angles, rows) in self.expressions.items():
            add(tf.stack([tf.cast(angle(lookup), tf.float64) for angle in angles], axis=-1), rows, per_sample)
        phase = terms[0]
        for term in terms[1:]:
            phase = phase + term  # (batch, 2**n) + (2**n,) broadcasts
        factor = tf.exp(tf.complex(tf.zeros_like(phase), phase))
        if self.factor is not None:
            factor = factor * self.factor
        if self.source is not None:
            state = tf.gather(state, self.source, axis=1)
        return state * factor


class _OneQubit:
    def __init__(self, n: int, gate: _Gate):
        (q,) = gate.qargs
        self.view = (-1, 2 ** (n - 1 - q), 2, 2**q)
        self.gate, self.dim = gate, 2**n

    def apply(self, state, lookup):
        matrix = self.gate.matrix(lookup)
        if self.gate.per_sample:
            matrix = matrix[:, None]  # (batch, 1, 2, 2) broadcasts over the 2**(n-1-q) blocks
        return tf.reshape(tf.linalg.matmul(matrix, tf.reshape(state, self.view)), (-1, self.dim))


class _TwoQubit:
    def __init__(self, n: int, gate: _Gate):
        lo, hi = gate.qargs
        self.shape = (-1, 2 ** (n - 1 - hi), 2, 2 ** (hi - lo - 1), 2, 2**lo)
        self.gate, self.dim = gate, 2**n

    def apply(self, state, lookup):
        matrix = self.gate.matrix(lookup)
        # bring (b_hi, b_lo) to the last axes, act with the 4x4 matrix there, and put them back
        view = tf.transpose(tf.reshape(state, self.shape), (0, 1, 3, 5, 2, 4))
        view_shape = tf.shape(view)
        pairs = tf.reshape(view, (tf.shape(state)[0], -1, 4))
        pairs = tf.linalg.matmul(pairs, matrix, transpose_b=True)
        view = tf.reshape(pairs, view_shape)
        return tf.reshape(tf.transpose(view, (0, 1, 4, 2, 5, 3)), (-1, self.dim))


class _Multiplexed:
    """A run of Ry gates on one target qubit t and CX gates from other qubits onto t, with nothing else between
    them: a uniformly controlled Ry, which is what amplitude (Mottonen) state preparation is made of (004's
    load: 63 Ry and 62 CX in six such runs). For each configuration j of the run's control bits the run is

        X^p_j Ry(phi_j) on t,   phi_j = sum_r S[j, r] theta_r,

    because X Ry(a) X = Ry(-a): S[j, r] = -1 when an odd number of the CX before Ry r fire for j, else +1, and
    p_j is the parity of all the CX that fire. Applied as psi'[i] = A[i] psi[i] + B[i] psi[i ^ 2**t], with A and
    B entries +-cos, +-sin of phi_{j(i)} / 2: about twenty ops for the whole run, where gate by gate each Ry
    is its own matrix step and each CX a gather (a 32-Ry level of the load: ~400 ops a pass). Its angles are
    Parameters or expressions, like `_layer_matrices`'s; the matrices are real, so is the arithmetic."""

    def __init__(self, n: int, target: int, gates: list[_Gate]):
        controls = sorted({q for gate in gates if len(gate.qargs) == 2 for q in gate.qargs if q != target})
        rys = [gate for gate in gates if len(gate.qargs) == 1]
        configs = np.arange(2 ** len(controls))
        parity = np.zeros(len(configs), dtype=int)
        signs = np.zeros((len(rys), len(configs)))  # S transposed: angles (.., R) @ signs -> phi (.., 2**k)
        r = 0
        for gate in gates:
            if len(gate.qargs) == 1:
                signs[r] = np.where(parity == 1, -1.0, 1.0)
                r += 1
            else:
                (control,) = [q for q in gate.qargs if q != target]
                parity ^= (configs >> controls.index(control)) & 1
        index = np.arange(2**n)
        config_of = sum(((index >> q) & 1) << m for m, q in enumerate(controls))
        bit, fires = (index >> target) & 1, parity[config_of] == 1
        sign = np.where(bit == 0, 1.0, -1.0)
        # M = Ry(phi) = [[c, -s], [s, c]] or X Ry(phi) = [[s, c], [c, -s]]; A[i] = M[b, b], B[i] = M[b, 1 - b]
        self.a_cos, self.a_sin = np.where(fires, 0.0, 1.0), np.where(fires, sign, 0.0)
        self.b_cos, self.b_sin = np.where(fires, 1.0, 0.0), np.where(fires, 0.0, -sign)
        self.config_of, self.partner = config_of, index ^ (1 << target)
        self.half_signs = signs / 2  # Ry's f = 1/2: its matrix reads cos and sin of theta / 2
        self.rys = rys

    def apply(self, state, lookup):
        phi = _stacked_angles(list(enumerate(self.rys)), len(self.rys), lookup, through=self.half_signs)
        cos = tf.gather(tf.cos(phi), self.config_of, axis=-1)  # (batch, 2**n) or (2**n,)
        sin = tf.gather(tf.sin(phi), self.config_of, axis=-1)
        a = _complex(cos * self.a_cos + sin * self.a_sin)
        b = _complex(cos * self.b_cos + sin * self.b_sin)
        return a * state + b * tf.gather(state, self.partner, axis=1)


class _GlobalPhase:
    def __init__(self, angle):
        self.angle = angle

    def apply(self, state, lookup):
        phi = self.angle(lookup)
        return state * tf.exp(tf.complex(tf.zeros_like(phi), phi))[..., None]


class _ProductState:
    """The state after the 1-qubit gates that precede every multi-qubit gate: a Kronecker product of per-qubit
    2-vectors; constant gates at the start of a qubit's list are folded in numpy at compile time."""

    def __init__(self, per_qubit: list[list[_Gate]], together: bool = True):
        self.start, self.rest = [], []
        for gates in per_qubit:
            vector = np.array([1, 0], dtype=np.complex128)
            while gates and gates[0].const is not None:
                vector = gates[0].const @ vector
                gates = gates[1:]
            self.start.append(vector)
            self.rest.append(gates)
        # together: every qubit's remaining gates built at once (`_layer_matrices`) where they allow it
        together = together and sum(map(bool, self.rest)) > 1
        self.together = together and all(_in_layer(g) for gates in self.rest for g in gates)

    def state(self, lookup, batch):
        vectors = self.start
        if self.together:
            stacked = tf.linalg.matvec(_layer_matrices(self.rest, lookup), np.stack(self.start))  # (..., n, 2)
            vectors = tf.unstack(stacked, axis=-2)
        product = np.ones(1, dtype=np.complex128)
        for vector, gates in zip(vectors, self.rest):  # qubit 0 first: it is the fastest-varying bit
            for gate in [] if self.together else gates:
                vector = tf.linalg.matvec(gate.matrix(lookup), vector)
            if isinstance(vector, np.ndarray) and isinstance(product, np.ndarray):
                product = np.kron(vector, product)
            else:
                outer = tf.convert_to_tensor(vector)[..., :, None] * tf.convert_to_tensor(product)[..., None, :]
                product = tf.reshape(outer, (-1, 2 * product.shape[-1]) if outer.shape.rank == 3 else (-1,))
        return tf.broadcast_to(product, tf.stack([batch, product.shape[-1]]))


# --- the compiled circuit --------------------------------------------------------------------------------


class CompiledCircuit:
    """A Qiskit circuit checked and turned into TF steps; see the module docstring for the conventions.

    circuit: the QuantumCircuit (the same object that is drawn and run on Aer).
    inputs: the per-sample parameters in data-column order (a ParameterVector or a list of Parameters).
    weights: the trainable parameters in weight-vector order.
    fuse: apply each qubit's runs of 1-qubit gates as one matrix (see `_plan`); False is the gate-by-gate
        reference.
    Raises ValueError, before any simulation, on an unsupported gate, a parameter that is neither input nor
    weight, or a measurement followed by another gate on the same qubit.
    """

    def __init__(
        self, circuit: QuantumCircuit, inputs: Iterable[Parameter], weights: Iterable[Parameter], fuse: bool = True
    ):
        self.circuit = circuit
        self.num_qubits = n = circuit.num_qubits
        self.input_params = tuple(inputs)
        self.weight_params = tuple(weights)
        self._index = _parameter_index(circuit, self.input_params, self.weight_params)
        by_name = {p.name: p for p in self._index}
        input_set = set(self.input_params)

        gates, measured = [], {}
        for position, instruction in enumerate(circuit.data):
            operation = instruction.operation
            qargs = tuple(circuit.find_bit(q).index for q in instruction.qubits)
            where = f"instruction {position} ('{operation.name}' on qubits {list(qargs)})"
            if operation.name not in SUPPORTED_GATES:
                raise ValueError(
                    f"{where} is not supported by the engine; supported: {', '.join(SUPPORTED_GATES)} "
                    "(a composite gate can be expanded with circuit.decompose())"
                )
            if late := [q for q in qargs if q in measured and operation.name != "barrier"]:
                raise ValueError(f"{where} acts on qubit(s) {late} after their measurement; measure only at the end")
            if operation.name == "measure":
                measured[qargs[0]] = circuit.find_bit(instruction.clbits[0]).index
                continue
            if operation.name in IGNORED or operation.name == "id":
                continue
            gates.append(_make_gate(operation, qargs, by_name, input_set, where))
        # (qubit, clbit) pairs, in clbit order
        self.measured_qubits = tuple(sorted(measured.items(), key=lambda pair: pair[1]))
        sizes = {"input": len(self.input_params), "weight": len(self.weight_params)}
        self._steps = _plan(gates, n, self._index, sizes, fuse)
        phase = circuit.global_phase
        if isinstance(phase, ParameterExpression) and phase.parameters:
            evaluate, _ = _angle(phase, by_name, "the circuit's global phase")
            self._steps.append(_GlobalPhase(evaluate))
        elif float(phase) != 0.0:
            self._steps.append(_Permutation(np.arange(2**n), np.full(2**n, np.exp(1j * float(phase)))))

    # --- running ---

    def _lookup(self, x: tf.Tensor, w: tf.Tensor) -> ParameterLookup:
        columns = {}

        def lookup(parameter: Parameter) -> tf.Tensor:
            if parameter not in columns:
                kind, j = self._index[parameter]
                columns[parameter] = x[:, j] if kind == "input" else w[j]
            return columns[parameter]

        # for `_layer_matrices`: several angles read by one matmul
        lookup.x, lookup.w, lookup.index = x, w, self._index
        lookup.sizes = {"input": len(self.input_params), "weight": len(self.weight_params)}
        return lookup

    def _check(self, x, w) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(x, tf.float64)
        w = tf.cast(w, tf.float64)
        if x.shape.rank != 2:
            raise ValueError(f"inputs must have shape (batch, {len(self.input_params)}), got {x.shape}")
        if x.shape[-1] is not None and x.shape[-1] != len(self.input_params):
            raise ValueError(
                f"the data has {x.shape[-1]} columns but the circuit declares {len(self.input_params)} input parameters"
            )
        if w.shape.rank != 1 or (w.shape[0] is not None and w.shape[0] != len(self.weight_params)):
            raise ValueError(
                f"the weights have shape {w.shape} but the circuit declares {len(self.weight_params)} weight parameters"
            )
        return x, w

    def statevector(self, x, w) -> tf.Tensor:
        """(batch, 2**n) complex128 final states for inputs x (batch, k) and weights w (m,)."""
        x, w = self._check(x, w)
        lookup = self._lookup(x, w)
        product, steps = self._steps[0], self._steps[1:]
        state = product.state(lookup, tf.shape(x)[0])
        for step in steps:
            state = step.apply(state, lookup)
        return state

    def probabilities(self, x, w) -> tf.Tensor:
        """(batch, 2**n) float64 outcome probabilities of measuring every qubit, index sum_q b_q 2**q."""
        return _probabilities(self.statevector(x, w))

    def expectations(self, x, w, observables: PauliObservables | Sequence) -> tf.Tensor:
        """(batch, n_observables) float64 expectation values <psi|O|psi>."""
        if not isinstance(observables, PauliObservables):
            observables = PauliObservables(observables, self.num_qubits)
        return observables.from_state(self.statevector(x, w))


def compile_circuit(
    circuit: QuantumCircuit, inputs: Iterable[Parameter], weights: Iterable[Parameter], fuse: bool = True
):
    """Check `circuit` and compile it for the engine (see `CompiledCircuit`)."""
    return CompiledCircuit(circuit, inputs, weights, fuse)


def _parameter_index(circuit, inputs: tuple, weights: tuple) -> dict[Parameter, tuple[str, int]]:
    """parameter -> ("input" | "weight", column); every circuit parameter must be one or the other."""
    index: dict[Parameter, tuple[str, int]] = {}
    for kind, parameters in (("input", inputs), ("weight", weights)):
        for j, parameter in enumerate(parameters):
            if not isinstance(parameter, Parameter):
                raise TypeError(f"{kind} {j} is {parameter!r}, not a qiskit Parameter")
            if parameter in index:
                raise ValueError(f"parameter {parameter.name} is declared twice (as {index[parameter][0]} and {kind})")
            index[parameter] = (kind, j)
    if free := sorted(p.name for p in circuit.parameters if p not in index):
        raise ValueError(
            f"the circuit's parameter(s) {', '.join(free)} are neither inputs nor weights; declare each as one"
        )
    return index


def _plan(gates: list[_Gate], n: int, index: dict, sizes: dict[str, int], fuse: bool = True) -> list:
    """The product-state prefix, then the remaining gates with runs of constant permutations composed.

    fuse: each qubit's 1-qubit gates are held back until a multi-qubit gate touches that qubit (gates on other
    qubits commute with them) and applied as one 2x2 matrix, their product; fewer, larger steps, because a
    small circuit's step costs per op, not per flop. When one qubit's run must be applied, every held-back
    run is, so that the multi-qubit permutations after them still compose into one (flushing only the touched
    qubits would split a CX ladder at each qubit). Diagonal gates with angles join the constant permutations
    around them in one `_PhaseBlock` (a CX-P-CX ladder is one elementwise multiply), and a qubit's run that
    ends in diagonal gates after constant ones leaves those to the block (`_split_tail`), so that what
    remains of the run is constant. False applies every gate as written, composing only the constant
    permutations (the reference the tests compare the fused plan with)."""
    first_multi = next((k for k, gate in enumerate(gates) if len(gate.qargs) > 1), len(gates))
    per_qubit: list[list[_Gate]] = [[] for _ in range(n)]
    for gate in gates[:first_multi]:
        per_qubit[gate.qargs[0]].append(gate)
    tails = []
    if fuse:
        for q, run in enumerate(per_qubit):
            per_qubit[q], tail = _split_tail(run)
            tails += tail
    steps: list = [_ProductState(per_qubit, together=fuse)]
    pending: dict[int, list[_Gate]] = {}
    block = [_PhaseBlock(n)]  # the run being collected (a list, so the helpers below can replace it)

    def close() -> None:
        if block[0].gates:
            steps.append(block[0].step(index, sizes))
            block[0] = _PhaseBlock(n)

    def add(gate: _Gate) -> None:
        monomial = _monomial(gate.const, gate.qargs, n) if gate.const is not None else None
        if monomial is not None or (fuse and gate.phase is not None):
            block[0].add(gate)
            return
        close()
        if len(gate.qargs) == 1:
            steps.append(_OneQubit(n, gate))
        elif len(gate.qargs) == 2:
            steps.append(_TwoQubit(n, gate))
        else:
            raise ValueError(f"{len(gate.qargs)}-qubit gates are supported only as permutations (ccx, cswap)")

    def flush(qubits) -> None:
        runs = {q: run for q in sorted(qubits) if (run := pending.pop(q, None))}
        layer, tails = {}, []
        for q, run in runs.items():
            run, tail = _split_tail(run)
            tails += tail
            if not run:
                continue
            gate = _fused(run)
            monomial = gate.const is not None and _monomial(gate.const, gate.qargs, n) is not None
            if monomial or not all(map(_in_layer, run)):
                add(gate)  # a permutation (composed with its neighbours), or a run with a u gate
            else:
                layer[q] = run
        constant = all(gate.const is not None for run in layer.values() for gate in run)
        if layer and n <= DENSE_QUBITS and (len(layer) == n or constant):  # no identity factor to build
            close()
            steps.append(_DenseLayer(n, layer))
        elif len(layer) > 1:
            close()
            steps.append(_OneQubitLayer(n, layer))
        else:
            for run in layer.values():
                add(_fused(run))
        for gate in tails:  # after every run's head: they commute with the other qubits' runs
            add(gate)

    for gate in tails:
        add(gate)
    k = first_multi
    while k < len(gates):
        gate = gates[k]
        if fuse and (found := _multiplexed_run(gates, k)) is not None:
            target, run = found
            if any(q in pending for g in run for q in g.qargs):
                flush(list(pending))
            close()
            steps.append(_Multiplexed(n, target, run))
            k += len(run)
            continue
        k += 1
        if fuse and len(gate.qargs) == 1:
            pending.setdefault(gate.qargs[0], []).append(gate)
            continue
        if any(q in pending for q in gate.qargs):
            flush(list(pending))
        add(gate)
    flush(list(pending))
    close()
    return steps


_RY_FORM = _one_angle_form(get_standard_gate_name_mapping()["ry"], ANGLE_GATES["ry"])
_CX = np.asarray(get_standard_gate_name_mapping()["cx"].to_matrix(), dtype=np.complex128)  # qargs (control, target)


def _is_ry(gate: _Gate) -> bool:
    return (
        gate.one_angle is not None
        and gate.one_angle[1] == ANGLE_GATES["ry"]
        and all(np.array_equal(m, r) for m, r in zip(gate.one_angle[2], _RY_FORM))
    )


def _cx_target(gate: _Gate) -> int | None:
    """The target of a constant 2-qubit gate that is a CX, else None."""
    if gate.const is None or len(gate.qargs) != 2:
        return None
    for control, target in (gate.qargs, gate.qargs[::-1]):
        if np.array_equal(gate.const, _ascending(_CX, (control, target))):
            return target
    return None


def _multiplexed_run(gates: list[_Gate], start: int) -> tuple[int, list[_Gate]] | None:
    """(target, gates) of the run of Ry on one qubit and CX onto it that starts at gates[start], when it is
    long enough (MULTIPLEXED_MIN_CX) for one `_Multiplexed` step to beat applying it gate by gate, else None."""
    first = gates[start]
    target = first.qargs[0] if _is_ry(first) else _cx_target(first)
    if target is None:
        return None
    end = start
    while end < len(gates) and (
        (_is_ry(gates[end]) and gates[end].qargs[0] == target) or _cx_target(gates[end]) == target
    ):
        end += 1
    run = gates[start:end]
    if sum(len(gate.qargs) == 2 for gate in run) < MULTIPLEXED_MIN_CX or not any(len(g.qargs) == 1 for g in run):
        return None
    return target, run


def _split_tail(run: list[_Gate]) -> tuple[list[_Gate], list[_Gate]]:
    """(head, tail) of one qubit's run of 1-qubit gates: the tail is its last diagonal gates (constant or with
    angles) when at least one has an angle and every gate before them is constant, so that they go to the
    phase block after the run and the head stays a constant matrix (H then P(2 x): H, and a phase row);
    otherwise (run, []), the diagonal gates staying in the run's 2x2 matrix, where they cost little."""
    k = len(run)
    while k and (run[k - 1].phase is not None or (run[k - 1].const is not None and _diagonal(run[k - 1].const))):
        k -= 1
    head, tail = run[:k], run[k:]
    if any(gate.phase is not None for gate in tail) and all(gate.const is not None for gate in head):
        return head, tail
    return run, []


def _diagonal(matrix: np.ndarray) -> bool:
    return not np.any(matrix - np.diag(np.diag(matrix)))


def _fused(run: list[_Gate]) -> _Gate:
    """One gate for a run of 1-qubit gates on one qubit, in time order: the product g_k ... g_2 g_1, with
    neighbouring constant matrices multiplied now."""
    if len(run) == 1:
        return run[0]
    parts: list[_Gate] = []
    for gate in run:
        if gate.const is not None and parts and parts[-1].const is not None:
            parts[-1] = _Gate(gate.qargs, const=gate.const @ parts[-1].const)
        else:
            parts.append(gate)
    if len(parts) == 1:
        return parts[0]

    def build(lookup):
        matrix = None
        for part in parts:
            m = part.matrix(lookup)
            m = tf.constant(m) if isinstance(m, np.ndarray) else m
            matrix = m if matrix is None else tf.linalg.matmul(m, matrix)  # (batch,) 2x2 broadcast
        return matrix

    return _Gate(run[0].qargs, build=build, per_sample=any(part.per_sample for part in parts))


def _probabilities(state: tf.Tensor) -> tf.Tensor:
    return tf.math.square(tf.math.real(state)) + tf.math.square(tf.math.imag(state))


# --- observables -----------------------------------------------------------------------------------------


def pauli_terms(observables: Sequence, num_qubits: int) -> list[tuple[int, str, float]]:
    """(observable index, Pauli label, real coefficient) for each term of each observable.

    Observables are SparsePauliOps (or what SparsePauliOp accepts, e.g. a label); the label's rightmost letter
    acts on qubit 0. Coefficients must be real (Hermitian observables).
    """
    terms = []
    for k, observable in enumerate(observables):
        observable = SparsePauliOp(observable).simplify(atol=0)
        if observable.num_qubits != num_qubits:
            raise ValueError(f"observable {k} acts on {observable.num_qubits} qubits, the circuit has {num_qubits}")
        for label, coefficient in observable.to_list():
            coefficient = complex(coefficient)
            if abs(coefficient.imag) > 1e-12 * max(1.0, abs(coefficient)):
                raise ValueError(f"observable {k} term {label} has a complex coefficient {coefficient}: not Hermitian")
            terms.append((k, label, coefficient.real))
    return terms


def _masks(label: str) -> tuple[int, int, int]:
    """(x mask: X or Y, z mask: Z or Y, number of Y) of a Pauli label, bit q = qubit q."""
    x = z = n_y = 0
    for q, letter in enumerate(reversed(label)):
        x |= (letter in "XY") << q
        z |= (letter in "ZY") << q
        n_y += letter == "Y"
    return x, z, n_y


def parity_signs(mask: int, num_qubits: int) -> np.ndarray:
    """(-1)**(number of bits of i in mask) for every basis index i: a Z string's eigenvalue on |i>."""
    return 1.0 - 2.0 * (np.bitwise_count(np.arange(2**num_qubits) & mask) % 2)


class PauliObservables:
    """A list of Pauli-sum observables, compiled to per-basis-state tables.

    A Pauli string P maps |i> to v(i) |i xor x> with v(i) = i**(#Y) (-1)**popcount(i & z) (x: X/Y positions,
    z: Z/Y positions), so <psi|P|psi> = sum_i conj(psi[i xor x]) v(i) psi[i]. Terms with x = 0 (Z strings)
    need only the probabilities; the others are grouped by x into one gather and one matmul each.
    """

    def __init__(self, observables: Sequence, num_qubits: int):
        self.num_qubits = n = num_qubits
        self.count = len(observables)
        self.diagonal = np.zeros((2**n, self.count))
        tables: dict[int, np.ndarray] = {}
        for k, label, coefficient in pauli_terms(observables, n):
            x, z, n_y = _masks(label)
            values = coefficient * (1j**n_y) * parity_signs(z, n)
            if x == 0:
                self.diagonal[:, k] += values.real  # no Y, so the values are real
            else:
                tables.setdefault(x, np.zeros((2**n, self.count), dtype=np.complex128))[:, k] += values
        self.flips = [(np.arange(2**n) ^ x, table) for x, table in sorted(tables.items())]

    def from_probabilities(self, probabilities: tf.Tensor) -> tf.Tensor:
        if self.flips:
            raise ValueError("these observables have X or Y terms: their values need the state, not probabilities")
        return tf.linalg.matmul(tf.cast(probabilities, tf.float64), self.diagonal)

    def from_state(self, state: tf.Tensor) -> tf.Tensor:
        values = tf.linalg.matmul(_probabilities(state), self.diagonal)
        for source, table in self.flips:
            overlap = tf.math.conj(tf.gather(state, source, axis=1)) * state
            values += tf.math.real(tf.linalg.matmul(overlap, table))
        return values


# --- the Keras layer -------------------------------------------------------------------------------------


class CircuitLayer(keras.layers.Layer):
    """A Keras 3 layer (TensorFlow backend) that runs a Qiskit circuit exactly and owns its weights.

    circuit, inputs, weights: as in `CompiledCircuit`; the layer's input is (batch, len(inputs)).
    observables: SparsePauliOps (or labels) for output="expectations" -> (batch, n_observables);
        output="probabilities" -> (batch, 2**n) in Qiskit's index order.
    weight_initializer: a Keras initializer (name or object) or an array of initial values; default
        uniform on [-1, 1], as qiskit-machine-learning's TorchConnector.
    seed: seed of the default initializer.
    input_gradients: False stops the gradient at the layer's input, so layers before it are not trained by
        the circuit's loss (qiskit-machine-learning's default for its QNNs).
    A circuit without weight parameters gets an empty, non-trainable `circuit_weights` (TorchConnector's
    empty weight tensor): the layer then trains nothing itself, and with input_gradients=False nothing
    before it either.
    The circuit is simulated in complex128 with float64 weights; the output is cast to the layer's dtype
    (Keras' floatx, float32, unless dtype="float64" is given). Inputs are not autocast to float32 on the way in.
    """

    def __init__(
        self,
        circuit: QuantumCircuit,
        inputs: Iterable[Parameter],
        weights: Iterable[Parameter],
        observables: Sequence | None = None,
        output: str = "expectations",
        weight_initializer=None,
        seed: int | None = None,
        input_gradients: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.engine = compile_circuit(circuit, inputs, weights)
        if output not in ("expectations", "probabilities"):
            raise ValueError(f"output must be 'expectations' or 'probabilities', got {output!r}")
        if output == "expectations" and not observables:
            raise ValueError("output='expectations' needs observables (SparsePauliOps)")
        self.output_kind = output  # not .output, which Keras layers already have
        self.observables = PauliObservables(observables, self.engine.num_qubits) if observables else None
        self.input_gradients = input_gradients
        if weight_initializer is None:
            weight_initializer = keras.initializers.RandomUniform(-1.0, 1.0, seed=seed)
        elif isinstance(weight_initializer, (np.ndarray, list, tuple)):
            initial = np.asarray(weight_initializer, dtype=np.float64)
            if initial.shape != (len(self.engine.weight_params),):
                raise ValueError(
                    f"{initial.shape[0] if initial.ndim else 0} initial weights given, "
                    f"the circuit declares {len(self.engine.weight_params)} weight parameters"
                )

            def weight_initializer(shape, dtype=None):
                return keras.ops.convert_to_tensor(initial, dtype=dtype)

        self.weight_initializer = weight_initializer

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.engine.input_params):
            raise ValueError(
                f"the layer receives {input_shape[-1]} features but the circuit declares "
                f"{len(self.engine.input_params)} input parameters"
            )
        self.circuit_weights = self.add_weight(
            shape=(len(self.engine.weight_params),),
            initializer=self.weight_initializer,
            dtype="float64",  # angles in float64 so the simulation stays exact; the optimizer handles the dtype
            name="circuit_weights",
            # a circuit without weight parameters still gets its (empty) variable, so every layer has one and
            # saved weights keep one layout; it is not trainable, so the optimiser does not ask for its gradient
            trainable=bool(self.engine.weight_params),
        )

    def call(self, x):
        x = tf.cast(x, tf.float64)
        if not self.input_gradients:
            x = tf.stop_gradient(x)
        w = tf.convert_to_tensor(self.circuit_weights)
        if self.output_kind == "probabilities":
            out = self.engine.probabilities(x, w)
        else:
            out = self.engine.expectations(x, w, self.observables)
        return tf.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        width = 2**self.engine.num_qubits if self.output_kind == "probabilities" else self.observables.count
        return (input_shape[0], width)


# --- compiling a training step: graph or XLA ---------------------------------------------------------------


class CompiledStep:
    """A step function run as a `tf.function`, with XLA (`jit_compile=True`) or without; see `compile_step`.

    mode: "xla" or "graph" once chosen (None before the first call); timings: what "auto" measured (seconds:
    trace, graph_step, xla_compile, xla_step), empty for an explicit choice.
    """

    def __init__(self, function: Callable, jit, steps: int | None):
        if jit not in JIT_CHOICES:
            raise ValueError(f"jit must be one of {JIT_CHOICES}, got {jit!r}")
        if jit == "auto" and (steps is None or steps < 1):
            raise ValueError("jit='auto' needs the run's step count (steps >= 1) to weigh XLA's compile time")
        self.function, self.jit, self.steps = function, jit, steps
        self.graph = tf.function(function)
        self.xla = tf.function(function, jit_compile=True)
        self.mode: str | None = None
        self.timings: dict[str, float] = {}
        self._run = None

    def __call__(self, *args, **kwargs):
        if self._run is not None:
            return self._run(*args, **kwargs)
        if self.jit is False:
            self.mode, self._run = "graph", self.graph
        elif self.jit is True:
            try:  # the first call compiles; a compile failure raises before the step changes any variable
                result = self.xla(*args, **kwargs)
            except tf.errors.OpError as error:
                self._fallback(error)
            else:
                self.mode, self._run = "xla", self.xla
                return result
        else:
            self._auto(args, kwargs)
        return self._run(*args, **kwargs)

    def _fallback(self, error: Exception) -> None:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        log.warning("XLA cannot compile %s (%s); running it as a plain tf.function", self._name(), message[:200])
        self.mode, self._run = "graph", self.graph

    def _name(self) -> str:
        return getattr(self.function, "__name__", "the step")

    def _auto(self, args, kwargs) -> None:
        """Time PROBE_STEPS graph steps and XLA's compile and PROBE_STEPS XLA steps on the first call's
        arguments, restore every variable the step touches, and pick the path of the shorter total
        (compile + steps x step time). The steps run here leave the variables as they were, so the run starts
        from the same state (random numbers drawn outside variables, e.g. by tf.random ops, would move on)."""
        began = time.perf_counter()
        concrete = self.graph.get_concrete_function(*args, **kwargs)
        self.timings["trace"] = time.perf_counter() - began
        # the variables it captures, and those passed to it as arguments or defaults (inputs, not captures)
        bound = inspect.signature(self.function).bind(*args, **kwargs)
        bound.apply_defaults()
        variables = list(concrete.variables)
        variables += [v for v in tf.nest.flatten(bound.arguments) if hasattr(v, "assign") and hasattr(v, "numpy")]
        variables = list({id(v): v for v in variables}.values())
        saved = [v.numpy() for v in variables]
        try:
            self.graph(*args, **kwargs)  # first execution costs (allocations) are not a step's
            self.timings["graph_step"] = self._time(self.graph, args, kwargs)
            if choose_jit(self.steps, self.timings) == "graph":  # too short a run to try XLA's compile
                self.mode, self._run = "graph", self.graph
                log.info("%s: graph for %d steps (%.2f ms/step, not worth an XLA compile)", self._name(),
                         self.steps, 1e3 * self.timings["graph_step"])  # fmt: skip
                return
            began = time.perf_counter()
            try:
                self.xla(*args, **kwargs)
            except tf.errors.OpError as error:
                self._fallback(error)
                return
            self.timings["xla_compile"] = time.perf_counter() - began
            self.timings["xla_step"] = self._time(self.xla, args, kwargs)
        finally:
            for variable, value in zip(variables, saved):
                variable.assign(value)
        self.mode = choose_jit(self.steps, self.timings)
        self._run = self.xla if self.mode == "xla" else self.graph
        graph_total = self.steps * self.timings["graph_step"]
        xla_total = self.timings["xla_compile"] + self.steps * self.timings["xla_step"]
        log.info(
            "%s: %s for %d steps (graph %.2f ms/step; XLA %.2f ms/step after %.1f s compile: %.1f s vs %.1f s)",
            self._name(), self.mode, self.steps, 1e3 * self.timings["graph_step"], 1e3 * self.timings["xla_step"],
            self.timings["xla_compile"], xla_total, graph_total,
        )  # fmt: skip

    @staticmethod
    def _time(function, args, kwargs) -> float:
        began = time.perf_counter()
        for _ in range(PROBE_STEPS):
            function(*args, **kwargs)  # CPU: TensorFlow returns when the step is done
        return (time.perf_counter() - began) / PROBE_STEPS


def choose_jit(steps: int, timings: dict[str, float]) -> str:
    """ "xla" or "graph" for a run of `steps` steps, from measured seconds: trace (the graph's tracing),
    graph_step, and once measured xla_compile and xla_step. Before XLA is measured: "graph" when the whole
    run at graph speed costs no more than one tracing (XLA's compile traces too, and then compiles), else
    "xla" (worth measuring). After: the path whose compile + steps x step time is shorter (the graph's
    tracing is paid either way, by the XLA path's fallback and by auto's own probe)."""
    if "xla_compile" not in timings:
        return "graph" if steps * timings["graph_step"] <= timings["trace"] else "xla"
    xla_total = timings["xla_compile"] + steps * timings["xla_step"]
    return "xla" if xla_total < steps * timings["graph_step"] else "graph"


def compile_step(function: Callable, jit="auto", steps: int | None = None) -> CompiledStep:
    """`function` (a training or evaluation step on tensors) as a `tf.function`, with or without XLA.

    jit True: XLA (`jit_compile=True`); False: a plain tf.function (graph); "auto": on the first call, time both
    on that call's arguments (PROBE_STEPS steps each, every variable the step touches restored afterwards) and
    keep the one whose compile + `steps` x step time is shorter (`choose_jit`), logged in one line. XLA pays
    when a run is long enough to repay its compile time (seconds to a minute and more for the larger
    circuits); Keras' model.fit leaves it off here, as it does whenever op determinism is on
    (`runtime.seed_tensorflow`). Where XLA cannot compile the function, it runs as the plain tf.function after
    one logged warning, never an error. Auto's choice depends on measured times, so on a loaded machine it may
    differ between reruns of a close case; XLA and graph results may differ in the last bits (fused kernels
    round differently), so a run that must rerun bit for bit fixes jit to True or False.
    """
    return CompiledStep(function, jit, steps)
