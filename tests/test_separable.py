"""Entanglement removed (qtlmnist.systems.separable) against independent references: 000's separable and product
circuits against Qiskit's own feature maps and real_amplitudes without entanglement (Statevector), the
separable circuits of 001, 002 and 004's product circuit against the definition of a product state (every
one-qubit reduced state pure, qiskit.quantum_info.partial_trace), 002's against its closed form, the removed
gates against hand counts, every derived circuit on the engine against Statevector, 004 without re-upload
against a numpy construction, the refusals (config check, driver, marking), and one training of a separable
setting through the registry's values and the driver."""

import copy

import numpy as np
import pytest
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.circuit.library import real_amplitudes, z_feature_map, zz_feature_map
from qiskit.quantum_info import SparsePauliOp, Statevector, partial_trace
from test_engine import bound
from test_registered_systems import CONFIG, random_circuit_values, reference_outputs, values
from test_system_reuploading import N, cnot, on_wire, relu_latents, ry, rz
from test_systems import SCHEMA, check, with_systems

from qtlmnist.config import ConfigError
from qtlmnist.runtime import seed_tensorflow
from qtlmnist.systems import SYSTEMS, common, load, setting_seeds, setting_values
from qtlmnist.systems import cnn_circuit as cc
from qtlmnist.systems import paradoxical7_qnn as p7
from qtlmnist.systems import quantum_mnist as qm
from qtlmnist.systems import reuploading as ru
from qtlmnist.systems.separable import (
    ENTANGLEMENTS,
    choices,
    encoding_problems,
    separable,
    setting_circuit,
)

TOL = 1e-10
VARIANTS = [(name, entanglement) for name in SYSTEMS for entanglement in choices(load(name))[1:]]


@pytest.fixture(scope="module")
def keras():
    """TensorFlow with the same thread count and determinism as the other tests (set once per process)."""
    return seed_tensorflow(0, 1)


def state(spec: common.Circuit, x_row, w) -> Statevector:
    return Statevector(bound(spec.circuit, spec.inputs, spec.weights, x_row, w)[0])


def purities(vector: Statevector) -> list[float]:
    """tr(rho_q^2) of every qubit's reduced state: all 1 exactly when the state is a product state."""
    n = vector.num_qubits
    reduced = [partial_trace(vector, [k for k in range(n) if k != q]) for q in range(n)]
    return [float(np.real(np.trace(rho.data @ rho.data))) for rho in reduced]


def same_state(a: Statevector, b: Statevector) -> bool:
    """Equal up to a global phase (|<a|b>| = 1)."""
    return abs(abs(np.vdot(a.data, b.data)) - 1) <= TOL


# --- 000 against Qiskit's own circuits -------------------------------------------------------------------


def qiskit_reference(feature_map) -> tuple[QuantumCircuit, list, list]:
    """`feature_map` then real_amplitudes(4) with no entanglement (Ry layers only): (circuit, inputs, weights)."""
    ansatz = real_amplitudes(4, entanglement=[], parameter_prefix="v")
    return feature_map.compose(ansatz), list(feature_map.parameters), list(ansatz.parameters)


@pytest.mark.parametrize(
    "entanglement, feature_map",
    [("separable", zz_feature_map(4, parameter_prefix="u")), ("product", z_feature_map(4, parameter_prefix="u"))],
)
def test_000_variants_are_qiskits_feature_map_then_real_amplitudes_without_entanglement(entanglement, feature_map):
    spec = qm.circuit({})
    derived = setting_circuit(qm, {"entanglement": entanglement})
    reference, inputs, weights = qiskit_reference(feature_map)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, w = rng.uniform(-2, 2, 4), rng.uniform(-2 * np.pi, 2 * np.pi, 16)
        expected = Statevector(reference.assign_parameters(dict(zip(inputs, x)) | dict(zip(weights, w))))
        assert same_state(state(derived, x, w), expected)
        assert not same_state(state(spec, x, w), expected)  # the entangled circuit is another state


# --- product states ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, entanglement", [("paradoxical7_qnn", "separable"), ("cnn_circuit", "separable"), ("reuploading", "product")]
)
def test_derived_circuits_of_product_encodings_give_product_states(name, entanglement):
    system = load(name)
    spec = system.circuit(values(name, "quantum"))
    derived = setting_circuit(system, values(name, "quantum") | {"entanglement": entanglement})
    for seed in range(3):
        x, w = random_circuit_values(spec, rows=1, seed=seed)
        assert np.abs(np.array(purities(state(derived, x[0], w))) - 1).max() <= TOL
        assert min(purities(state(spec, x[0], w))) < 0.99  # the circuit as it is entangles


def test_002_separable_output_is_its_closed_form():
    """Ry(x) Ry(x) H |0> = Ry(2 x + pi/2) |0> on each qubit: <Z Z> = sin(2 x0) sin(2 x1)."""
    derived = setting_circuit(cc, {"entanglement": "separable"})
    for x in np.random.default_rng(3).uniform(-3, 3, (5, 2)):
        value = state(derived, x, []).expectation_value(SparsePauliOp("ZZ")).real
        assert abs(value - np.sin(2 * x[0]) * np.sin(2 * x[1])) <= TOL


# --- what is removed, by hand count ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, setting, entanglement, removed",
    [
        ("quantum_mnist", {}, "separable", 9),  # real_amplitudes(4): 3 reps x 3 CX (reverse_linear)
        ("paradoxical7_qnn", {}, "separable", 55),  # RealAmplitudes(11, full): 11 * 10 / 2 CX
        ("cnn_circuit", {}, "separable", 3),  # CX, CZ, CX
        ("reuploading", {"n_layers": 2}, "separable", 12),  # 6 CX per SEL layer
        ("reuploading", {"n_layers": 3, "reupload": False}, "separable", 18),
    ],
)
def test_separable_removes_exactly_the_trainable_layers_entanglers(name, setting, entanglement, removed):
    system = load(name)
    spec, derived = system.circuit(setting), setting_circuit(system, setting | {"entanglement": entanglement})
    before, after = spec.circuit.count_ops(), derived.circuit.count_ops()
    assert len(spec.circuit.data) - len(derived.circuit.data) == removed  # nothing else goes
    single = {k: v for k, v in before.items() if k not in ("cx", "cz")}
    assert {k: v for k, v in after.items() if k not in ("cx", "cz")} == single  # every other gate kept
    names = [[p.name for p in group] for group in (spec.inputs, spec.weights, derived.inputs, derived.weights)]
    assert names[:2] == names[2:]  # no parameter went with them
    assert encoding_problems(derived) == []
    again = separable(derived)
    assert list(again.circuit.data) == list(derived.circuit.data)  # applied twice: nothing more to remove


@pytest.mark.parametrize(
    "name, setting, uploads, upload_size, product_size, cx",
    [
        ("quantum_mnist", {}, 1, 52, 16, 9),  # ZZ map: 2 x (4 H + 4 P + 6 x (CX P CX)); Z map: 2 x (4 H + 4 P)
        ("reuploading", {"n_layers": 2}, 2, 125, 63, 12),  # a load: 63 Ry + 62 CX; the product: 63 rotations
        ("reuploading", {"n_layers": 2, "reupload": False}, 1, 125, 63, 12),
    ],
)
def test_product_replaces_every_upload_and_leaves_no_entangler(name, setting, uploads, upload_size, product_size, cx):
    system = load(name)
    spec, derived = system.circuit(setting), setting_circuit(system, setting | {"entanglement": "product"})
    assert len(spec.encoding) == uploads and all(stop - start == upload_size for start, stop in spec.encoding)
    assert len(derived.encoding) == uploads and all(stop - start == product_size for start, stop in derived.encoding)
    expected = len(spec.circuit.data) - uploads * (upload_size - product_size) - cx  # cx: the layers' CX
    assert len(derived.circuit.data) == expected
    assert not {"cx", "cz"} & set(derived.circuit.count_ops())
    assert {p.name for p in derived.circuit.parameters} == {p.name for p in (*spec.inputs, *spec.weights)}


# --- every derived circuit on the engine ----------------------------------------------------------------


@pytest.mark.parametrize("name, entanglement", VARIANTS)
def test_derived_circuit_on_the_engine_matches_statevector(name, entanglement, keras):
    from qtlmnist.systems.engine import compile_circuit

    spec = setting_circuit(load(name), values(name, "quantum") | {"entanglement": entanglement})
    assert set(spec.circuit.parameters) == {*spec.inputs, *spec.weights}
    compiled = compile_circuit(spec.circuit, spec.inputs, spec.weights)
    x, w = random_circuit_values(spec, rows=3, seed=11)
    outputs = compiled.probabilities(x, w) if spec.output == "probabilities" else None
    if outputs is None:
        outputs = compiled.expectations(x, w, spec.observables)
    for row in range(3):
        assert np.abs(outputs.numpy()[row] - reference_outputs(spec, state(spec, x[row], w))).max() <= TOL


def test_every_system_marks_its_encoding_by_the_rule():
    """A new system is covered here too: its circuit declares its uploads, by the rule on parameters."""
    for name in SYSTEMS:
        spec = load(name).circuit(values(name, "quantum"))
        assert spec.encoding and encoding_problems(spec) == [], name


# --- 004 without re-upload ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_004_without_reupload_loads_once_then_its_layers(n_layers):
    """The loaded state is v / |v| (PennyLane's wire order is Qiskit's index order), then the SEL layers."""
    spec = ru.circuit({"n_layers": n_layers, "reupload": False})
    assert spec.circuit.count_ops()["cx"] == 62 + 6 * n_layers and len(spec.encoding) == 1
    rng = np.random.default_rng(n_layers)
    for v in relu_latents(2, seed=20 + n_layers):
        w = rng.uniform(0, 2 * np.pi, (n_layers, N, 3))
        vector = (v / np.linalg.norm(v)).astype(complex)
        for layer, r in enumerate(ru.sel_ranges(N, n_layers)):
            for wire in range(N):
                phi, theta, omega = w[layer, wire]
                vector = on_wire(rz(omega) @ ry(theta) @ rz(phi), wire) @ vector
            for wire in range(N):
                vector = cnot(wire, (wire + r) % N) @ vector
        computed = state(spec, ru.loading_angles(v[None])[0], w.ravel())
        assert same_state(computed, Statevector(vector))


# --- refusals ----------------------------------------------------------------------------------------------


def test_the_schema_lists_the_entanglement_values():
    import yaml

    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["$defs"]["system"]["properties"]["entanglement"]["enum"] == list(ENTANGLEMENTS)
    assert choices(qm) == choices(ru) == ENTANGLEMENTS and choices(p7) == choices(cc) == ENTANGLEMENTS[:2]


def test_every_quantum_setting_may_run_separable_and_product_where_offered():
    change = {
        "paradoxical7_qnn": {"settings": {"exact": {"entanglement": "separable"}}},
        "quantum_mnist": {"settings": {"hybrid": {"entanglement": "product"}}},
        "cnn_circuit": {"settings": {"mnist_3v5_fixed": {"entanglement": "separable"}}},
        "reuploading": {"settings": {"posted_4": {"entanglement": "product", "reupload": False}}},
    }
    check(with_systems(change))


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"paradoxical7_qnn": {"settings": {"exact": {"entanglement": "product"}}}},
         (r"systems\.paradoxical7_qnn\.settings\.exact\.entanglement = 'product': system 'paradoxical7_qnn' has no "
          r"entangling data encoding to replace \(its module defines no product_encoding; allowed: entangled, "
          r"separable\)")),
        ({"cnn_circuit": {"settings": {"mnist_3v5_fixed": {"entanglement": "product"}}}},
         r"settings\.mnist_3v5_fixed\.entanglement = 'product': system 'cnn_circuit' .*allowed: entangled, separable"),
        ({"quantum_mnist": {"settings": {"control": {"entanglement": "separable"}}}},
         (r"systems\.quantum_mnist\.settings\.control\.entanglement = 'separable': model 'control' has no circuit "
          r".*allowed with it: entangled")),
        ({"reuploading": {"entanglement": "product"}},
         r"systems\.reuploading\.settings\.control_4\.entanglement = 'product': model 'control'"),
        ({"quantum_mnist": {"entanglement": "none"}},
         r"systems\.quantum_mnist\.entanglement = 'none': .*\(allowed: one of \['entangled', 'separable', 'product'\]"),
        ({"reuploading": {"reupload": "no"}}, r"systems\.reuploading\.reupload = 'no': .*not of type 'boolean'"),
        ({"quantum_mnist": {"reupload": False}}, r"systems\.quantum_mnist: unknown key\(s\) \['reupload'\]"),
    ],
)  # fmt: skip
def test_bad_entanglement_fails_before_any_job_naming_the_key(change, expected):
    with pytest.raises(ConfigError, match=expected):
        check(with_systems(change))


def test_the_driver_refuses_product_for_a_product_encoding():
    with pytest.raises(ValueError, match=r"entanglement = 'product': system 'paradoxical7_qnn' allows entangled, "):
        setting_circuit(p7, {"entanglement": "product"})


def tiny(encoding):
    """Ry(x0) Ry(x1) | RZZ(w0) | Ry(w1): a made-up circuit whose only entangler carries a weight."""
    x, w = ParameterVector("x", 2), ParameterVector("w", 2)
    qc = QuantumCircuit(2, name="tiny")
    qc.ry(x[0], 0)
    qc.ry(x[1], 1)
    qc.rzz(w[0], 0, 1)
    qc.ry(w[1], 0)
    return common.Circuit(qc, tuple(x), tuple(w), "expectations", (SparsePauliOp("ZI"),), encoding), w


def test_a_removed_entangler_takes_its_weights_with_it():
    spec, w = tiny(((0, 2),))
    derived = separable(spec)
    assert derived.weights == (w[1],) and [i.operation.name for i in derived.circuit.data] == ["ry", "ry", "ry"]


@pytest.mark.parametrize(
    "encoding, message",
    [
        (None, r"circuit 'tiny' declares no encoding: set common\.Circuit\.encoding"),
        (((0, 1),), r"instruction 1 \(ry\) reads inputs but lies outside the encoding spans"),
        (((0, 3),), r"instruction 2 \(rzz\) holds weights but lies inside the encoding spans"),
    ],
)
def test_a_wrong_or_missing_encoding_mark_is_refused(encoding, message):
    with pytest.raises(ValueError, match=message):
        separable(tiny(encoding)[0])


def test_bad_spans_and_bad_product_encodings_are_refused():
    with pytest.raises(ValueError, match=r"encoding must be ordered, disjoint, non-empty spans"):
        tiny(((1, 0),))
    with pytest.raises(ValueError, match=r"ends past the circuit's 4 instructions"):
        tiny(((0, 5),))
    spec = qm.circuit({})
    entangling = QuantumCircuit(4)
    for q, z in enumerate(spec.inputs):
        entangling.ry(z, q)
    entangling.cx(0, 1)
    with pytest.raises(ValueError, match=r"the product encoding has gates on two or more qubits \(cx\)"):
        separable(spec, entangling)
    partial = QuantumCircuit(4)
    partial.ry(spec.inputs[0], 0)
    with pytest.raises(ValueError, match=r"must read every input of the circuit and no other parameter"):
        separable(spec, partial)


# --- one training of a separable setting, through the registry's values and the driver --------------------


def test_a_separable_setting_trains_and_is_evaluated_on_its_own_circuit(keras, monkeypatch):
    """CI-sized: 000's hybrid with entanglement separable, its values merged by the registry as a run job reads
    them, trained by the driver over both CI seeds on a tiny task; the model's circuit is the separable one
    (no CX of the ansatz left), evaluated exactly and with shots on Aer (16 test images: shots near exact)."""
    from qtlmnist.systems import training
    from qtlmnist.systems.engine import CircuitLayer

    config = copy.deepcopy(CONFIG)
    config["systems"]["quantum_mnist"]["settings"]["separable"] = {"entanglement": "separable"}
    check(config)
    run_values = setting_values(config, "quantum_mnist", "separable") | {"epochs": 2}
    seeds = setting_seeds(config, "quantum_mnist", "separable")
    rng = np.random.default_rng(9)
    labels = np.tile([0, 1], 24)
    x = (rng.uniform(0, 1, (48, 784)) * (1 + labels[:, None])).astype(np.float32)
    task = common.Task(train=(x[:32], labels[:32]), evaluation={"test": (x[32:], labels[32:])})
    monkeypatch.setattr(qm, "load_task", lambda inputs, values, seed: task)
    results = training.run_group(qm, {}, run_values, seeds, 1)
    assert len(results) == len(seeds) == 2
    for metrics, history, model in results:
        (layer,) = [layer for layer in model.layers if isinstance(layer, CircuitLayer)]
        assert layer.engine.circuit.name == "quantum_mnist_separable"
        assert layer.engine.circuit.count_ops()["cx"] == 24  # the ZZ map's; the ansatz's 9 are gone
        assert len(history) == 2 and metrics["parameters"]["circuit"] == 16 and metrics["entanglement"] == "separable"
        test = metrics["sets"]["test"]
        assert test["accuracy_shots"] is not None and abs(test["accuracy_shots"] - test["accuracy_exact"]) <= 0.25
