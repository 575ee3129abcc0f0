"""Every registered system, through its module's interface (qtlmnist.systems.common), against independent
references: its circuit on the engine vs qiskit's Statevector on random inputs and weights, its gradients vs
the parameter-shift rule on Statevector, its model and its control built and trained a few steps on random
data with its own loss, its circuit on Aer with shots vs the exact values within shot noise, and its claims
rows against its config. Parametrised over `SYSTEMS` (the registry), never over a list of names: a new system
is covered the moment its module declares SYSTEM, and its own test file holds only what is specific to it.

The values each test builds with are the system's settings in config/config.yaml with config/ci.yaml merged
over them (small: these tests stay fast), taken through the same `setting_values` a run job reads."""

import copy

import numpy as np
import pytest
import yaml
from qiskit.quantum_info import SparsePauliOp, Statevector
from test_engine import bound, shift_gradient

from conftest import ROOT
from qtlmnist.config import system_key_schemas
from qtlmnist.runtime import seed_tensorflow
from qtlmnist.systems import MODELS, SYSTEMS, common, load, setting_values

NAMES = list(SYSTEMS)
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
TOL_VALUES = 1e-10
TOL_GRADIENTS = 1e-8
SHOTS = 4096
ROWS = 8  # random images a model trains on: few, since the engine's cost grows with the rows


def ci_config() -> dict:
    """config/config.yaml with config/ci.yaml merged over it, key by key, as `--configfile config/ci.yaml` gives."""

    def merge(target: dict, source: dict) -> dict:
        for key, value in source.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = copy.deepcopy(value)
        return target

    default = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    return merge(default, yaml.safe_load((ROOT / "config/ci.yaml").read_text()))


CONFIG = ci_config()


def first_setting(name: str, model: str) -> str:
    """The first setting of the system's section whose model is `model` (config order)."""
    for setting in CONFIG["systems"][name]["settings"]:
        if setting_values(CONFIG, name, setting)["model"] == model:
            return setting
    pytest.fail(f"systems.{name} in config/config.yaml has no setting with model {model!r} (a system has both)")


def values(name: str, model: str) -> dict:
    return setting_values(CONFIG, name, first_setting(name, model))


@pytest.fixture(scope="module")
def keras():
    """TensorFlow with the same thread count and determinism as the other tests (set once per process)."""
    return seed_tensorflow(0, 1)


def random_circuit_values(spec: common.Circuit, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.uniform(-2, 2, size=(rows, len(spec.inputs))), rng.uniform(-2, 2, size=len(spec.weights))


def reference_outputs(spec: common.Circuit, state: Statevector) -> np.ndarray:
    """What the circuit outputs for one bound state, by Statevector: its probabilities, or <O> per observable."""
    if spec.output == "probabilities":
        return state.probabilities()
    return np.array([state.expectation_value(observable).real for observable in spec.observables])


# --- the module and its registry entry -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_module_offers_the_interface_and_a_config_section(name, keras):
    module, entry = load(name), SYSTEMS[name]
    for attribute in ("SYSTEM", "CLASS_NAMES", "CLAIMS", "LOSS", "load_task", "circuit", "build", "targets", "decide"):
        assert hasattr(module, attribute), f"qtlmnist/systems/{name}.py lacks {attribute} (see systems/common.py)"
    assert entry.name == entry.module == name and entry.title
    assert entry.seed_document in common.SEED_DOCUMENTS or entry.citation
    assert entry.inputs and all(path.startswith("results/") for path in entry.inputs.values())
    assert set(entry.model_inputs) <= set(MODELS)
    keras.losses.get(module.LOSS)  # a Keras loss name
    assert name in SCHEMA["properties"]["systems"]["properties"], f"no schema section systems.{name}"
    assert name in CONFIG["systems"]["run"], f"{name} is not in systems.run of config/config.yaml"


# --- the circuit: engine vs Statevector, gradients vs parameter shift ------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_circuit_on_the_engine_matches_statevector(name, keras):
    from qtlmnist.systems.engine import compile_circuit

    spec = load(name).circuit(values(name, "quantum"))
    assert isinstance(spec, common.Circuit)
    assert set(spec.circuit.parameters) == {*spec.inputs, *spec.weights}  # every parameter is input or weight
    compiled = compile_circuit(spec.circuit, spec.inputs, spec.weights)
    x, w = random_circuit_values(spec, rows=3, seed=11)
    probabilities = compiled.probabilities(x, w).numpy()
    expectations = compiled.expectations(x, w, spec.observables).numpy() if spec.observables else None
    for row in range(3):
        state = Statevector(bound(spec.circuit, spec.inputs, spec.weights, x[row], w)[0])
        assert np.abs(probabilities[row] - state.probabilities()).max() <= TOL_VALUES
        if expectations is not None:
            exact = [state.expectation_value(observable).real for observable in spec.observables]
            assert np.abs(expectations[row] - exact).max() <= TOL_VALUES


@pytest.mark.parametrize("name", NAMES)
def test_circuit_gradients_match_the_parameter_shift_rule(name, keras):
    import tensorflow as tf

    from qtlmnist.systems.engine import compile_circuit

    spec = load(name).circuit(values(name, "quantum"))
    compiled = compile_circuit(spec.circuit, spec.inputs, spec.weights)
    x_values, w_values = random_circuit_values(spec, rows=1, seed=5)
    x, w = tf.constant(x_values), tf.constant(w_values)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        if spec.output == "probabilities":
            outputs = compiled.probabilities(x, w)
        else:
            outputs = compiled.expectations(x, w, spec.observables)
        mix = np.random.default_rng(6).normal(size=outputs.shape[-1])  # one scalar from every output
        loss = tf.reduce_sum(outputs * mix)
    grad_w, grad_x = tape.gradient(loss, w), tape.gradient(loss, x)
    grad_w = np.zeros(0) if grad_w is None else grad_w.numpy()

    def mixed(state):  # the same scalar, from the shifted circuit's Statevector
        return float(reference_outputs(spec, state) @ mix)

    reference_w, reference_x = shift_gradient(spec.circuit, spec.inputs, spec.weights, x_values[0], w_values, mixed)
    assert np.abs(grad_w - reference_w).max(initial=0) <= TOL_GRADIENTS
    assert np.abs(grad_x.numpy()[0] - reference_x).max(initial=0) <= TOL_GRADIENTS
    assert np.abs(np.concatenate([reference_w, reference_x])).max() > 1e-3  # not a comparison of zeros


# --- the circuit on Aer with shots -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shots_on_aer_agree_with_the_exact_values_within_shot_noise(name, keras):
    from qtlmnist.systems import shots

    spec = load(name).circuit(values(name, "quantum"))
    x, w = random_circuit_values(spec, rows=4, seed=8)
    probabilities, expectations = shots.aer_estimates(
        spec.circuit, spec.inputs, spec.weights, x, w, spec.observables, shots=SHOTS, seed=3
    )
    for row in range(len(x)):
        state = Statevector(bound(spec.circuit, spec.inputs, spec.weights, x[row], w)[0])
        exact = state.probabilities()
        # a frequency's std is sqrt(p (1 - p) / shots); 5 of them, plus one count for p near 0 or 1
        assert np.all(np.abs(probabilities[row] - exact) <= 5 * np.sqrt(exact * (1 - exact) / SHOTS) + 1 / SHOTS)
        for k, observable in enumerate(spec.observables):
            # each Pauli term's mean of +-1 has std <= 1 / sqrt(shots): the sum's is at most sum |c| / sqrt(shots)
            scale = np.abs(SparsePauliOp(observable).coeffs).sum()
            assert abs(expectations[row, k] - state.expectation_value(observable).real) <= 5 * scale / np.sqrt(SHOTS)


# --- the model and its control ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["quantum", "control"])
@pytest.mark.parametrize("name", NAMES)
def test_model_builds_and_a_few_steps_lower_its_loss_on_random_data(name, model, keras):
    """The driver's contract (common.py): the quantum model holds exactly one CircuitLayer built from the
    circuit object passed in (the one then sent to Aer), the control none; outputs are one column per class
    (or one for two classes), `decide` maps them to class indices; Adam on the module's LOSS against
    `targets(labels)` lowers the loss on a fixed random batch and moves the weights."""
    import tensorflow as tf

    from qtlmnist.systems.engine import CircuitLayer

    module, setting_values_ = load(name), values(name, model)
    spec = module.circuit(setting_values_) if model == "quantum" else None
    keras.utils.set_random_seed(2)
    net = module.build(keras, setting_values_, 2, spec)
    circuits = [layer for layer in net.layers if isinstance(layer, CircuitLayer)]
    if model == "quantum":
        assert len(circuits) == 1 and circuits[0].engine.circuit is spec.circuit
    else:
        assert not circuits

    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (ROWS, *net.inputs[0].shape[1:])).astype(np.float32)
    outputs = np.asarray(net(x, training=False))
    n_classes = max(2, outputs.shape[1])
    labels = np.tile(np.arange(n_classes), ROWS)[:ROWS]
    rng.shuffle(labels)
    assert outputs.shape[0] == ROWS and np.isfinite(outputs).all()
    decided = np.asarray(module.decide(outputs))
    assert decided.shape == (ROWS,) and ((decided >= -1) & (decided < n_classes)).all()

    loss_of = keras.losses.get(module.LOSS)
    y = module.targets(labels)

    def loss():
        return float(tf.reduce_mean(loss_of(y, net(x, training=False))))

    before, weights = loss(), [v.numpy().copy() for v in net.trainable_weights]
    optimizer = keras.optimizers.Adam(setting_values_["learning_rate"])  # the setting's own step size
    for _ in range(8):  # eager steps: tracing a circuit's graph for model.fit costs more than these
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss_of(y, net(x, training=True)))
        gradients = tape.gradient(value, net.trainable_weights)
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, net.trainable_weights) if g is not None])
    after = loss()
    assert np.isfinite(after) and after < before, (before, after)
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(weights, net.trainable_weights))


# --- the claims ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_claims_are_well_formed_and_name_configured_settings(name, keras):
    """Each row a Claim (checked on construction), texts unique, its setting configured and its evaluation
    set one the system tracks (its `history_sets` names); a weight-change claim's layers exist in the
    setting's model; at least one row claims something and one is a control."""
    claims = load(name).CLAIMS
    settings = CONFIG["systems"][name]["settings"]
    history = system_key_schemas(SCHEMA, name)["history_sets"]
    names = next(part["items"]["enum"] for part in history.get("allOf", [history]) if "enum" in part.get("items", {}))
    assert claims and all(isinstance(claim, common.Claim) for claim in claims)
    assert len({(claim.claim, claim.setting) for claim in claims}) == len(claims), "two rows say the same"
    for claim in claims:
        assert claim.setting in settings, f"{claim.claim!r}: no setting {claim.setting!r} in systems.{name}"
        assert claim.eval_set in names, f"{claim.claim!r}: eval_set {claim.eval_set!r} not one of {names}"
        if claim.statistic == "weight_change":
            setting_values_ = setting_values(CONFIG, name, claim.setting)
            module = load(name)
            spec = module.circuit(setting_values_) if setting_values_["model"] == "quantum" else None
            layers = [layer.name for layer in module.build(keras, setting_values_, 1, spec).layers]
            assert any(layer.startswith(claim.part) for layer in layers), (claim.claim, layers)
    models = {claim: setting_values(CONFIG, name, claim.setting)["model"] for claim in claims}
    assert any(claim.claimed is not None or claim.compare == "above_chance" for claim in claims)
    assert any(claim.claimed is None and model != "quantum" for claim, model in models.items()), "no control row"
