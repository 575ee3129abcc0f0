"""The circuit engine against independent references: states, probabilities and Pauli expectations vs
qiskit's Statevector; gradients vs the parameter-shift rule on Statevector; the Keras layer under model.fit;
the Aer shot helper vs exact values; and the errors for circuits the engine cannot run."""

import numpy as np
import pytest
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector, QuantumCircuit
from qiskit.circuit.library import get_standard_gate_name_mapping, real_amplitudes, zz_feature_map
from qiskit.quantum_info import SparsePauliOp, Statevector

from qtlmnist import quantum
from qtlmnist.runtime import seed_tensorflow
from qtlmnist.systems import engine, shots

TOL_VALUES = 1e-10
TOL_GRADIENTS = 1e-8


@pytest.fixture(scope="module", autouse=True)
def tf_runtime():
    """The same thread count and determinism as the other TensorFlow tests (it can be set only once)."""
    seed_tensorflow(0, 1)


# --- the circuits of the systems, and a random one over the whole gate set -------------------------------


def system_001():
    """Paradoxical7/QNN: one Ry(x_i) per qubit on 11 qubits, then real_amplitudes(11, reps=1, full)."""
    x = ParameterVector("x", 11)
    ansatz = real_amplitudes(11, reps=1, entanglement="full")
    circuit = QuantumCircuit(11)
    for q in range(11):
        circuit.ry(x[q], q)
    circuit.compose(ansatz, inplace=True)
    return circuit, list(x), list(ansatz.parameters), [SparsePauliOp("Z" + "I" * 10)]


def system_000():
    """Quantum-MNIST candidate: zz_feature_map(4) + real_amplitudes(4), measured (a SamplerQNN)."""
    feature_map, ansatz = zz_feature_map(4), real_amplitudes(4)
    circuit = feature_map.compose(ansatz)
    circuit.measure_all()
    observables = [SparsePauliOp("ZZII"), SparsePauliOp.from_list([("XIYI", 0.7), ("IZIZ", -0.4)])]
    return circuit, list(feature_map.parameters), list(ansatz.parameters), observables


def two_qubit():
    """zindaouinihed: angle encoding of 2 inputs, trainable Ry/Rz, a CNOT."""
    x, w = ParameterVector("x", 2), ParameterVector("w", 4)
    circuit = QuantumCircuit(2)
    circuit.ry(x[0], 0)
    circuit.rx(x[1], 1)
    circuit.ry(w[0], 0)
    circuit.rz(w[1], 1)
    circuit.cx(0, 1)
    circuit.ry(w[2], 0)
    circuit.rz(w[3], 1)
    return circuit, list(x), list(w), [SparsePauliOp("ZI"), SparsePauliOp("IX"), SparsePauliOp("YY")]


def six_qubit():
    """Re-uploading style on 6 qubits: a uniformly controlled Ry written as Ry(linear expression) + CX,
    controlled rotations in both qubit orders, u gates and a CNOT ring."""
    x, w = ParameterVector("x", 6), ParameterVector("w", 14)
    circuit = QuantumCircuit(6)
    for q in range(6):
        circuit.ry(x[q], q)
    for control, target in ((0, 1), (2, 3), (5, 4)):  # UCRy(a, b): Ry((a+b)/2) CX Ry((a-b)/2) CX
        a, b = x[control], x[target]
        circuit.ry((a + b) / 2, target)
        circuit.cx(control, target)
        circuit.ry((a - b) / 2, target)
        circuit.cx(control, target)
    circuit.cry(w[0], 0, 5)
    circuit.crz(w[1], 4, 1)
    circuit.crx(w[2], 2, 3)
    circuit.cp(w[3], 3, 0)
    for q in range(6):
        circuit.cx(q, (q + 2) % 6)
    circuit.u(w[4], w[5], w[6], 2)
    circuit.u(w[7] * x[0], w[8], w[9], 5)
    for q in range(4):
        circuit.rz(w[10 + q], q)
    observables = [SparsePauliOp("I" * (5 - q) + "Z" + "I" * q) for q in range(6)]
    return circuit, list(x), list(w), [*observables, SparsePauliOp("XIYZIX")]


def layers():
    """Layers of 1-qubit gates on every qubit between CX chains, per sample (inputs), shared (weights) and
    constant (H), and a constant layer on some qubits: each applied as one 8 x 8 matrix."""
    x, w = ParameterVector("x", 3), ParameterVector("w", 6)
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    for q in range(3):
        circuit.ry(x[q], q)
        circuit.rz(w[q] * x[q], q)
    circuit.cx(2, 0)
    for q in range(3):
        circuit.rx(w[3 + q], q)
    circuit.cx(0, 2)
    circuit.h([0, 1])
    circuit.s(1)
    circuit.cx(1, 2)
    circuit.h(range(3))
    return circuit, list(x), list(w), [SparsePauliOp("ZXI"), SparsePauliOp.from_list([("YIZ", 0.5), ("IYI", 1.0)])]


def random_circuit(seed, n=5, length=70):
    """Random gates over the engine's whole gate set; angles are numbers, Parameters or expressions."""
    rng = np.random.default_rng(seed)
    x, w = ParameterVector("x", 3), ParameterVector("w", 5)
    symbols = [*x, *w]

    def angle():
        a, b = rng.choice(len(symbols), 2)
        a, b = symbols[a], symbols[b]
        return [
            lambda: float(rng.uniform(-3, 3)),
            lambda: a,
            lambda: 2 * a * b - 0.3,
            lambda: (a + 1).sin() * 1.5 + b.cos(),
            lambda: a**2 / 3 - b,
            lambda: (a * a + 1).log() + (0.5 * b).exp(),
            lambda: (a / 5).arctan() + (0.1 * b).arcsin() - (0.1 * a).arccos(),
            lambda: (0.3 * a).tan() * b.abs(),
            lambda: 1.3 / (a * a + 2),
        ][rng.integers(9)]()

    circuit = QuantumCircuit(n, n)
    circuit.global_phase = 0.4 * w[0]
    gates = get_standard_gate_name_mapping()
    names = sorted(set(engine.SUPPORTED_GATES) - {"measure", "barrier"})
    sequence = [*rng.permutation(names), *rng.choice(names, length - len(names))]  # every gate at least once
    for step, name in enumerate(sequence):
        if step % 10 == 9:
            circuit.barrier()
        gate = gates[name]
        qubits = [int(q) for q in rng.choice(n, gate.num_qubits, replace=False)]
        getattr(circuit, gate.name)(*[angle() for _ in gate.params], *qubits)
    circuit.measure(range(n), range(n))
    observables = [SparsePauliOp("ZIIZI"), SparsePauliOp.from_list([("XYZIX", 0.5), ("IIYYI", 1.5), ("ZIIII", 1)])]
    return circuit, list(x), list(w), observables


FAMILIES = {
    "001": system_001,
    "000": system_000,
    "two_qubit": two_qubit,
    "layers": layers,
    "six_qubit": six_qubit,
    "random_1": lambda: random_circuit(1),
    "random_2": lambda: random_circuit(2),
}


def test_random_circuits_use_the_whole_gate_set():
    used = set()
    for seed in (1, 2):
        circuit = random_circuit(seed)[0]
        used |= {instruction.operation.name for instruction in circuit.data}
    assert used == set(engine.SUPPORTED_GATES)


# --- the independent reference: Statevector -------------------------------------------------------------


def bound(circuit, inputs, weights, x_row, w):
    values = {**dict(zip(inputs, x_row)), **dict(zip(weights, w))}
    return circuit.remove_final_measurements(inplace=False).assign_parameters(values), values


def random_values(inputs, weights, rows, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-2, 2, size=(rows, len(inputs))), rng.uniform(-2, 2, size=len(weights))


@pytest.mark.parametrize("family", FAMILIES)
def test_states_probabilities_and_expectations_match_statevector(family):
    circuit, inputs, weights, observables = FAMILIES[family]()
    compiled = engine.compile_circuit(circuit, inputs, weights)
    x, w = random_values(inputs, weights, rows=3, seed=7)
    states = compiled.statevector(x, w).numpy()
    probabilities = compiled.probabilities(x, w).numpy()
    expectations = compiled.expectations(x, w, observables).numpy()
    assert states.shape == probabilities.shape == (3, 2**circuit.num_qubits)
    assert states.dtype == np.complex128 and expectations.dtype == np.float64
    for row in range(3):
        reference = Statevector(bound(circuit, inputs, weights, x[row], w)[0])
        assert np.abs(states[row] - reference.data).max() <= TOL_VALUES  # global phase included
        assert np.abs(probabilities[row] - reference.probabilities()).max() <= TOL_VALUES
        exact = [reference.expectation_value(observable).real for observable in observables]
        assert np.abs(expectations[row] - exact).max() <= TOL_VALUES


# --- gradients: the parameter-shift rule on Statevector, with the chain rule through expressions --------

# Rotations exp(-i theta/2 P), phase gates and u's angles give f(theta) = a + b cos(theta) + c sin(theta):
# f' = [f(theta + pi/2) - f(theta - pi/2)] / 2. Controlled rotations add frequency 1/2, which the four-term
# rule covers: f' = c+ [f(+pi/2) - f(-pi/2)] - c- [f(+3pi/2) - f(-3pi/2)], c+- = (sqrt2 +- 1) / (4 sqrt2).
TWO_TERM = [(np.pi / 2, 0.5), (-np.pi / 2, -0.5)]
C_PLUS, C_MINUS = (np.sqrt(2) + 1) / (4 * np.sqrt(2)), (np.sqrt(2) - 1) / (4 * np.sqrt(2))
FOUR_TERM = [(np.pi / 2, C_PLUS), (-np.pi / 2, -C_PLUS), (3 * np.pi / 2, -C_MINUS), (-3 * np.pi / 2, C_MINUS)]
SHIFT_RULES = {name: FOUR_TERM if name in ("crx", "cry", "crz") else TWO_TERM for name in engine.ANGLE_GATES}
SHIFT_RULES["u"] = TWO_TERM


def angle_derivative(expression, parameter, values) -> float:
    """d(angle)/d(parameter) from Qiskit's own symbolic gradient."""
    if isinstance(expression, Parameter):
        return float(expression == parameter)
    if not isinstance(expression, ParameterExpression) or parameter not in expression.parameters:
        return 0.0
    derivative = expression.gradient(parameter)
    if isinstance(derivative, ParameterExpression):
        derivative = derivative.bind({p: values[p] for p in derivative.parameters}).numeric()
    return complex(derivative).real


def shift_gradient(circuit, inputs, weights, x_row, w, observable):
    """(d<O>/dw, d<O>/dx) for one sample, shifting each gate occurrence's angle in turn. `observable` is an
    operator, or a function of the Statevector that is an expectation (e.g. a linear mix of probabilities)."""
    if isinstance(observable, SparsePauliOp):  # (an operator is callable too: test its type)
        measure = lambda state: state.expectation_value(observable).real  # noqa: E731
    else:
        measure = observable
    base, values = bound(circuit, inputs, weights, x_row, w)
    symbolic = circuit.remove_final_measurements(inplace=False)
    gradient = dict.fromkeys([*inputs, *weights], 0.0)
    for position, instruction in enumerate(symbolic.data):
        for slot, expression in enumerate(instruction.operation.params):
            if not isinstance(expression, ParameterExpression) or not expression.parameters:
                continue
            derivative = 0.0
            for shift, coefficient in SHIFT_RULES[instruction.operation.name]:
                shifted = base.copy()
                operation = shifted.data[position].operation.to_mutable()
                operation.params[slot] = float(operation.params[slot]) + shift
                shifted.data[position] = shifted.data[position].replace(operation=operation)
                derivative += coefficient * measure(Statevector(shifted))
            for parameter in expression.parameters:
                gradient[parameter] += derivative * angle_derivative(expression, parameter, values)
    return np.array([gradient[p] for p in weights]), np.array([gradient[p] for p in inputs])


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_match_the_parameter_shift_rule(family):
    import tensorflow as tf

    circuit, inputs, weights, observables = FAMILIES[family]()
    compiled = engine.compile_circuit(circuit, inputs, weights)
    x_values, w_values = random_values(inputs, weights, rows=2, seed=3)
    mix = np.random.default_rng(5).normal(size=len(observables))  # one scalar from all observables
    x, w = tf.constant(x_values), tf.constant(w_values)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        loss = tf.reduce_sum(compiled.expectations(x, w, observables) * mix)
    grad_w, grad_x = tape.gradient(loss, w).numpy(), tape.gradient(loss, x).numpy()

    combined = sum((float(c) * o for c, o in zip(mix, observables)), SparsePauliOp("I" * circuit.num_qubits, 0))
    reference_w = np.zeros(len(weights))
    for row in range(len(x_values)):
        row_w, row_x = shift_gradient(circuit, inputs, weights, x_values[row], w_values, combined)
        reference_w += row_w
        assert np.abs(grad_x[row] - row_x).max() <= TOL_GRADIENTS
    assert np.abs(grad_w - reference_w).max() <= TOL_GRADIENTS
    assert np.abs(reference_w).max() > 1e-3  # the comparison is not between zeros


# --- conventions ---------------------------------------------------------------------------------------


def test_bit_order_x_on_qubit_0_is_index_1():
    circuit = QuantumCircuit(3)
    circuit.x(0)
    probabilities = engine.compile_circuit(circuit, [], []).probabilities(np.zeros((1, 0)), np.zeros(0)).numpy()
    np.testing.assert_array_equal(probabilities[0], np.eye(8)[1])


def test_z_on_qubit_10_reads_bit_10():
    theta = Parameter("theta")
    circuit = QuantumCircuit(11)
    circuit.ry(theta, 10)  # <Z_10> = cos(theta), every other qubit stays |0>
    compiled = engine.compile_circuit(circuit, [theta], [])
    x = np.array([[0.3], [2.0]])
    z10, z0 = SparsePauliOp("Z" + "I" * 10), SparsePauliOp("I" * 10 + "Z")
    values = compiled.expectations(x, np.zeros(0), [z10, z0]).numpy()
    np.testing.assert_allclose(values[:, 0], np.cos(x[:, 0]), atol=1e-14)
    np.testing.assert_allclose(values[:, 1], 1.0, atol=1e-14)
    probabilities = compiled.probabilities(x, np.zeros(0)).numpy()
    np.testing.assert_allclose(probabilities[:, 2**10], np.sin(x[:, 0] / 2) ** 2, atol=1e-14)


def test_z_strings_from_probabilities_match_statevector():
    circuit, inputs, weights, _ = system_000()
    x, w = random_values(inputs, weights, rows=2, seed=8)
    z_strings = [SparsePauliOp("ZIIZ"), SparsePauliOp.from_list([("IZZI", 0.3), ("ZIII", -1.2), ("IIII", 0.5)])]
    probabilities = engine.compile_circuit(circuit, inputs, weights).probabilities(x, w)
    values = engine.PauliObservables(z_strings, 4).from_probabilities(probabilities).numpy()
    for row in range(2):
        reference = Statevector(bound(circuit, inputs, weights, x[row], w)[0])
        assert np.abs(values[row] - [reference.expectation_value(o).real for o in z_strings]).max() <= TOL_VALUES
    with pytest.raises(ValueError, match="X or Y terms"):
        engine.PauliObservables([SparsePauliOp("XIII")], 4).from_probabilities(probabilities)


def test_measured_qubits_are_recorded_in_clbit_order():
    circuit = QuantumCircuit(3, 2)
    circuit.h(0)
    circuit.measure(2, 0)
    circuit.measure(0, 1)
    assert engine.compile_circuit(circuit, [], []).measured_qubits == ((2, 0), (0, 1))


# --- the Keras layer -------------------------------------------------------------------------------------


def hybrid_model(keras, input_gradients=True, dtype=None):
    """Dense(2) -> 2-qubit CircuitLayer (3 observables) -> Dense(1)."""
    circuit, inputs, weights, observables = two_qubit()
    features = keras.Input((3,))
    encoded = keras.layers.Dense(2, name="encoder")(features)
    layer = engine.CircuitLayer(
        circuit, inputs, weights, observables, seed=1, input_gradients=input_gradients, dtype=dtype, name="circuit"
    )
    head = keras.layers.Dense(1, name="head")(layer(encoded))
    return keras.Model(features, head), layer


def toy_data(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (np.sin(x[:, :1]) + 0.5 * x[:, 1:2]).astype(np.float32)


def test_layer_trains_under_model_fit_and_passes_gradients_upstream():
    import keras
    import tensorflow as tf

    model, layer = hybrid_model(keras)
    x, y = toy_data()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    before = layer.circuit_weights.numpy().copy()
    history = model.fit(x, y, batch_size=8, epochs=6, verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < 0.9 * loss[0]
    assert not np.allclose(layer.circuit_weights.numpy(), before)
    assert layer.circuit_weights.dtype == "float64"
    with tf.GradientTape() as tape:
        value = tf.reduce_mean((model(x) - y) ** 2)
    encoder = model.get_layer("encoder").kernel
    grads = tape.gradient(value, [encoder, layer.circuit_weights])
    assert np.abs(grads[0].numpy()).max() > 1e-4  # the classical layer before the circuit is trained too
    assert np.abs(grads[1].numpy()).max() > 1e-4


def test_layer_training_reruns_bitwise():
    import keras

    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model, _ = hybrid_model(keras)
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
        model.fit(*toy_data(), batch_size=8, epochs=2, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_layer_without_input_gradients_stops_them_and_still_trains_its_weights():
    import keras
    import tensorflow as tf

    model, layer = hybrid_model(keras, input_gradients=False)
    x, y = toy_data()
    with tf.GradientTape() as tape:
        value = tf.reduce_mean((model(x) - y) ** 2)
    grads = tape.gradient(value, [model.get_layer("encoder").kernel, layer.circuit_weights])
    assert grads[0] is None or np.all(grads[0].numpy() == 0)
    assert np.abs(grads[1].numpy()).max() > 1e-4


def test_layer_of_a_weightless_circuit_trains_the_layers_around_it_without_gradient_warnings(tmp_path):
    """A circuit with no weight parameters (seed 002's): the layer's variable is empty and not trainable, so
    fit asks no gradient of it (Keras would warn "Gradients do not exist" on every fit), the encoder before
    it trains through the circuit, and the weights file round-trips."""
    import warnings

    import keras

    x = ParameterVector("x", 2)
    circuit = QuantumCircuit(2)
    circuit.ry(x[0], 0)
    circuit.ry(x[1], 1)
    circuit.cx(0, 1)
    features = keras.Input((3,))
    encoded = keras.layers.Dense(2, name="encoder")(features)
    layer = engine.CircuitLayer(circuit, list(x), [], [SparsePauliOp("ZZ")], name="circuit")
    model = keras.Model(features, keras.layers.Dense(1, name="head")(layer(encoded)))
    assert layer.circuit_weights.shape == (0,) and not layer.circuit_weights.trainable
    assert layer.trainable_weights == [] and len(model.trainable_weights) == 4  # encoder and head only
    before = model.get_layer("encoder").get_weights()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(*toy_data(), batch_size=8, epochs=1, verbose=0)
    assert not [w for w in caught if "Gradients do not exist" in str(w.message)]
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_layer("encoder").get_weights()))
    model.save_weights(tmp_path / "weightless.weights.h5")
    model.load_weights(tmp_path / "weightless.weights.h5")


def test_layer_output_dtype_and_values_match_statevector():
    import keras

    circuit, inputs, weights, observables = two_qubit()
    x, w = random_values(inputs, weights, rows=4, seed=2)
    for dtype, tolerance in ((None, 1e-6), ("float64", TOL_VALUES)):
        layer = engine.CircuitLayer(circuit, inputs, weights, observables, weight_initializer=w, dtype=dtype)
        out = layer(x)
        assert out.dtype == (dtype or keras.config.floatx())
        for row in range(4):
            reference = Statevector(bound(circuit, inputs, weights, x[row], w)[0])
            exact = [reference.expectation_value(o).real for o in observables]
            assert np.abs(np.asarray(out[row], dtype=np.float64) - exact).max() <= tolerance
    probabilities = engine.CircuitLayer(circuit, inputs, weights, output="probabilities", weight_initializer=w)(x)
    assert tuple(probabilities.shape) == (4, 4)


def test_layer_weights_round_trip_through_weights_h5(tmp_path):
    import keras

    model, layer = hybrid_model(keras)
    model.save_weights(tmp_path / "hybrid.weights.h5")
    saved = layer.circuit_weights.numpy().copy()
    fresh, fresh_layer = hybrid_model(keras)
    fresh_layer.circuit_weights.assign(np.zeros_like(saved))
    fresh.load_weights(tmp_path / "hybrid.weights.h5")
    np.testing.assert_array_equal(fresh_layer.circuit_weights.numpy(), saved)


# --- shots on Aer ----------------------------------------------------------------------------------------


def test_aer_estimates_lie_within_5_sigma_of_exact_values():
    circuit, inputs, weights, _ = system_000()
    observables = [SparsePauliOp("ZIIZ"), SparsePauliOp("XXII"), SparsePauliOp("IYIX")]
    x, w = random_values(inputs, weights, rows=2, seed=4)
    n_shots = 100_000
    probabilities, expectations = shots.aer_estimates(
        circuit, inputs, weights, x, w, observables, shots=n_shots, seed=3
    )
    assert probabilities.shape == (2, 16) and expectations.shape == (2, 3)
    for row in range(2):
        reference = Statevector(bound(circuit, inputs, weights, x[row], w)[0])
        p = reference.probabilities()
        assert np.all(np.abs(probabilities[row] - p) <= 5 * np.sqrt(p * (1 - p) / n_shots) + 1e-12)
        exact = np.array([reference.expectation_value(o).real for o in observables])
        assert np.all(np.abs(expectations[row] - exact) <= 5 * np.sqrt((1 - exact**2) / n_shots) + 1e-12)


def test_aer_estimates_without_probabilities_measure_only_the_qubits_their_terms_read(monkeypatch):
    """probabilities=False: each basis circuit measures only its terms' qubits (001 reads one of 11), an
    identity term is 1 without a run, and the expectations still lie within 5 sigma of Statevector's."""
    circuit, inputs, weights, _ = system_000()
    observables = [SparsePauliOp("IIIZ"), SparsePauliOp(["IIII", "XIII"], [0.5, 2.0]), SparsePauliOp("IYIZ")]
    x, w = random_values(inputs, weights, rows=2, seed=4)
    measured = []
    original = shots.basis_circuit
    monkeypatch.setattr(
        shots, "basis_circuit", lambda c, b, m=None: measured.append((b, sorted(m))) or original(c, b, m)
    )
    n_shots = 100_000
    probabilities, expectations = shots.aer_estimates(
        circuit, inputs, weights, x, w, observables, shots=n_shots, seed=3, probabilities=False
    )
    # basis 0 (all Z) holds IIIZ and the identity: qubit 0 only; XIII opens XZZZ, which IYIZ's letters agree
    # with (Y on qubit 2, Z on 0), so they share XYZZ, read on qubits 0, 2 and 3
    assert probabilities is None and measured == [("ZZZZ", [0]), ("XYZZ", [0, 2, 3])]
    one = original(circuit, "ZZZZ", [0])
    assert one.num_clbits == 4 and one.count_ops()["measure"] == 1
    for row in range(2):
        reference = Statevector(bound(circuit, inputs, weights, x[row], w)[0])
        exact = np.array([reference.expectation_value(o).real for o in observables])
        sigma = np.array([1.0, 2.0, 1.0]) / np.sqrt(n_shots)
        assert np.all(np.abs(expectations[row] - exact) <= 5 * sigma)


@pytest.mark.parametrize("seed", [1, 2])
def test_aer_runs_the_whole_gate_set_and_agrees_with_statevector(seed):
    # Also guards the workaround for Aer binding parametrised 2-qubit gates wrongly (crx/cry as identity).
    circuit, inputs, weights, observables = random_circuit(seed)
    x, w = random_values(inputs, weights, rows=2, seed=4)
    n_shots = 20_000
    probabilities, expectations = shots.aer_estimates(circuit, inputs, weights, x, w, observables, n_shots, seed=1)
    for row in range(2):
        reference = Statevector(bound(circuit, inputs, weights, x[row], w)[0])
        p = reference.probabilities()
        assert np.all(np.abs(probabilities[row] - p) <= 5 * np.sqrt(p * (1 - p) / n_shots) + 1e-12)
        exact = np.array([reference.expectation_value(o).real for o in observables])
        bound_sigma = np.array([np.abs(o.coeffs).sum() for o in observables]) / np.sqrt(n_shots)  # |terms| <= 1
        assert np.all(np.abs(expectations[row] - exact) <= 5 * bound_sigma)


def test_controlled_rotations_on_aer_are_applied():
    w = ParameterVector("w", 3)
    circuit = QuantumCircuit(3)
    circuit.h([0, 1, 2])
    circuit.cry(w[0], 0, 1)
    circuit.crx(w[1], 2, 0)
    circuit.cp(w[2], 1, 2)
    circuit.h(2)
    values = np.array([2.0, -1.2, 2.5])
    exact = engine.compile_circuit(circuit, [], w).probabilities(np.zeros((1, 0)), values).numpy()[0]
    # a circuit without inputs still needs one row of (empty) data per experiment
    estimate, _ = shots.aer_estimates(circuit, [], w, np.zeros((1, 0)), values, shots=100_000, seed=2)
    assert np.all(np.abs(estimate[0] - exact) <= 5 * np.sqrt(exact * (1 - exact) / 100_000) + 1e-12)


def test_aer_counts_depend_only_on_seed_row_and_basis():
    circuit, inputs, weights, observables = system_000()
    x, w = random_values(inputs, weights, rows=7, seed=6)
    whole = shots.aer_estimates(circuit, inputs, weights, x, w, observables, shots=256, seed=9, chunk_size=100)
    chunked = shots.aer_estimates(circuit, inputs, weights, x, w, observables, shots=256, seed=9, chunk_size=3)
    tail = shots.aer_estimates(circuit, inputs, weights, x[4:], w, observables, shots=256, seed=9, first_row=4)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(whole, tail):
        np.testing.assert_array_equal(a[4:], b)


def test_aer_basis_0_reproduces_the_feature_stage_counts():
    # The paper's circuit through the generic helper: the same seeds give the same counts as aer_features.
    x = np.random.default_rng(0).uniform(size=(6, 5))
    circuit, theta = quantum.build_circuit(5)
    probabilities, _ = shots.aer_estimates(circuit, list(theta), [], quantum.angles(x), [], shots=512, seed=5)
    np.testing.assert_array_equal(probabilities, quantum.aer_features(x, shots=512, seed=5))


def test_measurement_bases_group_qubitwise_compatible_terms():
    bases, chosen = shots.measurement_bases(["ZIZ", "XIZ", "IYX", "XII", "IIY"], 3)
    assert bases[0] == "ZZZ" and chosen[0] == 0
    assert bases[chosen[1]][0] == "X" and bases[chosen[1]][2] == "Z"
    for label, k in zip(["ZIZ", "XIZ", "IYX", "XII", "IIY"], chosen):
        assert all(a == "I" or a == b for a, b in zip(label, bases[k]))


# --- circuits and data the engine must refuse, with a message naming the problem -------------------------


def test_unsupported_gate_is_named_with_its_position_and_the_supported_list():
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.reset(1)
    with pytest.raises(ValueError, match=r"instruction 1 \('reset' on qubits \[1\]\).*supported: barrier, ccx"):
        engine.compile_circuit(circuit, [], [])


def test_undeclared_parameter_is_named():
    a, b = Parameter("a"), Parameter("stray")
    circuit = QuantumCircuit(1)
    circuit.ry(a + b, 0)
    with pytest.raises(ValueError, match="stray are neither inputs nor weights"):
        engine.compile_circuit(circuit, [a], [])
    with pytest.raises(ValueError, match="stray are neither inputs nor weights"):
        shots.aer_estimates(circuit, [a], [], np.zeros((1, 1)), [], shots=8)


def test_wrong_data_width_names_both_numbers():
    circuit, inputs, weights, observables = system_000()
    compiled = engine.compile_circuit(circuit, inputs, weights)
    w = np.zeros(len(weights))
    with pytest.raises(ValueError, match="data has 5 columns but the circuit declares 4 input parameters"):
        compiled.probabilities(np.zeros((2, 5)), w)
    with pytest.raises(ValueError, match="declares 16 weight parameters"):
        compiled.probabilities(np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="data has 5 columns but the circuit declares 4 inputs"):
        shots.aer_estimates(circuit, inputs, weights, np.zeros((2, 5)), w, shots=8)
    layer = engine.CircuitLayer(circuit, inputs, weights, observables)
    with pytest.raises(ValueError, match="receives 5 features but the circuit declares 4 input parameters"):
        layer(np.zeros((2, 5)))


def test_gate_after_measurement_and_bad_observables_are_refused():
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    circuit.x(0)
    with pytest.raises(ValueError, match="after their measurement"):
        engine.compile_circuit(circuit, [], [])
    with pytest.raises(ValueError, match="acts on 2 qubits, the circuit has 3"):
        engine.PauliObservables([SparsePauliOp("ZZ")], 3)
    with pytest.raises(ValueError, match="not Hermitian"):
        engine.PauliObservables([SparsePauliOp.from_list([("XZ", 1j)])], 2)


# --- fusion and XLA: the same numbers by another plan or compiler, and still Statevector's --------------


def reuploading_family():
    """System 004's circuit (2 layers on 6 qubits): each layer's Rz Ry Rz per qubit is a run to fuse."""
    from qtlmnist.systems import reuploading

    return reuploading.reuploading_circuit(6, 2)[:4]  # (circuit, inputs, weights, observables)


def multiplexed_family():
    """Runs of Ry on one qubit and CX onto it (uniformly controlled rotations, as amplitude loading builds them),
    with angles that are inputs, weights, and expressions of each, one run starting with a CX, between gates
    that end them (an Rz on the target, a CX out of it, an H on a control)."""
    x, w = ParameterVector("x", 4), ParameterVector("w", 4)
    circuit = QuantumCircuit(4)
    circuit.h(range(4))
    circuit.ry(x[0], 2)
    circuit.cx(0, 2)
    circuit.ry(w[0], 2)
    circuit.cx(3, 2)
    circuit.ry(2 * x[1] - 0.3, 2)
    circuit.cx(0, 2)
    circuit.ry(w[1] * w[2] + 0.2, 2)
    circuit.cx(1, 2)
    circuit.rz(x[2], 2)
    circuit.cx(2, 1)
    circuit.cx(3, 0)  # the second run opens with a CX
    circuit.ry(x[3], 0)
    circuit.cx(1, 0)
    circuit.ry((x[0] + 1).sin(), 0)
    circuit.cx(3, 0)
    circuit.ry(0.7, 0)
    circuit.h(1)
    circuit.ry(w[3], 0)
    observables = [SparsePauliOp("ZIIZ"), SparsePauliOp.from_list([("XYZI", 0.5), ("IIYX", 1.5), ("ZIII", 1)])]
    return circuit, list(x), list(w), observables


FUSION_FAMILIES = {**FAMILIES, "reuploading": reuploading_family, "multiplexed": multiplexed_family}


def one_qubit_applications(compiled) -> int:
    """How many 2x2 matrices the plan applies to the state after the product state."""
    steps = compiled._steps
    return sum(isinstance(s, engine._OneQubit) for s in steps) + sum(
        len(s.qubits) for s in steps if isinstance(s, (engine._OneQubitLayer, engine._DenseLayer))
    )


def test_fusion_applies_each_qubits_run_of_one_qubit_gates_as_one_matrix():
    circuit, inputs, weights, _ = reuploading_family()
    fused = engine.compile_circuit(circuit, inputs, weights)
    plain = engine.compile_circuit(circuit, inputs, weights, fuse=False)
    # after the first layer's entangling CX ring, each qubit's Rz Ry Rz of layer 2 follow that qubit's loading
    # Ry gates (up to the next CX on it): gate by gate 3 or more matrices, fused one
    assert one_qubit_applications(plain) - one_qubit_applications(fused) >= 2 * 6
    assert any(isinstance(step, (engine._OneQubitLayer, engine._DenseLayer)) for step in fused._steps)
    assert len(fused._steps) < len(plain._steps)


def test_runs_of_ry_and_cx_onto_one_qubit_are_one_step_each():
    multiplexed = lambda compiled: [len(step.rys) for step in compiled._steps if isinstance(step, engine._Multiplexed)]  # noqa: E731
    circuit, inputs, weights, _ = multiplexed_family()
    # the first Ry precedes every multi-qubit gate, so it belongs to the product state: 3 Ry in the first run
    assert multiplexed(engine.compile_circuit(circuit, inputs, weights)) == [3, 2]
    # 004: a load is six uniformly controlled Ry levels of 2**k Ry and 2**k CX, k = 0..5 (level 0 has no CX, so
    # it stays a plain Ry); in the first load, level 1's first Ry also precedes every CX
    circuit, inputs, weights, _ = reuploading_family()
    assert multiplexed(engine.compile_circuit(circuit, inputs, weights)) == [1, 4, 8, 16, 32, 2, 4, 8, 16, 32]
    assert multiplexed(engine.compile_circuit(circuit, inputs, weights, fuse=False)) == []


def gradient_of_mix(compiled, x_values, w_values, observables):
    import tensorflow as tf

    mix = np.random.default_rng(5).normal(size=len(observables))
    x, w = tf.constant(x_values), tf.constant(w_values)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        loss = tf.reduce_sum(compiled.expectations(x, w, observables) * mix)
    return tape.gradient(loss, w).numpy(), tape.gradient(loss, x).numpy()


@pytest.mark.parametrize("family", FUSION_FAMILIES)
def test_fused_plan_equals_the_gate_by_gate_plan_and_statevector(family):
    circuit, inputs, weights, observables = FUSION_FAMILIES[family]()
    fused = engine.compile_circuit(circuit, inputs, weights)
    plain = engine.compile_circuit(circuit, inputs, weights, fuse=False)
    x, w = random_values(inputs, weights, rows=3, seed=11)
    states = fused.statevector(x, w).numpy()
    assert np.abs(states - plain.statevector(x, w).numpy()).max() <= 1e-12
    for row in range(3):
        assert np.abs(states[row] - Statevector(bound(circuit, inputs, weights, x[row], w)[0]).data).max() <= TOL_VALUES
    for a, b in zip(gradient_of_mix(fused, x, w, observables), gradient_of_mix(plain, x, w, observables)):
        assert np.abs(a - b).max() <= 1e-12 and np.abs(b).max() > 1e-3


def phase_circuit(seed, n=4, length=18):
    """H on every qubit, a random run of constant permutations (cx, swap, x) and diagonal gates (p, rz, cz, cp,
    crz, rzz, s, t) whose angles are numbers, Parameters, linear and non-linear expressions, an H layer, a
    second such run, and an Ry layer: two phase blocks, the first ending in a permutation that is not the
    identity (an odd number of swaps and cx changes the basis state's bits)."""
    rng = np.random.default_rng(seed)
    x, w = ParameterVector("x", 3), ParameterVector("w", 4 + n)
    symbols = [*x, *w[:4]]

    def angle():
        a, b = (symbols[k] for k in rng.choice(len(symbols), 2, replace=False))
        return [lambda: a, lambda: 2 * a - 0.3, lambda: np.pi - a + 0.5 * b, lambda: a * b, lambda: (a + 1).sin(),
                lambda: float(rng.uniform(-3, 3))][rng.integers(6)]()  # fmt: skip

    circuit = QuantumCircuit(n)
    circuit.h(range(n))
    for run in range(2):
        names = ["cx", "swap", "x", "p", "rz", "cz", "cp", "crz", "rzz", "s", "t"]
        for name in [*names, *rng.choice(names, length - len(names))]:
            gate = get_standard_gate_name_mapping()[name]
            qubits = [int(q) for q in rng.choice(n, gate.num_qubits, replace=False)]
            getattr(circuit, name)(*[angle() for _ in gate.params], *qubits)
        if run == 0:
            circuit.swap(0, n - 1)  # the rest of the run permutes by an even number of transpositions at most
            circuit.h(range(n))
    for q in range(n):
        circuit.ry(w[4 + q], q)
    used = circuit.parameters  # a parameter the draw left out is not the circuit's
    inputs, weights = [p for p in x if p in used], [p for p in w if p in used]
    return circuit, inputs, weights, [SparsePauliOp("ZIXI"), SparsePauliOp.from_list([("YZIZ", 0.6)])]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_phase_blocks_match_statevector_and_the_parameter_shift_rule(seed):
    circuit, inputs, weights, observables = phase_circuit(seed)
    fused = engine.compile_circuit(circuit, inputs, weights)
    blocks = [step for step in fused._steps if isinstance(step, engine._Phases)]
    assert len(blocks) == 2 and blocks[0].source is not None  # each run one step, the first one permuting
    assert not any(isinstance(step, (engine._OneQubit, engine._TwoQubit)) for step in fused._steps)
    x, w = random_values(inputs, weights, rows=3, seed=seed)
    states = fused.statevector(x, w).numpy()
    for row in range(3):
        assert np.abs(states[row] - Statevector(bound(circuit, inputs, weights, x[row], w)[0]).data).max() <= TOL_VALUES
    grad_w, grad_x = gradient_of_mix(fused, x[:1], w, observables)
    mix = np.random.default_rng(5).normal(size=len(observables))  # the mix `gradient_of_mix` draws
    combined = sum((float(c) * o for c, o in zip(mix, observables)), SparsePauliOp("I" * circuit.num_qubits, 0))
    reference_w, reference_x = shift_gradient(circuit, inputs, weights, x[0], w, combined)
    assert np.abs(grad_w - reference_w).max() <= TOL_GRADIENTS and np.abs(reference_w[:-4]).max() > 1e-3
    assert np.abs(grad_x[0] - reference_x).max() <= TOL_GRADIENTS and np.abs(reference_x).max() > 1e-3


def test_the_zz_feature_map_is_one_phase_block_per_repetition():
    """H, P(2 x_i) and CX-P-CX per pair: a constant product state and one multiply, then per further
    repetition an H layer and one multiply; the permutation of each repetition is the identity."""
    circuit, inputs, weights, _ = system_000()
    steps = engine.compile_circuit(circuit, inputs, weights)._steps
    kinds = [type(step).__name__ for step in steps]
    assert kinds[:4] == ["_ProductState", "_Phases", "_DenseLayer", "_Phases"]  # 4 qubits: H as one 16 x 16
    assert steps[2].const is not None
    assert steps[1].source is None and steps[3].source is None
    assert sum(kind == "_Phases" for kind in kinds) == 2 and len(steps) == 11  # real_amplitudes: 4 layers, 3 CX chains


def test_xla_step_equals_the_graph_step_and_statevector():
    import tensorflow as tf

    circuit, inputs, weights, observables = six_qubit()
    compiled = engine.compile_circuit(circuit, inputs, weights)
    mix = tf.constant(np.random.default_rng(5).normal(size=len(observables)))

    def step(x, w):
        with tf.GradientTape() as tape:
            tape.watch(w)
            values = compiled.expectations(x, w, observables)
            loss = tf.reduce_sum(values * mix)
        return values, tape.gradient(loss, w)

    x, w = random_values(inputs, weights, rows=3, seed=13)
    xla, graph = engine.compile_step(step, jit=True), engine.compile_step(step, jit=False)
    (values_xla, grad_xla), (values_graph, grad_graph) = xla(tf.constant(x), tf.constant(w)), graph(x, w)
    assert (xla.mode, graph.mode) == ("xla", "graph")
    assert np.abs(values_xla.numpy() - values_graph.numpy()).max() <= 1e-12
    assert np.abs(grad_xla.numpy() - grad_graph.numpy()).max() <= 1e-12 and np.abs(grad_graph.numpy()).max() > 1e-3
    for row in range(3):
        reference = Statevector(bound(circuit, inputs, weights, x[row], w)[0])
        exact = [reference.expectation_value(observable).real for observable in observables]
        assert np.abs(values_xla.numpy()[row] - exact).max() <= TOL_VALUES


def test_keras_training_steps_under_xla_equal_the_graph_steps():
    """What a custom training loop runs: forward, loss, gradient and Adam, three steps on each path."""
    import keras
    import tensorflow as tf

    x, y = toy_data(16)
    weights = {}
    for jit in (True, False):
        keras.utils.set_random_seed(4)
        keras.config.set_dtype_policy("float64")  # the head in float64 too, so the paths compare to round-off
        try:
            model, _ = hybrid_model(keras)
        finally:
            keras.config.set_dtype_policy("float32")
        optimizer = keras.optimizers.Adam(0.05)
        optimizer.build(model.trainable_weights)

        def train_step(x, y, model=model, optimizer=optimizer):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((model(x) - y) ** 2)
            optimizer.apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)
            return loss

        step = engine.compile_step(train_step, jit=jit)
        for rows in (slice(0, 8), slice(8, 16), slice(0, 8)):
            step(tf.constant(x[rows], tf.float64), tf.constant(y[rows], tf.float64))
        assert step.mode == ("xla" if jit else "graph")
        weights[jit] = [np.asarray(v) for v in model.trainable_weights]
    keras.utils.set_random_seed(4)
    assert not np.allclose(weights[True][0], hybrid_model(keras)[0].trainable_weights[0])  # they trained
    for a, b in zip(weights[True], weights[False]):
        assert np.abs(a - b).max() <= 1e-10


def test_a_step_xla_cannot_compile_runs_as_a_graph_after_one_logged_warning(caplog):
    import logging

    import tensorflow as tf

    def step(x):
        return 2 * tf.numpy_function(np.sin, [x], tf.float64)  # a Python op: XLA cannot compile it

    compiled = engine.compile_step(step, jit=True)
    with caplog.at_level(logging.INFO, logger=engine.__name__):
        first, second = compiled(tf.constant([0.5], tf.float64)), compiled(tf.constant([0.25], tf.float64))
    assert compiled.mode == "graph"
    np.testing.assert_allclose([first.numpy()[0], second.numpy()[0]], 2 * np.sin([0.5, 0.25]), rtol=1e-15)
    assert [record.levelname for record in caplog.records if record.name == engine.__name__] == ["WARNING"]
    assert "XLA cannot compile step" in caplog.text


def test_auto_probes_without_changing_the_variables_and_chooses_by_the_run_length():
    import tensorflow as tf

    for steps, probed in ((1, {"trace", "graph_step"}), (10**9, {"trace", "graph_step", "xla_compile", "xla_step"})):
        counter = tf.Variable(0.0, dtype=tf.float64)

        def step(x, counter=counter):
            counter.assign_add(tf.reduce_sum(x))
            return counter.read_value()

        compiled = engine.compile_step(step, jit="auto", steps=steps)
        assert float(compiled(tf.constant([1.0, 2.0], tf.float64))) == 3.0  # the probes' steps were undone
        assert float(compiled(tf.constant([1.0], tf.float64))) == 4.0
        assert set(compiled.timings) == probed
        if steps == 1:  # one step costs less than a tracing: XLA is not even tried
            assert compiled.mode == "graph"


def test_choose_jit_weighs_compile_time_against_the_steps_it_saves():
    # before XLA is measured: worth measuring only if the run at graph speed costs more than one tracing
    assert engine.choose_jit(50, {"trace": 1.0, "graph_step": 0.01}) == "graph"
    assert engine.choose_jit(200, {"trace": 1.0, "graph_step": 0.01}) == "xla"
    # 5 s compile and 6 ms saved per step: XLA pays from 5 / 0.006 = 833.3 steps on
    measured = {"trace": 1.0, "graph_step": 0.010, "xla_compile": 5.0, "xla_step": 0.004}
    assert engine.choose_jit(833, measured) == "graph"
    assert engine.choose_jit(834, measured) == "xla"
    assert engine.choose_jit(10**6, measured | {"xla_step": 0.011}) == "graph"  # XLA slower per step


def test_compile_step_refuses_an_unknown_jit_and_auto_without_a_step_count():
    with pytest.raises(ValueError, match="jit must be one of"):
        engine.compile_step(lambda x: x, jit="fast")
    with pytest.raises(ValueError, match="step count"):
        engine.compile_step(lambda x: x, jit="auto")
