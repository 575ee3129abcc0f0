"""The paper's circuit on an IBM Quantum device (or a fake one, offline) through Qiskit Runtime's SamplerV2.

The same circuit as the Aer path (`quantum.build_circuit`), transpiled once for the device with
`generate_preset_pass_manager` (optimization level 1, seed 0: the settings the Aer noise-model path uses, so on
a fake backend both run the same ISA circuit); each job is one PUB, the ISA circuit with a block of parameter
rows; each row's BitArray becomes the same 2**n frequencies, in the same order, as `quantum.counts_to_features`
(index = sum_i b_i 2**i, clbit i = qubit i of the logical circuit, whatever physical qubit it landed on).

Nothing paid twice, nothing lost: every job id goes into a ledger (`Ledger`, outside results/, not a declared
output, so neither Snakemake's clean-up of a failed job nor `make clean` removes it) the moment the job is
submitted, and every job's counts once they are fetched. A rerun of the same plan (same backend, images,
inputs, shots and PUB size) re-attaches to what the ledger holds instead of submitting again.

Credentials never pass through here: `QiskitRuntimeService` reads its saved account or its environment variables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import quantum

log = logging.getLogger(__name__)

KEY = "quantum.ibm_runtime"
# When a backend publishes no timing. Each IBM device has its own default repetition delay (IBM Quantum guide
# "Dynamic repetition rate execution"); 250 us is the one FakeManilaV2's snapshot of a real device publishes,
# plus about 5 us for this circuit's gates and readout.
FALLBACK_SECONDS_PER_SHOT = 255e-6
# The transpilation both paths use (the Aer noise-model path in quantum.aer_features calls `transpile` with
# the same level and seed, which builds the same preset pass manager).
OPTIMIZATION_LEVEL = 1
SEED_TRANSPILER = 0
SAVE_ACCOUNT = (
    'save your account once: python -c "from qiskit_ibm_runtime import QiskitRuntimeService; '
    "QiskitRuntimeService.save_account(token='<your API key>', channel='ibm_quantum_platform', "
    "instance='<your instance CRN>')\" (it goes to ~/.qiskit/qiskit-ibm.json), or set QISKIT_IBM_TOKEN "
    "(and QISKIT_IBM_INSTANCE) in the environment"
)


class HardwareError(RuntimeError):
    """The device run cannot go ahead (bad backend, no account) or the device refused or lost a job."""


def is_fake(backend: str) -> bool:
    """A fake backend class of qiskit_ibm_runtime.fake_provider: local testing mode, offline and free."""
    return backend.startswith("Fake")


def fake_backend(name: str):
    from qiskit_ibm_runtime import fake_provider

    backend_class = getattr(fake_provider, name, None)
    if backend_class is None or not name.endswith("V2"):
        known = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and n.endswith("V2"))
        raise HardwareError(
            f"{KEY}.backend = {name!r}: no such fake backend in qiskit_ibm_runtime.fake_provider "
            f"(fake backends: {', '.join(known)}; a real device is named like ibm_brisbane)"
        )
    return backend_class()


def circuits_per_image(config: dict) -> int:
    """Circuits each image runs: one, or one per n_qubits latent dimensions with the `chunks` reduction."""
    q = config["quantum"]
    return math.ceil(config["autoencoder"]["latent_dim"] / q["n_qubits"]) if q["reduction"] == "chunks" else 1


# --- the plan -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a device run submits and about how long the device works on it."""

    backend: str
    images: int
    circuits_per_image: int
    shots: int
    pub_size: int
    mode: str
    seconds_per_shot: float
    estimate_source: str

    @property
    def circuits(self) -> int:
        return self.images * self.circuits_per_image

    @property
    def jobs(self) -> int:
        return math.ceil(self.circuits / self.pub_size)

    @property
    def total_shots(self) -> int:
        return self.circuits * self.shots

    @property
    def device_seconds(self) -> float:
        return self.total_shots * self.seconds_per_shot

    def text(self) -> str:
        return (
            f"IBM Runtime plan on {self.backend}: {self.images} images x {self.circuits_per_image} circuit(s) = "
            f"{self.circuits} circuits x {self.shots} shots = {self.total_shots:,} shots, in {self.jobs} job(s) of "
            f"up to {self.pub_size} parameter rows ({self.mode} mode); estimated device time "
            f"{self.device_seconds:,.0f} s ({self.device_seconds / 60:.1f} min) at "
            f"{1e6 * self.seconds_per_shot:.0f} us per shot ({self.estimate_source}), plus IBM's per-job overhead"
        )


def seconds_per_shot(backend, isa_circuit) -> tuple[float, str]:
    """(seconds, where the figure comes from): the backend's default repetition delay plus the ISA circuit's
    duration from its target's gate and readout durations; the stated fallback when either is missing."""
    try:
        rep_delay = getattr(backend, "default_rep_delay", None)
        if rep_delay is None:
            rep_delay = backend.configuration().default_rep_delay
        duration = isa_circuit.estimate_duration(backend.target, unit="s")
        if rep_delay is None or not np.isfinite(duration):
            raise ValueError("not published")
    except Exception as error:  # a backend without durations or configuration
        log.info("no timing from %s (%s): using %.0f us per shot", backend.name, error, 1e6 * FALLBACK_SECONDS_PER_SHOT)
        return FALLBACK_SECONDS_PER_SHOT, "stated figure: 250 us repetition delay (FakeManilaV2's) + ~5 us circuit"
    return float(rep_delay) + float(duration), (
        f"backend properties: {1e6 * rep_delay:.0f} us repetition delay + {1e6 * duration:.1f} us circuit"
    )


# --- checks at workflow start (qtlmnist.config calls these) --------------------------------------------------


def config_errors(config: dict) -> list[str]:
    """What can be known wrong before any job, without the network: a fake backend that does not exist or has
    too few qubits; for a real device, the missing confirmation (with the plan, at the stated per-shot figure)
    or a missing account."""
    q = config["quantum"]
    settings, n_qubits = q["ibm_runtime"], q["n_qubits"]
    name = settings["backend"]
    ledger = Path(settings["ledger_dir"])
    if not ledger.is_absolute() and ledger.parts[:1] == ("results",):
        return [
            f"{KEY}.ledger_dir = {settings['ledger_dir']!r}: the ledger must live outside results/, which `make clean` "
            "empties (the default: ledger)"
        ]
    if is_fake(name):
        try:
            backend = fake_backend(name)
        except HardwareError as error:
            return [str(error)]
        return [] if backend.num_qubits >= n_qubits else [too_few_qubits(name, backend.num_qubits, n_qubits)]
    problems = []
    if not settings["confirm"]:
        plan = config_plan(config)
        problems.append(
            f"{KEY}.confirm = false: {name} is a real device, whose time is paid for. {plan.text()}. "
            f"Set {KEY}.confirm: true to submit (or a FakeXxxV2 backend to try it offline)"
        )
    problems.extend(account_errors(settings))
    return problems


def config_plan(config: dict) -> Plan:
    """The plan as far as config tells it (the test split's size, the stated per-shot figure)."""
    from .resources import hardware_images  # the one place that sizes the splits from the config

    settings = config["quantum"]["ibm_runtime"]
    images = hardware_images(config)
    return Plan(
        settings["backend"],
        images,
        circuits_per_image(config),
        config["quantum"]["shots"],
        settings["pub_size"],
        settings["mode"],
        FALLBACK_SECONDS_PER_SHOT,
        "stated figure; the job's log gives the device's own",
    )


def account_errors(settings: dict) -> list[str]:
    """A saved account (or QISKIT_IBM_TOKEN) for the configured channel must exist; read offline."""
    from qiskit_ibm_runtime.accounts import AccountManager

    try:
        AccountManager.get(channel=settings["channel"])
    except Exception as error:  # AccountNotFoundError, or an unreadable account file
        return [f"{KEY}: no IBM Quantum account found ({type(error).__name__}: {error}); {SAVE_ACCOUNT}"]
    return []


def too_few_qubits(name: str, has: int, needs: int) -> str:
    return (
        f"{KEY}.backend = {name!r} has {has} qubit(s); the circuit needs quantum.n_qubits = {needs} "
        "(choose a device with at least that many)"
    )


# --- connecting ------------------------------------------------------------------------------------------------


def connect(settings: dict, n_qubits: int, service_factory: Callable | None = None):
    """(service, backend): (None, the fake backend) in local testing mode, else the account's service and the
    named device, checked before anything is submitted."""
    name = settings["backend"]
    if is_fake(name):
        backend = fake_backend(name)
        service = None
    else:
        if service_factory is None:
            from qiskit_ibm_runtime import QiskitRuntimeService as service_factory
        try:
            service = service_factory(channel=settings["channel"], instance=settings["instance"])
        except Exception as error:
            raise HardwareError(f"{KEY}: cannot open the IBM Quantum account ({error}); {SAVE_ACCOUNT}") from error
        from qiskit.providers.exceptions import QiskitBackendNotFoundError

        try:
            backend = service.backend(name)
        except QiskitBackendNotFoundError as error:
            try:
                known = ", ".join(sorted(b.name for b in service.backends()))
            except Exception:  # listing is a courtesy; the error below stands without it
                known = "see service.backends()"
            raise HardwareError(
                f"{KEY}.backend = {name!r}: this account has no such device ({error}); available: {known}"
            ) from error
    if backend.num_qubits < n_qubits:
        raise HardwareError(too_few_qubits(name, backend.num_qubits, n_qubits))
    return service, backend


def transpile_once(backend, n_qubits: int):
    """(ISA circuit, its parameters in qubit order, physical qubit of each logical qubit)."""
    from qiskit.transpiler import generate_preset_pass_manager

    circuit, theta = quantum.build_circuit(n_qubits)
    manager = generate_preset_pass_manager(
        optimization_level=OPTIMIZATION_LEVEL, target=backend.target, seed_transpiler=SEED_TRANSPILER
    )
    isa = manager.run(circuit)
    layout = [int(q) for q in isa.layout.initial_index_layout(filter_ancillas=True)]
    # The ISA circuit's parameters are sorted by name; theta[0]..theta[n-1] sort the same way up to 10 qubits.
    if [p.name for p in isa.parameters] != [p.name for p in theta]:
        raise HardwareError(f"the transpiled circuit's parameters {list(isa.parameters)} are not theta[0..{n_qubits}]")
    return isa, layout


# --- results ------------------------------------------------------------------------------------------------


def bitarray_counts(bit_array, rows: int, shots: int, n_qubits: int) -> np.ndarray:
    """Counts (rows, 2**n) of one PUB's BitArray, after checking its shape, shots and bits.

    BitArray packs each shot's clbits big-endian into bytes, clbit i worth 2**i: the integer is the Aer index.
    """
    where = f"the device returned {getattr(bit_array, 'shape', '?')} rows"
    if tuple(bit_array.shape) != (rows,):
        raise HardwareError(f"{where}, expected ({rows},): the job does not match its PUB")
    if bit_array.num_shots != shots or bit_array.num_bits != n_qubits:
        raise HardwareError(
            f"the device returned {bit_array.num_shots} shots of {bit_array.num_bits} bits per row, "
            f"expected {shots} shots of {n_qubits}"
        )
    packed = np.asarray(bit_array.array, dtype=np.int64)  # (rows, shots, bytes)
    outcome = np.zeros(packed.shape[:2], dtype=np.int64)
    for byte in range(packed.shape[2]):
        outcome = outcome * 256 + packed[:, :, byte]
    size = 2**n_qubits
    if outcome.size and outcome.max() >= size:
        raise HardwareError(f"the device returned outcome {outcome.max()} for {n_qubits} bits")
    offsets = np.arange(rows)[:, None] * size
    return np.bincount((outcome + offsets).ravel(), minlength=rows * size).reshape(rows, size)


def result_counts(result, rows: int, shots: int, n_qubits: int) -> np.ndarray:
    """Counts of a one-PUB job's PrimitiveResult, its classical register found by name."""
    if len(result) != 1:
        raise HardwareError(f"the job returned {len(result)} PUB results, expected 1")
    data = result[0].data
    registers = list(data.keys())
    if len(registers) != 1:
        raise HardwareError(f"the job returned registers {registers}, expected one")
    return bitarray_counts(data[registers[0]], rows, shots, n_qubits)


# --- the ledger ---------------------------------------------------------------------------------------------


def plan_fingerprint(backend: str, inputs: np.ndarray, shots: int, pub_size: int) -> str:
    """Names one plan: what a job's result depends on (the device, the images' circuit inputs, the shots) and
    how the rows are cut into jobs."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"backend": backend, "shots": shots, "pub_size": pub_size}).encode())
    inputs = np.asarray(inputs, dtype=np.float64)
    digest.update(f"{inputs.shape}".encode() + inputs.tobytes())
    return digest.hexdigest()[:16]


class Ledger:
    """Every job of one plan: an append-only JSON-lines file (submitted / done / failed, each line fsynced),
    and each finished job's counts beside it, so a rerun neither pays for a job again nor loses its result."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / "jobs.jsonl"

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        records = []
        for number, line in enumerate(lines, start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number == len(lines):
                    continue  # a line cut short by a crash mid-write: the job id it held is lost with it
                raise
        return records

    def _append(self, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())} | record
        with open(self.path, "a") as stream:
            stream.write(json.dumps(record, sort_keys=True) + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def submitted(self, chunk: int, job_id: str, **details) -> None:
        self._append({"event": "submitted", "chunk": chunk, "job_id": job_id} | details)

    def failed(self, chunk: int, job_id: str, message: str) -> None:
        self._append({"event": "failed", "chunk": chunk, "job_id": job_id, "message": message})

    def done(self, chunk: int, job_id: str, counts: np.ndarray) -> None:
        from .arrays import save_npz

        save_npz(self.counts_path(job_id), counts=counts)
        self._append({"event": "done", "chunk": chunk, "job_id": job_id})

    def counts_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.npz"

    def state(self) -> dict[int, dict]:
        """The last record of each chunk."""
        return {record["chunk"]: record for record in self.records()}


# --- running the jobs ---------------------------------------------------------------------------------------


def is_transient(error: BaseException) -> bool:
    """Network trouble or a server-side hiccup (HTTP 5xx, 429, no status), worth another try; a refusal is not."""
    import requests

    if isinstance(error, ConnectionError | TimeoutError | requests.ConnectionError | requests.Timeout):
        return True
    status = getattr(error, "status_code", None)
    return type(error).__name__ == "RequestsApiError" and (
        status is None or status < 0 or status >= 500 or status == 429
    )


def with_retries(call: Callable, what: str, retries: int, wait_s: float):
    """call(), again after a transient error, at most `retries` more times with doubling waits."""
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as error:
            if not is_transient(error):
                raise
            if attempt == retries:
                raise HardwareError(f"{what}: still failing after {retries} retries: {error}") from error
            log.warning("%s: %s; retry %d of %d in %.0f s", what, error, attempt + 1, retries, wait_s * 2**attempt)
            time.sleep(wait_s * 2**attempt)
    raise AssertionError("unreachable")


def job_failure(job) -> str | None:
    """The device's message if the job ended in error or was cancelled; None if it did not, or if its status
    cannot be read (the network): only a job known to have failed is ever submitted again."""
    try:
        status = job.status()
        status = str(getattr(status, "name", status))
        if status not in ("ERROR", "CANCELLED"):
            return None
        message = job.error_message() if hasattr(job, "error_message") else None
    except Exception as error:
        log.warning("job %s: its status cannot be read (%s)", job.job_id(), error)
        return None
    return f"job {job.job_id()} {status.lower()}: {message or 'no message from the device'}"


def run_jobs(
    chunks: list[np.ndarray],
    submit: Callable[[int, np.ndarray], object],
    attach: Callable[[str], object] | None,
    ledger: Ledger,
    shots: int,
    n_qubits: int,
    retries: int = 3,
    wait_s: float = 5.0,
    ledger_details: dict | None = None,
) -> list[np.ndarray]:
    """Counts (rows, 2**n) per chunk of parameter rows, each chunk one job, through the ledger.

    A chunk whose counts the ledger holds is read back; one it lists as submitted is re-attached with
    `attach(job_id)` (None in local testing mode, where a job dies with its process: it is simulated again);
    the rest are submitted with `submit(chunk index, parameter rows)`, all before any result is awaited, and
    each job id is in the ledger before the next submission. A job the device failed or cancelled stops the
    run with the device's message (and is marked failed, so the next run submits it anew).
    """
    state = ledger.state()
    counts: dict[int, np.ndarray] = {}
    jobs: dict[int, object] = {}
    for chunk, params in enumerate(chunks):
        record = state.get(chunk)
        if record and record["event"] == "done" and ledger.counts_path(record["job_id"]).exists():
            with np.load(ledger.counts_path(record["job_id"]), allow_pickle=False) as data:
                counts[chunk] = data["counts"]
            log.info("chunk %d: counts of job %s read from the ledger", chunk, record["job_id"])
        elif record and record["event"] in ("submitted", "done") and attach is not None:
            job_id = record["job_id"]
            jobs[chunk] = with_retries(
                lambda job_id=job_id: attach(job_id), f"re-attaching job {job_id}", retries, wait_s
            )
            log.info("chunk %d: re-attached to job %s (submitted %s)", chunk, job_id, record["time"])
        else:
            if record and record["event"] == "submitted":
                log.info(
                    "chunk %d: local job %s did not outlive its process; simulating it again", chunk, record["job_id"]
                )
            job = with_retries(lambda c=chunk, p=params: submit(c, p), f"submitting chunk {chunk}", retries, wait_s)
            ledger.submitted(chunk, job.job_id(), rows=len(params), **(ledger_details or {}))
            log.info("chunk %d: submitted job %s (%d rows)", chunk, job.job_id(), len(params))
            jobs[chunk] = job
    for chunk in sorted(jobs):
        job = jobs[chunk]
        try:
            result = with_retries(job.result, f"fetching job {job.job_id()}", retries, wait_s)
        except Exception as error:
            message = job_failure(job)
            if message is None:  # the job may still run or be done: keep it submitted, so a rerun re-attaches
                raise HardwareError(
                    f"could not fetch job {job.job_id()} (chunk {chunk}): {error}; it stays in the ledger "
                    f"{ledger.path}, and a rerun re-attaches to it"
                ) from error
            ledger.failed(chunk, job.job_id(), message)
            raise HardwareError(f"the device did not run chunk {chunk}: {message}") from error
        counts[chunk] = result_counts(result, len(chunks[chunk]), shots, n_qubits)
        ledger.done(chunk, job.job_id(), counts[chunk])
    return [counts[chunk] for chunk in range(len(chunks))]


@dataclass
class DeviceRun:
    """What `device_features` measured: features (images, circuits * 2**n) and how it ran them."""

    features: np.ndarray
    plan: Plan
    layout: list[int]
    ledger: Path
    isa_circuit: object
    backend: object


def device_features(
    inputs: np.ndarray,
    settings: dict,
    shots: int,
    seed: int,
    ledger_root: str | Path,
    report: Callable[[str], None] = log.info,
    service_factory: Callable | None = None,
    wait_s: float = 5.0,
) -> DeviceRun:
    """Run circuit inputs (images, circuits, n) on the configured backend; frequencies in the Aer order.

    `seed` (local testing mode only) seeds each job's simulator at seed + SEED_STRIDE * its first global row,
    so a fake-backend run gives the same bytes every time. `report` shows the plan before any submission.
    """
    from qiskit_ibm_runtime import Batch, SamplerV2

    n_images, n_circuits, n_qubits = inputs.shape
    service, backend = connect(settings, n_qubits, service_factory)
    isa, layout = transpile_once(backend, n_qubits)
    per_shot, source = seconds_per_shot(backend, isa)
    plan = Plan(
        settings["backend"], n_images, n_circuits, shots, settings["pub_size"], settings["mode"], per_shot, source
    )
    report(plan.text() + f"; logical qubits 0..{n_qubits - 1} on physical qubits {layout}")
    theta = quantum.angles(inputs.reshape(n_images * n_circuits, n_qubits))
    chunks = [theta[start : start + plan.pub_size] for start in range(0, len(theta), plan.pub_size)]
    ledger = Ledger(Path(ledger_root) / plan_fingerprint(settings["backend"], inputs, shots, plan.pub_size))
    report(f"ledger: {ledger.path}")
    local = service is None
    sampler = None

    def submit(chunk: int, params: np.ndarray):
        nonlocal sampler
        if sampler is None:  # opened only when something is left to submit (a re-attach needs no batch)
            sampler = SamplerV2(mode=Batch(backend=backend) if settings["mode"] == "batch" else backend)
        if local:
            sampler.options.simulator.seed_simulator = seed + quantum.SEED_STRIDE * chunk * plan.pub_size
        return sampler.run([(isa, params)], shots=shots)

    try:
        counts = run_jobs(
            chunks,
            submit,
            None if local else service.job,
            ledger,
            shots,
            n_qubits,
            settings["retries"],
            wait_s,
            {"backend": settings["backend"], "layout": layout, "shots": shots},
        )
    finally:
        if sampler is not None and sampler.mode is not None:
            sampler.mode.close()  # a batch takes no new jobs; the submitted ones still run
    features = np.concatenate(counts).astype(np.float64) / shots
    return DeviceRun(features.reshape(n_images, n_circuits * 2**n_qubits), plan, layout, ledger.folder, isa, backend)


def noise_model(backend):
    """The device's noise model from its published calibration (gate and asymmetric readout errors, T1/T2
    relaxation): on a fake backend exactly the model its local testing mode runs. NoiseModel.from_backend, which
    reads only the target, would differ (symmetric readout errors: about 0.04 total variation per image here)."""
    from qiskit_aer.noise import NoiseModel

    properties = backend.properties()
    if properties is None:
        return NoiseModel.from_backend(backend)
    return NoiseModel.from_backend_properties(properties, dt=backend.dt)


def noise_model_features(run: DeviceRun, inputs: np.ndarray, shots: int, seed: int, threads: int = 1) -> np.ndarray:
    """The same ISA circuit and images on Aer with the device's noise model, row r seeded with
    seed + SEED_STRIDE * r as the Aer path seeds its rows."""
    from qiskit_aer import AerSimulator

    n_images, n_circuits, n_qubits = inputs.shape
    simulator = AerSimulator(
        method="density_matrix",
        noise_model=noise_model(run.backend),
        max_parallel_threads=threads,
        max_parallel_experiments=0,
        runtime_parameter_bind_enable=True,
    )
    parameters = list(run.isa_circuit.parameters)  # theta[0..n-1], checked by transpile_once
    features = quantum.bound_features(simulator, run.isa_circuit, parameters, inputs.reshape(-1, n_qubits), shots, seed)
    return features.reshape(n_images, n_circuits * 2**n_qubits)


def select_images(labels: np.ndarray, images: int | None, seed: int) -> np.ndarray:
    """Sorted rows of the test split that go to the device: a class-balanced subset, or all of them."""
    from .data import stratified_subset

    return stratified_subset(labels, images, seed)
