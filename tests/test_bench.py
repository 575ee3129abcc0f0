"""The benchmark's pieces on tiny inputs (its timings are reported by `make bench`, never asserted)."""

import dataclasses
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from qiskit.quantum_info import Statevector

from conftest import ROOT
from qtlmnist import quantum
from qtlmnist.runtime import seed_tensorflow
from tools import bench, bench_systems


def test_paper_loop_and_pipeline_give_the_same_counts_for_the_same_rows():
    x = np.random.default_rng(0).random((3, 5))
    np.testing.assert_array_equal(bench.paper_loop(x, 64, 9, first_row=5), bench.pipeline(x, 64, 9, first_row=5))


def test_agreement_statistics_detect_wrong_noise():
    x = np.random.default_rng(1).random((3000, 5))
    probabilities = quantum.exact_probabilities(x)
    a = bench.exact_limit(x, 1024, 1)
    b = bench.exact_limit(x, 1024, 2)
    check = bench.agreement(a, b, probabilities, 1024)
    assert check["pipeline"]["pooled_chi2_pvalue"] > 1e-4 and abs(check["pipeline"]["variance_ratio"] - 1) < 0.05
    assert check["ks_two_sample_pvalue"] > 1e-4
    too_noisy = bench.exact_limit(x, 256, 3)  # counts from 256 shots presented as 1024: 4x the variance
    bad = bench.agreement(too_noisy, b, probabilities, 1024)
    assert bad["pipeline"]["variance_ratio"] > 3 and bad["ks_two_sample_pvalue"] < 1e-6


def test_stage_times_groups_jobs_by_rule(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    jobs = (("quantum_features_train_0", 2.0, 100), ("quantum_features_train_1", 3.0, 120), ("quantum_inputs", 0.5, 50))
    for name, seconds, rss in jobs:
        (tmp_path / f"{name}.tsv").write_text(header + f"{seconds}\t0:00:02\t{rss}\t0\t0\t0\t0\t0\t0\t0\n")
    stages = bench.stage_times(tmp_path, ["quantum_features", "quantum_inputs"])
    assert stages.to_dict("records") == [
        {"rule": "quantum_features", "jobs": 2, "wall_s": 5.0, "max_rss_mb": 120.0},
        {"rule": "quantum_inputs", "jobs": 1, "wall_s": 0.5, "max_rss_mb": 50.0},
    ]


# --- the trainable-systems benchmark (tools.bench_systems): its pure pieces and its gradients ---------------


@pytest.fixture(scope="module")
def systems_config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def keras():
    """The same thread count and determinism as the other TensorFlow tests (it can be set only once)."""
    return seed_tensorflow(0, 1)


def _pins(path: Path) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    from tools.lockfile import parse_lock, version

    return {canonicalize_name(pin.name): version(pin) for pin in parse_lock(path.read_text())}


def test_bench_lock_adds_exact_pins_beside_the_lock_and_overrides_none():
    """`make venv-bench` installs both files in one resolve: the main lock's pins hold when the bench lock names
    none of its packages; the bench extra of pyproject.toml is what the bench lock pins."""
    main, bench_pins = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-bench.lock")
    assert not set(main) & set(bench_pins)
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
    assert set(extra) <= set(bench_pins)


def test_gradient_difference_is_the_largest_deviation_and_refuses_other_parameters():
    a = {"w": np.array([1.0, 2.0]), "k": np.array([[0.5]])}
    b = {"w": np.array([1.0, 2.0 + 3e-9]), "k": np.array([[0.5 - 1e-6]])}
    assert bench_systems.gradient_difference(a, b) == pytest.approx(1e-6, rel=1e-6)
    assert bench_systems.gradient_difference(a, a) == 0.0
    with pytest.raises(ValueError, match="different parameters"):
        bench_systems.gradient_difference(a, {"w": a["w"]})
    with pytest.raises(ValueError, match="shape"):
        bench_systems.gradient_difference(a, {"w": a["w"], "k": np.array([0.5])})


def test_summary_gives_rates_speedups_per_epoch_and_the_table_says_what_did_not_run():
    case = bench_systems.Case("paradoxical7_qnn", "001", "exact", 1, 80, 30, 0.01, 240)
    grads = {"circuit/circuit_weights": np.array([0.1, -0.2])}
    routes = {
        "ours": {
            "samples": 240, "seconds": 1.0, "cpu_seconds": 0.8, "first_step_s": 2.0, "first_step_cpu_s": 1.5,
            "gradients": grads,
        },
        "qml_shift": {
            "samples": 20, "seconds": 10.0, "cpu_seconds": 4.0, "capped": True, "first_step_s": 0.5,
            "gradients": {"circuit/circuit_weights": np.array([0.1, -0.2 + 2e-12])}, "grad_max_abs_diff_float32": 3e-8,
        },
        "pl_shift": {"error": "circuit differs from Statevector by 1.0e-03", "circuit_max_abs_diff": 1e-3},
    }  # fmt: skip
    summary = bench_systems.summarise(case, routes)
    ours, qml, pl = summary["ours"], summary["qml_shift"], summary["pl_shift"]
    assert ours["samples_per_s"] == 240 and ours["samples_per_cpu_s"] == 300
    assert ours["s_per_epoch"] == pytest.approx(80 / 240) and ours["s_per_training_cpu"] == pytest.approx(30 * 80 / 300)
    assert ours["speedup_of_ours"] == 1 and ours["grad_max_abs_diff"] == 0
    assert qml["samples_per_s"] == 2 and qml["s_per_epoch_cpu"] == 16
    assert qml["speedup_of_ours"] == 120 and qml["speedup_of_ours_cpu"] == 60
    assert qml["grad_max_abs_diff"] == pytest.approx(2e-12, rel=1e-3)
    assert pl["samples_per_s"] is None and pl["speedup_of_ours"] is None and pl["grad_max_abs_diff"] is None
    # a typical run: 30 epochs x 80 steps of batch 1 = 2,400 steps, the first one timed apart
    assert case.steps == 2400
    assert ours["step_s"] == pytest.approx(1 / 240) and ours["step_cpu_s"] == pytest.approx(0.8 / 240)
    assert ours["typical_run_s"] == pytest.approx(2.0 + 2399 / 240)
    assert ours["typical_run_cpu_s"] == pytest.approx(1.5 + 2399 * 0.8 / 240)
    assert qml["typical_run_s"] == pytest.approx(0.5 + 2399 * 0.5) and qml["typical_run_cpu_s"] is None
    versus = bench_systems.versus_fastest_peer(summary)
    ours_total, peer_total = 2.0 + 2399 / 240, 0.5 + 2399 * 0.5
    assert versus == {
        "ours": "ours", "ours_s": pytest.approx(ours_total), "fastest_peer": "qml_shift",
        "peer_s": pytest.approx(peer_total), "peer_over_ours": pytest.approx(peer_total / ours_total),
    }  # fmt: skip
    assert bench_systems.versus_fastest_peer(summary, "_cpu")["peer_over_ours"] is None  # qml has no CPU first step
    entry = {"seed_document": "001", "batch": 1, "routes": summary}
    lines = bench_systems.table({"paradoxical7_qnn": entry}).splitlines()
    assert len(lines) == 2 + 3 and all(line.count("|") == 17 for line in lines)
    assert (
        "| 001 paradoxical7_qnn | qml_shift | 1 | 20 | 2 | 5 | 16 | 120 | 60 | 2.0e-12 | 0.5 | 500 | 200 |" in lines[3]
    )
    assert "| 1,200 | - |" in lines[3]  # typical run: 0.5 s + 2,399 steps of 0.5 s; no CPU first step
    assert "capped: 20 rows in 10 s" in lines[3] and "float32 gradient: 3.0e-08" in lines[3]
    assert "not timed: circuit differs from Statevector" in lines[4] and "| - | - |" in lines[4]


def test_group_routes_count_steps_not_rows_and_are_compared_only_with_each_other():
    """A group's step serves every seed: its step time is seconds over its steps, and ours_group against the
    fastest group peer is a comparison apart from the one-seed routes'."""
    case = bench_systems.Case("cnn_circuit", "002", "x", 16, 160, 2, 0.01, 160, seeds=10)
    routes = {
        "ours": {"samples": 160, "seconds": 2.0, "cpu_seconds": 2.0, "first_step_s": 1.0, "first_step_cpu_s": 1.0},
        "tc_jax": {"samples": 160, "seconds": 1.0, "cpu_seconds": 1.0, "first_step_s": 1.0, "first_step_cpu_s": 1.0},
        "ours_group": {
            "samples": 1600, "steps": 10, "seconds": 3.0, "cpu_seconds": 3.0, "first_step_s": 2.0,
            "first_step_cpu_s": 2.0,
        },
        "tc_jax_group": {
            "samples": 1600, "steps": 10, "seconds": 5.0, "cpu_seconds": 5.0, "first_step_s": 2.0,
            "first_step_cpu_s": 2.0,
        },
    }  # fmt: skip
    summary = bench_systems.summarise(case, routes)
    assert summary["ours_group"]["step_s"] == pytest.approx(0.3) and summary["ours"]["step_s"] == pytest.approx(0.2)
    assert summary["ours_group"]["typical_run_s"] == pytest.approx(2.0 + 19 * 0.3)  # 2 epochs x 10 steps
    single, group = bench_systems.versus_fastest_peer(summary), bench_systems.versus_fastest_peer(summary, group=True)
    assert (single["ours"], single["fastest_peer"]) == ("ours", "tc_jax")
    assert single["peer_over_ours"] == pytest.approx((1.0 + 19 * 0.1) / (1.0 + 19 * 0.2))
    assert (group["ours"], group["fastest_peer"]) == ("ours_group", "tc_jax_group")
    assert group["peer_over_ours"] == pytest.approx((2.0 + 19 * 0.5) / (2.0 + 19 * 0.3))


def _expectation(circuit, observable, binding) -> float:
    return float(Statevector(circuit.assign_parameters(binding)).expectation_value(observable).real)


def parameter_shift_gradient_001(spec, params: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """Loss gradient of 001's model f = a <Z_10>(x; w) + b under the mean squared error, by hand: the
    parameter-shift rule on qiskit's Statevector for each circuit weight (each sits in exactly one Ry, so
    d<Z>/dw_k = (<Z>(w_k + pi/2) - <Z>(w_k - pi/2)) / 2), the chain rule for a and b."""
    counts = Counter(p for instruction in spec.circuit.data for p in instruction.operation.params)
    assert all(counts[w] == 1 for w in spec.weights)
    (observable,) = spec.observables
    w = params["circuit/circuit_weights"]
    a, b = params["linear/kernel"][0, 0], params["linear/bias"][0]
    gradient = {
        "circuit/circuit_weights": np.zeros(len(w)),
        "linear/kernel": np.zeros((1, 1)),
        "linear/bias": np.zeros(1),
    }
    for row, target in zip(x, y[:, 0]):
        inputs = dict(zip(spec.inputs, row))
        value = _expectation(spec.circuit, observable, inputs | dict(zip(spec.weights, w)))
        residual = 2 * (a * value + b - target) / len(x)  # d(mean squared error)/df for this row
        for k, shift in enumerate(np.eye(len(w)) * np.pi / 2):
            plus = _expectation(spec.circuit, observable, inputs | dict(zip(spec.weights, w + shift)))
            minus = _expectation(spec.circuit, observable, inputs | dict(zip(spec.weights, w - shift)))
            gradient["circuit/circuit_weights"][k] += residual * a * (plus - minus) / 2
        gradient["linear/kernel"][0, 0] += residual * value
        gradient["linear/bias"][0] += residual
    return gradient


def _case_001(systems_config, rows: int):
    case = bench_systems.cases(systems_config)["paradoxical7_qnn"]
    spec = bench_systems.circuit_spec(case)
    rng = np.random.default_rng(11)
    params = {
        "circuit/circuit_weights": rng.uniform(-np.pi, np.pi, len(spec.weights)),
        "linear/kernel": rng.uniform(-1, 1, (1, 1)),
        "linear/bias": rng.uniform(-1, 1, 1),
    }
    x, labels = bench_systems.training_data(case, spec, rows, seed=3)
    return dataclasses.replace(case, batch=rows, timed_samples=rows), spec, params, x, case_targets(case, labels)


def case_targets(case, labels):
    return bench_systems.targets(case, labels).astype(np.float64)


def test_engine_loss_gradient_for_001_equals_parameter_shift_on_statevector(keras, systems_config):
    case, spec, params, x, y = _case_001(systems_config, rows=3)
    model = bench_systems.keras_model(keras, case, spec, seed=1, dtype="float64")
    assert keras.config.floatx() == "float32" and keras.config.dtype_policy().name == "float32"  # restored
    ours = bench_systems.keras_loss_gradient(keras, model, params, x, y)
    reference = parameter_shift_gradient_001(spec, params, x.astype(np.float64), y)
    assert np.abs(reference["circuit/circuit_weights"]).max() > 0.01  # a gradient worth comparing
    assert bench_systems.gradient_difference(reference, ours) <= bench_systems.GRADIENT_TOL


def test_pennylane_conversion_of_every_benchmarked_circuit_equals_statevector(systems_config):
    qml = pytest.importorskip("pennylane")

    def qnode(spec):
        qfunc, measure = bench_systems.pennylane_circuit(spec)

        def run(x, w):
            qfunc(x, w)
            return measure()

        return qml.QNode(run, qml.device("default.qubit", wires=spec.circuit.num_qubits))

    for name, case in bench_systems.cases(systems_config).items():
        spec = bench_systems.circuit_spec(case)
        rng = np.random.default_rng(5)
        x, w = rng.uniform(-np.pi, np.pi, (3, len(spec.inputs))), rng.uniform(-np.pi, np.pi, len(spec.weights))
        out = qnode(spec)(x, w)
        out = np.asarray(out) if spec.output == "probabilities" else np.stack(out, axis=-1)
        difference = np.abs(out - bench_systems.statevector_outputs(spec, x, w)).max()
        assert difference <= bench_systems.CIRCUIT_TOL, name


@pytest.mark.parametrize("route", ["qml_shift", "pl_shift", "pl_backprop", "pl_jax", "tc_jax"])
def test_peer_routes_give_the_parameter_shift_gradient_for_001(systems_config, route):
    """Each peer route, on 001, gives the independent parameter-shift gradient (and so the engine's)."""
    needs = {"qml_shift": ["torch", "qiskit_machine_learning"], "pl_jax": ["jax", "pennylane"]}
    for module in needs.get(route, ["jax", "tensorcircuit"] if route == "tc_jax" else ["torch", "pennylane"]):
        pytest.importorskip(module)
    case, spec, params, x, y = _case_001(systems_config, rows=2)
    cx, w = np.random.default_rng(2).uniform(-np.pi, np.pi, (2, len(spec.inputs))), params["circuit/circuit_weights"]
    check = (cx, w, bench_systems.statevector_outputs(spec, cx, w))
    result = bench_systems.ROUTE_FUNCTIONS[route](case, spec, check, (x, y), (params, 1e-8), 0.0, 1)
    assert "error" not in result and result["circuit_max_abs_diff"] <= bench_systems.CIRCUIT_TOL
    reference = parameter_shift_gradient_001(spec, params, x.astype(np.float64), y)
    assert bench_systems.gradient_difference(reference, result["gradients"]) <= bench_systems.GRADIENT_TOL
    assert result["samples"] == 2  # a warm-up step and one timed step of the 2 rows
    if route == "qml_shift":
        assert result["grad_max_abs_diff_float32"] < 1e-5  # TorchConnector casts to torch.float


def test_tensorcircuit_conversion_of_every_benchmarked_circuit_equals_statevector(systems_config):
    """tensorcircuit-ng's circuit, built gate by gate from the Qiskit one, gives Statevector's outputs."""
    pytest.importorskip("tensorcircuit")
    jax = pytest.importorskip("jax")

    for name, case in bench_systems.cases(systems_config).items():
        spec = bench_systems.circuit_spec(case)
        outputs = jax.vmap(bench_systems.tensorcircuit_circuit(spec), in_axes=(0, None))
        rng = np.random.default_rng(6)
        x, w = rng.uniform(-np.pi, np.pi, (3, len(spec.inputs))), rng.uniform(-np.pi, np.pi, len(spec.weights))
        difference = np.abs(np.asarray(outputs(x, w)) - bench_systems.statevector_outputs(spec, x, w)).max()
        assert difference <= bench_systems.CIRCUIT_TOL, name


def test_engine_loss_gradient_under_xla_equals_parameter_shift_for_001(keras, systems_config):
    case, spec, params, x, y = _case_001(systems_config, rows=2)
    model = bench_systems.keras_model(keras, case, spec, seed=1, dtype="float64")
    ours = bench_systems.keras_loss_gradient(keras, model, params, x, y, jit=True)
    reference = parameter_shift_gradient_001(spec, params, x.astype(np.float64), y)
    assert bench_systems.gradient_difference(reference, ours) <= bench_systems.GRADIENT_TOL
