"""The device path (qtlmnist.hardware), offline: the BitArray -> features map against hand counts and the exact
distribution, the device path against Aer with the same device's noise model, and the ledger against a fake IBM
cloud (tests/fake_runtime.py: autospecs whose jobs outlive the process) through a killed run, a rejected job,
network errors and bad backends."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_runtime import Cloud
from scipy import stats

from conftest import ROOT
from qtlmnist import hardware, quantum

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SamplerV2's notice of its successor

SETTINGS = {"backend": "FakeManilaV2", "channel": None, "instance": None, "mode": "batch", "pub_size": 4, "retries": 2}
DEVICE = SETTINGS | {"backend": "ibm_fakecity"}
# Each comparison of two count vectors below may wrongly fail with probability at most ALPHA (Bonferroni over its
# rows), so the whole file raises a false alarm less than once in a few hundred runs.
ALPHA = 1e-3


def homogeneity_p(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the chi-square test that two count vectors come from one distribution; outcomes seen fewer
    than 10 times in both together are pooled into one cell, so the chi-square approximation holds."""
    table = np.stack([a, b]).astype(float)
    big = table.sum(axis=0) >= 10
    table = np.column_stack([table[:, big], table[:, ~big].sum(axis=1)]) if (~big).any() else table[:, big]
    table = table[:, table.sum(axis=0) > 0]
    return stats.chi2_contingency(table)[1]


def goodness_p(counts: np.ndarray, probabilities: np.ndarray) -> float:
    """p-value of the chi-square goodness-of-fit test of counts against exact probabilities (cells with an
    expected count under 5 pooled)."""
    expected = probabilities * counts.sum()
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    expected = np.append(expected[big], expected[~big].sum())
    keep = expected > 0
    return stats.chisquare(observed[keep], expected[keep])[1]


def instructions(circuit) -> list:
    """Gate, qubits and parameters of each instruction (QuantumCircuit == also compares the circuits' names)."""
    return [
        (i.operation.name, [circuit.find_bit(q).index for q in i.qubits], [str(p) for p in i.operation.params])
        for i in circuit.data
    ]


def test_bitarray_counts_put_clbit_i_at_weight_2_to_the_i():
    from qiskit.primitives import BitArray

    # row 0: clbit 0 set twice, clbits 4 and 1 once; row 1: every clbit three times (by hand: 1, 18, 31)
    bits = BitArray.from_samples(["00001", "00001", "10010", "00000"], num_bits=5)
    other = BitArray.from_samples(["11111", "11111", "11111", "00000"], num_bits=5)
    both = BitArray(np.stack([bits.array, other.array]), num_bits=5)
    counts = hardware.bitarray_counts(both, rows=2, shots=4, n_qubits=5)
    expected = np.zeros((2, 32), dtype=int)
    expected[0, [1, 18, 0]] = [2, 1, 1]
    expected[1, [31, 0]] = [3, 1]
    np.testing.assert_array_equal(counts, expected)
    # Aer's count keys read the same way (quantum.counts_to_features)
    np.testing.assert_array_equal(
        quantum.counts_to_features([{"00001": 2, "10010": 1, "00000": 1}], 5)[0], expected[0] / 4
    )
    with pytest.raises(hardware.HardwareError, match="expected 5 shots of 5"):
        hardware.bitarray_counts(both, rows=2, shots=5, n_qubits=5)
    with pytest.raises(hardware.HardwareError, match=r"expected \(3,\)"):
        hardware.bitarray_counts(both, rows=3, shots=4, n_qubits=5)


def test_noiseless_sampler_counts_follow_the_exact_distribution():
    # SamplerV2 on a noiseless simulator, read by result_counts: the closed form's order (Statevector's) or the
    # test fails; reading the bits reversed must fail it.
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime import SamplerV2

    x = np.random.default_rng(3).random((4, 5))
    circuit, _ = quantum.build_circuit(5)
    shots = 4096
    result = SamplerV2(mode=AerSimulator(seed_simulator=1)).run([(circuit, quantum.angles(x))], shots=shots).result()
    counts = hardware.result_counts(result, 4, shots, 5)
    exact = quantum.exact_probabilities(x)
    reverse = np.array([int(f"{i:05b}"[::-1], 2) for i in range(32)])
    for row in range(4):
        assert goodness_p(counts[row], exact[row]) > ALPHA / 4
        assert goodness_p(counts[row][reverse], exact[row]) < 1e-6


def test_fake_device_matches_aer_with_its_noise_model_within_shot_noise(tmp_path):
    # The device path in local testing mode against an independent Aer run of the same ISA circuit under the same
    # device's noise model (NoiseModel.from_backend_properties): chi-square homogeneity per image. The test has
    # power: the noiseless distribution and the device's counts with their bits reversed are both rejected.
    x = np.random.default_rng(0).random((6, 1, 5))
    shots = 8192
    run = hardware.device_features(x, SETTINGS, shots, seed=7, ledger_root=tmp_path)
    reference = hardware.noise_model_features(run, x, shots, seed=11)
    # the same ISA circuit as the Aer noise-model path of the experiments (quantum.aer_features)
    from qiskit import transpile

    circuit, _ = quantum.build_circuit(5)
    aer_isa = transpile(circuit, backend=hardware.fake_backend("FakeManilaV2"), optimization_level=1, seed_transpiler=0)
    assert instructions(aer_isa) == instructions(run.isa_circuit) and aer_isa.layout == run.isa_circuit.layout
    device, aer = np.rint(run.features[:, :32] * shots), np.rint(reference[:, :32] * shots)
    assert (device.sum(axis=1) == shots).all()
    exact = quantum.exact_probabilities(x[:, 0])
    reverse = np.array([int(f"{i:05b}"[::-1], 2) for i in range(32)])
    for row in range(len(x)):
        assert homogeneity_p(device[row], aer[row]) > ALPHA / len(x), row
        assert homogeneity_p(device[row][reverse], aer[row]) < 1e-6
        assert goodness_p(device[row], exact[row]) < 1e-6  # the noise is there, and measurable


def test_plan_counts_circuits_shots_jobs_and_device_time():
    plan = hardware.Plan("ibm_x", 1000, 1, 1024, 500, "batch", 257e-6, "stated")
    # by hand: 1,000 circuits x 1,024 shots = 1,024,000 shots; x 257 us = 263.168 s; 2 jobs
    assert (plan.circuits, plan.total_shots, plan.jobs) == (1000, 1_024_000, 2)
    assert plan.device_seconds == pytest.approx(263.168)
    assert "1,024,000 shots, in 2 job(s)" in plan.text() and "263 s (4.4 min)" in plan.text()
    backend = hardware.fake_backend("FakeManilaV2")
    isa, layout = hardware.transpile_once(backend, 5)
    seconds, source = hardware.seconds_per_shot(backend, isa)
    # FakeManilaV2 publishes a 250 us repetition delay; the circuit adds its gates and readout (a few us)
    assert 250e-6 < seconds < 260e-6 and "backend properties" in source
    assert sorted(layout) == layout and len(set(layout)) == 5


# --- against the fake cloud -------------------------------------------------------------------------------


def read_ledger(root: Path) -> list[dict]:
    (path,) = root.glob("*/jobs.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


KILLED_RUN = """
import sys
import numpy as np
from fake_runtime import Cloud
from qtlmnist import hardware
cloud = Cloud(sys.argv[1])
x = np.load(sys.argv[2])
hardware.device_features(x, {settings!r}, 64, 7, sys.argv[3], service_factory=cloud.factory, wait_s=0)
"""


def test_a_killed_run_reattaches_to_its_jobs_instead_of_submitting_again(tmp_path):
    cloud = Cloud(tmp_path / "cloud")
    cloud.set(hold=True)  # the device is busy: the first run waits on its jobs, and is killed there
    x = np.random.default_rng(1).random((10, 1, 5))
    np.save(tmp_path / "x.npy", x)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "workflow/scripts"), str(ROOT / "tests")])}
    script = KILLED_RUN.format(settings=DEVICE)
    process = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            script,
            str(tmp_path / "cloud"),
            str(tmp_path / "x.npy"),
            str(tmp_path / "ledger"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(cloud.job_ids()) < 3 or len(list((tmp_path / "ledger").glob("*/jobs.jsonl"))) == 0:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the first run never submitted its three jobs"
        time.sleep(0.2)
    time.sleep(0.5)  # its third ledger line
    process.send_signal(signal.SIGKILL)
    process.wait()
    submitted = read_ledger(tmp_path / "ledger")
    assert [r["event"] for r in submitted] == ["submitted"] * 3
    assert [r["job_id"] for r in submitted] == cloud.job_ids()
    assert not any("token" in key for record in submitted for key in record)

    cloud.release()  # the device runs them while nobody waits
    again = Cloud(tmp_path / "cloud")  # a new process's view of the same cloud
    run = hardware.device_features(x, DEVICE, 64, 7, tmp_path / "ledger", service_factory=again.factory, wait_s=0)
    again.service._run.assert_not_called()  # nothing submitted twice
    assert [call.args[0] for call in again.service.job.call_args_list] == cloud.job_ids()
    assert cloud.job_ids() == ["fake00000", "fake00001", "fake00002"]
    for job_id in cloud.job_ids():  # batch mode: all three went into the one batch the first run opened
        assert json.loads((tmp_path / "cloud/jobs" / f"{job_id}.json").read_text())["session_id"] == "batch-0001"
    # the features are the cloud's results of those jobs, in row order
    from qiskit_ibm_runtime import RuntimeDecoder

    expected = []
    for job_id in cloud.job_ids():
        record = json.loads((tmp_path / "cloud/jobs" / f"{job_id}.json").read_text())
        bits = json.loads(record["result"], cls=RuntimeDecoder)[0].data.c
        for row in range(bits.shape[0]):  # Qiskit's own decoding of each row, not ours
            frequencies = np.zeros(32)
            for outcome, count in bits.get_int_counts(loc=row).items():
                frequencies[outcome] = count / 64
            expected.append(frequencies)
    np.testing.assert_array_equal(run.features, expected)
    assert [r["event"] for r in read_ledger(tmp_path / "ledger")] == ["submitted"] * 3 + ["done"] * 3
    # a third run reads the counts from the ledger and asks the cloud nothing
    third = Cloud(tmp_path / "cloud")
    rerun = hardware.device_features(x, DEVICE, 64, 7, tmp_path / "ledger", service_factory=third.factory, wait_s=0)
    third.service._run.assert_not_called()
    third.service.job.assert_not_called()
    np.testing.assert_array_equal(rerun.features, run.features)


def test_a_rejected_job_fails_with_the_devices_message_and_is_submitted_anew_next_time(tmp_path):
    cloud = Cloud(tmp_path / "cloud")
    cloud.set(reject="Error code 1517; Instruction not in basis gates")
    x = np.random.default_rng(2).random((3, 1, 5))
    with pytest.raises(hardware.HardwareError, match="Instruction not in basis gates"):
        hardware.device_features(x, DEVICE, 32, 7, tmp_path / "ledger", service_factory=cloud.factory, wait_s=0)
    assert [r["event"] for r in read_ledger(tmp_path / "ledger")] == ["submitted", "failed"]
    cloud.set(reject=None)
    run = hardware.device_features(x, DEVICE, 32, 7, tmp_path / "ledger", service_factory=cloud.factory, wait_s=0)
    assert run.features.shape == (3, 32) and cloud.service._run.call_count == 2


def test_network_errors_are_retried_a_bounded_number_of_times(tmp_path):
    cloud = Cloud(tmp_path / "cloud")
    cloud.set(transient=2)  # two 503s, then the submission goes through (in job mode: no batch session)
    x = np.random.default_rng(4).random((2, 1, 5))
    job_mode = DEVICE | {"mode": "job"}
    hardware.device_features(x, job_mode, 32, 7, tmp_path / "ok", service_factory=cloud.factory, wait_s=0)
    assert cloud.service._run.call_count == 3 and cloud.job_ids() == ["fake00000"]
    assert json.loads((tmp_path / "cloud/jobs/fake00000.json").read_text())["session_id"] is None
    cloud.set(transient=5)  # more than retries = 2
    with pytest.raises(hardware.HardwareError, match=r"still failing after 2 retries: .503 Server Error"):
        hardware.device_features(x, DEVICE, 32, 7, tmp_path / "bad", service_factory=cloud.factory, wait_s=0)
    assert not list((tmp_path / "bad").glob("*/jobs.jsonl"))  # nothing was submitted, nothing recorded
    # fetching a result fails for longer than the retries: the job stays submitted, and the next run re-attaches
    cloud.set(transient=0, transient_results=5)
    with pytest.raises(hardware.HardwareError, match="a rerun re-attaches to it"):
        hardware.device_features(x, DEVICE, 32, 7, tmp_path / "fetch", service_factory=cloud.factory, wait_s=0)
    assert [r["event"] for r in read_ledger(tmp_path / "fetch")] == ["submitted"]
    submitted = cloud.service._run.call_count
    cloud.set(transient_results=0)
    hardware.device_features(x, DEVICE, 32, 7, tmp_path / "fetch", service_factory=cloud.factory, wait_s=0)
    assert cloud.service._run.call_count == submitted  # re-attached, not paid for twice
    assert [r["event"] for r in read_ledger(tmp_path / "fetch")] == ["submitted", "done"]


@pytest.mark.parametrize(
    "settings, cloud_qubits, message",
    [
        (
            DEVICE | {"backend": "ibm_nowhere"},
            None,
            r"quantum.ibm_runtime.backend = 'ibm_nowhere': .*available: ibm_fakecity",
        ),
        (DEVICE, 3, r"'ibm_fakecity' has 3 qubit\(s\); the circuit needs quantum.n_qubits = 5"),
        (SETTINGS | {"backend": "FakeArmonkV2"}, None, r"'FakeArmonkV2' has 1 qubit\(s\)"),
        (SETTINGS | {"backend": "FakeNowhereV2"}, None, r"no such fake backend .*FakeManilaV2"),
    ],
    ids=["unknown device", "too few qubits", "too few qubits (fake)", "unknown fake"],
)
def test_a_bad_backend_fails_before_any_submission(tmp_path, settings, cloud_qubits, message):
    cloud = Cloud(tmp_path / "cloud", num_qubits=cloud_qubits)
    x = np.random.default_rng(5).random((2, 1, 5))
    with pytest.raises(hardware.HardwareError, match=message):
        hardware.device_features(x, settings, 32, 7, tmp_path / "ledger", service_factory=cloud.factory, wait_s=0)
    cloud.service._run.assert_not_called()
    assert not (tmp_path / "ledger").exists()


def test_no_account_fails_naming_the_fix(tmp_path):
    from unittest.mock import create_autospec

    from qiskit_ibm_runtime import QiskitRuntimeService
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    factory = create_autospec(QiskitRuntimeService, side_effect=AccountNotFoundError("Unable to find account."))
    with pytest.raises(hardware.HardwareError, match=r"Unable to find account.*save_account\(token="):
        hardware.device_features(np.zeros((1, 1, 5)), DEVICE, 32, 7, tmp_path, service_factory=factory)


# --- config checks at workflow start ------------------------------------------------------------------------


def hardware_config(**settings) -> dict:
    import copy

    import yaml

    config = copy.deepcopy(yaml.safe_load((ROOT / "config/config.yaml").read_text()))
    config["quantum"]["executor"] = "ibm_runtime"
    config["quantum"]["ibm_runtime"] |= settings
    return config


def test_a_token_in_config_is_refused_without_repeating_it():
    from qtlmnist.config import ConfigError, check_schema

    config = hardware_config(token="s3cr3t-api-key")
    with pytest.raises(ConfigError) as error:
        check_schema(config, ROOT / "workflow/schemas/config.schema.yaml")
    message = str(error.value)
    assert "quantum.ibm_runtime.token: credentials never go in the config" in message
    assert "QiskitRuntimeService.save_account" in message and "QISKIT_IBM_TOKEN" in message
    assert "s3cr3t" not in message and "unknown key" not in message


def test_a_real_device_needs_the_confirmation_and_an_account(monkeypatch, tmp_path):
    from qtlmnist.config import ConfigError, check_consistency

    monkeypatch.setenv("HOME", str(tmp_path))  # no saved account (~/.qiskit/qiskit-ibm.json)
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_URL"):
        monkeypatch.delenv(name, raising=False)
    import qiskit_ibm_runtime.accounts.management as management

    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE", str(tmp_path / "qiskit-ibm.json"))
    with pytest.raises(ConfigError) as error:
        check_consistency(hardware_config(backend="ibm_brisbane"))
    message = str(error.value)
    # the plan, by hand: 1,000 images x 1,024 shots = 1,024,000 shots; x 255 us (the stated figure) = 261 s
    assert "quantum.ibm_runtime.confirm = false: ibm_brisbane is a real device" in message
    assert "1000 images x 1 circuit(s) = 1000 circuits x 1024 shots = 1,024,000 shots, in 2 job(s)" in message
    assert "estimated device time 261 s" in message and "Set quantum.ibm_runtime.confirm: true" in message
    assert "quantum.ibm_runtime: no IBM Quantum account found" in message and "save_account(token=" in message
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "from-the-environment")  # an account, and a confirmation: no error
    check_consistency(hardware_config(backend="ibm_brisbane", confirm=True))
    # a fake backend needs neither; the aer executor reads nothing of the section
    check_consistency(hardware_config(backend="FakeManilaV2"))
    with pytest.raises(ConfigError, match="'FakeArmonkV2' has 1 qubit"):
        check_consistency(hardware_config(backend="FakeArmonkV2"))
    with pytest.raises(ConfigError, match="ledger must live outside results/"):
        check_consistency(hardware_config(ledger_dir="results/ledger"))
    aer = hardware_config(backend="FakeNowhereV2")
    aer["quantum"]["executor"] = "aer"
    check_consistency(aer)


# --- end to end, on the CI run -------------------------------------------------------------------------------

HARDWARE_YAML = """
quantum:
  executor: ibm_runtime
  ibm_runtime:
    backend: FakeManilaV2
    images: 200
    pub_size: 80
    ledger_dir: {ledger}
"""


def run_hardware_target(workdir: Path, target: str) -> subprocess.CompletedProcess:
    """Snakemake on config/ci.yaml and hw.yaml over it (conftest.run_snakemake takes ci.yaml alone)."""
    from conftest import SNAKEMAKE

    command = [SNAKEMAKE, target, "--cores", "2", "--configfile", "config/ci.yaml", "hw.yaml"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    logs = "\n".join(
        f"--- {p}\n{p.read_text()[-3000:]}" for p in (workdir / "results/mnist/logs").rglob("*hardware*.log")
    )
    assert result.returncode == 0, result.stderr[-6000:] + logs
    return result


@pytest.mark.ci_copy
@pytest.mark.integration
def test_fake_device_run_end_to_end_adds_the_hardware_row_and_reattaches_from_the_ledger(ci_run, tmp_path):
    import shutil

    import pandas as pd

    from conftest import copy_repo
    from qtlmnist import report

    workdir = copy_repo(tmp_path / "repo")
    shutil.copytree(ci_run / "results", workdir / "results", dirs_exist_ok=True)  # keeps mtimes: only new jobs run
    ledger = tmp_path / "ledger"
    (workdir / "hw.yaml").write_text(HARDWARE_YAML.format(ledger=ledger))
    # The copy has no .snakemake metadata, whose record of the table's inputs would rerun it in a checkout (a new
    # input); without it, the missing table does.
    (workdir / "results/mnist/replication.csv").unlink()
    result = run_hardware_target(workdir, "results/mnist/replication.csv")
    assert "IBM Runtime plan on FakeManilaV2: 200 images" in result.stderr  # at the terminal, before submission
    out = workdir / "results/mnist"
    jobs = {line.split("(Rule: ")[1].rstrip(")") for line in result.stderr.splitlines() if "(Rule: " in line}
    assert jobs == {"hardware_features", "evaluate_hardware", "replication_table"}

    with np.load(out / "hardware/device_test.npz", allow_pickle=False) as data:
        device, labels, rows = data["features"], data["labels"], data["rows"]
    with np.load(out / "quantum/test.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(labels, data["labels"][rows])
        share = np.bincount(data["labels"], minlength=10) / len(data["labels"])
    assert len(set(rows)) == 200 and np.abs(np.bincount(labels, minlength=10) - 200 * share).max() <= 1  # stratified
    counts = device * 128  # ci.yaml: 128 shots
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-9)
    counts = np.rint(counts)
    assert (counts.sum(axis=1) == 128).all()
    # device and noise-model counts of the same 200 images, summed: one chi-square homogeneity test at ALPHA
    # (conservative: each sum is a mixture of the images' multinomials, less variable than one multinomial)
    with np.load(out / "hardware/noise_model_test.npz", allow_pickle=False) as data:
        noise = np.rint(data["features"] * 128)
    assert homogeneity_p(counts.sum(axis=0), noise.sum(axis=0)) > ALPHA

    metrics = json.loads((out / "metrics/hybrid_hardware.json").read_text())
    # the reloaded classifier predicts as the trained one did, on the same noiseless features
    with np.load(out / "classifier/hybrid_predictions.npz", allow_pickle=False) as data:
        trained = float(np.mean(data["test_probabilities"][rows].argmax(axis=1) == labels))
    assert metrics["noiseless_accuracy"] == pytest.approx(trained, abs=1e-12)
    assert metrics["device_n"] == 200 and np.sum(metrics["device_confusion"]) == 200
    table = pd.read_csv(out / "replication.csv")
    assert list(table["claim"]) == [c.claim for c in report.CLAIMS] + [report.HARDWARE_CLAIM]
    row = table.iloc[-1]
    assert row["measured"] == pytest.approx(100 * metrics["device_accuracy"])
    assert row["difference"] == pytest.approx(100 * (metrics["device_accuracy"] - metrics["noiseless_accuracy"]))
    assert "FakeManilaV2, local testing mode, 200 test images" in (out / "replication.md").read_text()

    # the ledger: every job submitted, then done; a rerun that lost the outputs submits nothing and gets the same
    # bytes (the ledger is no output: Snakemake never deletes it)
    assert [r["event"] for r in read_ledger(ledger / "mnist")] == ["submitted"] * 3 + ["done"] * 3
    before = (out / "hardware/device_test.npz").read_bytes()
    shutil.rmtree(out / "hardware")
    run_hardware_target(workdir, "results/mnist/hardware/device_test.npz")
    assert "counts of job" in (out / "logs/quantum/hardware_features.log").read_text()
    assert len(read_ledger(ledger / "mnist")) == 6
    assert (out / "hardware/device_test.npz").read_bytes() == before


def test_the_hardware_row_reads_the_device_against_the_same_images_noiseless(tmp_path):
    from test_evaluate_report import metrics

    from qtlmnist import figures, report

    hardware_metrics = {
        "backend": "ibm_fakecity",
        "local_testing_mode": False,
        "images": 1000,
        "device_accuracy": 0.412,
        "noiseless_accuracy": 0.705,
        "noise_model_accuracy": 0.431,
    }
    table = report.replication_table(metrics(0.81, 0.60) | {"hybrid_hardware": hardware_metrics}, 2.0, 0.005)
    row = table.iloc[-1]
    assert row["claim"] == report.HARDWARE_CLAIM and row["unit"] == "hardware" and pd_isna(row["paper"])
    assert row["measured"] == pytest.approx(41.2) and row["difference"] == pytest.approx(41.2 - 70.5)
    assert row["verdict"] == (
        "no paper value: ibm_fakecity, 1000 test images; same images noiseless 70.50 %, noise model 43.10 %"
    )
    markdown = report.to_markdown(table)
    assert "| Hybrid accuracy on hardware |" in markdown and "| 41.20 % | -29.30 pp vs noiseless |" in markdown
    landing = report.landing_rst(table, "mnist", "MNIST", {"shots": 1024})
    assert "Hybrid accuracy on hardware" in landing and "41.20 %" in landing
    figures.paper_vs_measured(table, "MNIST", tmp_path / "figure.png")  # plots the paper's accuracy claims only
    # without the device's metrics, the table is the paper's claims alone
    assert len(report.replication_table(metrics(0.81, 0.60), 2.0, 0.005)) == len(report.CLAIMS)


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_the_workflow_refuses_a_token_and_an_unconfirmed_device_before_any_job(tmp_path):
    from conftest import SNAKEMAKE, copy_repo

    workdir = copy_repo(tmp_path / "repo")
    (workdir / "device.yaml").write_text(
        "quantum:\n  executor: ibm_runtime\n  ibm_runtime:\n    backend: ibm_brisbane\n    token: s3cr3t-api-key\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QISKIT_IBM_")} | {"HOME": str(tmp_path)}
    command = [SNAKEMAKE, "--dry-run", "--cores", "1", "--configfile", "config/ci.yaml", "device.yaml"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr  # a dry run's errors go to stdout
    assert "quantum.ibm_runtime.token: credentials never go in the config" in output
    assert "s3cr3t" not in output
    (workdir / "device.yaml").write_text(
        "quantum:\n  executor: ibm_runtime\n  ibm_runtime:\n    backend: ibm_brisbane\n"
    )
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "quantum.ibm_runtime.confirm = false: ibm_brisbane is a real device" in output
    assert "IBM Runtime plan on ibm_brisbane: 1000 images" in output
    assert "quantum.ibm_runtime: no IBM Quantum account found" in output
    assert list((workdir / "results").iterdir()) == []
