"""What each rule asks a cluster scheduler for, besides its `threads`: memory (`mem_mb`) and wall time
(`runtime`, minutes). Local runs ignore both; under `--executor slurm` they become `--mem` and `--time`, and a job
that outgrows them is killed, so they err on the generous side.

Each rule's cost was measured on the full default config (the `benchmark:` files of `make replicate` and
`make experiments`, 2-core CPU: peak RSS and wall time, in MEASURED) and is scaled by the work the config asks
for (images, epochs, shots, circuits), since a quick config needs far less and a bigger one more:

    mem_mb  = MEMORY_HEADROOM x (base + (peak - base) x data / data at the measurement), at least MIN_MEM_MB
    runtime = RUNTIME_HEADROOM x seconds x work / work at the measurement / 60 + RUNTIME_SLACK_MIN

`base` is the process with its libraries loaded and no data (TensorFlow, Qiskit or matplotlib). Light module
(no numpy): the Snakefile reads it at parse time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

MEMORY_HEADROOM = 1.5
MIN_MEM_MB = 500
# Wall times were measured on a 2-core machine shared with other work; a cluster core may be slower still.
RUNTIME_HEADROOM = 3.0
RUNTIME_SLACK_MIN = 10

# Library baselines (MB of peak RSS with no data), measured on the smallest jobs of each kind.
TENSORFLOW_MB = 600
QISKIT_MB = 170
PLOTTING_MB = 180


@dataclass(frozen=True)
class Measured:
    peak_mb: float  # peak RSS of the job on the full default config
    seconds: float  # its wall time
    base_mb: float  # what the process holds before any data


# Full default config (70,000 images, 50 epochs per model, 1,024 shots, 4 shards per split): the largest job of
# each rule, from results/mnist/benchmarks/ of `make replicate` and `make experiments`.
MEASURED = {
    "fetch_data": Measured(190, 12, 100),
    "preprocess": Measured(470, 6, 100),
    "augment": Measured(710, 15, 100),
    "train_autoencoder": Measured(2160, 325, TENSORFLOW_MB),
    "encode_latents": Measured(1250, 26, TENSORFLOW_MB),
    "quantum_inputs": Measured(190, 3, QISKIT_MB),
    "quantum_features": Measured(240, 80, QISKIT_MB),
    "gather_quantum": Measured(60, 2, 40),
    "train_classifier": Measured(850, 110, TENSORFLOW_MB),
    "draw_circuit": Measured(170, 11, PLOTTING_MB),
    "plot": Measured(190, 14, PLOTTING_MB),
    "report_landing": Measured(120, 3, 100),
    # make experiments: the costliest variant of each rule (the 13-circuit `chunks` counts; its classifier run)
    "experiment_features": Measured(900, 520, QISKIT_MB),
    "experiment_run": Measured(1100, 150, TENSORFLOW_MB),
    "experiment_tables": Measured(250, 15, PLOTTING_MB),
    # make systems: the costliest measured job of any (system, model) (SYSTEM_RUNS below): the flat bound where
    # a job's system is not known (a rule's declaration without its wildcards; a system not measured yet)
    "system_run": Measured(1500, 240, TENSORFLOW_MB),
    # quantum.executor ibm_runtime, measured with the default 1,000 images x 1,024 shots on FakeManilaV2 (local
    # testing mode 35 s, the noise-model reference 13 s; inference on config/ci.yaml's 200 images). A real
    # device's queue is not in it: run that job where it may wait (a login node, a laptop), or raise its runtime
    # (--set-resources hardware_features:runtime=...), docs/hardware.md
    "hardware_features": Measured(290, 50, QISKIT_MB),
    "evaluate_hardware": Measured(650, 26, TENSORFLOW_MB),
    "system_plot": Measured(250, 15, PLOTTING_MB),
}
# Aer's density-matrix simulation under device noise costs about this many noiseless shots per shot.
NOISY_SHOT_COST = 4


def _images(config: dict) -> dict[str, float]:
    """Image counts the config asks for: train, val, test, and the augmented training set."""
    p = config["preprocess"]
    pool = p["max_train"] or 60_000
    val = round(pool * p["val_fraction"])
    copies = max(section["copies"] for section in config["augment"].values() if isinstance(section, dict))
    train = pool - val
    return {"train": train, "val": val, "test": p["max_test"] or 10_000, "augmented": train * (1 + copies)}


def hardware_images(config: dict) -> int:
    """Test images the device run takes (quantum.ibm_runtime.images, at most the test split)."""
    images, test = config["quantum"]["ibm_runtime"]["images"], _images(config)["test"]
    return test if images is None else min(images, test)


# The images, epochs, shots of the full default config, for the ratios.
_FULL = {"train": 54_000, "val": 6_000, "test": 10_000, "augmented": 108_000}


def _declare(measured: Measured, data_ratio: float, work_ratio: float) -> dict[str, int]:
    memory = MEMORY_HEADROOM * (measured.base_mb + (measured.peak_mb - measured.base_mb) * data_ratio)
    runtime = RUNTIME_HEADROOM * measured.seconds * work_ratio / 60 + RUNTIME_SLACK_MIN
    return {"mem_mb": max(MIN_MEM_MB, 100 * math.ceil(memory / 100)), "runtime": math.ceil(runtime)}


def declared(rule: str, config: dict) -> dict[str, int]:
    """{"mem_mb": ..., "runtime": ...} for one rule under `config` (validated, defaults filled in)."""
    n = _images(config)
    total = n["train"] + n["val"] + n["test"]
    full_total = _FULL["train"] + _FULL["val"] + _FULL["test"]
    ae, clf, q = config["autoencoder"], config["classifier"], config["quantum"]
    ex = config["experiments"]
    chunk_circuits = math.ceil(ae["latent_dim"] / q["n_qubits"])
    circuits = chunk_circuits if q["reduction"] == "chunks" else 1
    # read only for its own rule: a config without the section (executor aer, defaults not filled) sizes the rest
    device_images = hardware_images(config) if rule == "hardware_features" else 0
    # (data ratio, work ratio) of each rule against its measurement
    ratios = {
        "fetch_data": (1.0, 1.0),
        "preprocess": (total / full_total, total / full_total),
        "augment": (n["augmented"] / _FULL["augmented"], (n["augmented"] - n["train"]) / (_FULL["augmented"] / 2)),
        "train_autoencoder": (
            (n["augmented"] + total) / (_FULL["augmented"] + full_total),
            n["augmented"] * ae["epochs"] * ae["hidden"] / (_FULL["augmented"] * 50 * 256),
        ),
        "encode_latents": (total / full_total, total / full_total),
        "quantum_inputs": (total / full_total, total / full_total),
        # the largest shard: train split over the shards, each row run as `circuits` circuits
        "quantum_features": (1.0, n["train"] * circuits * q["shots"] / q["shards"] / (_FULL["train"] * 1024 / 4)),
        "gather_quantum": (total * circuits / full_total, 1.0),
        "train_classifier": (total * circuits / full_total, n["train"] * clf["epochs"] / (_FULL["train"] * 50)),
        "draw_circuit": (1.0, 1.0),
        "plot": (1.0, 1.0),
        "report_landing": (1.0, 1.0),
        # every split in one job, for the costliest planned variant: chunks, the largest shot count, or noise
        "experiment_features": (
            total * chunk_circuits / (full_total * 13),
            total
            * max(chunk_circuits * q["shots"], max(ex["shots"]), NOISY_SHOT_COST * q["shots"])
            / (full_total * 13 * 1024),
        ),
        "experiment_run": (
            total * chunk_circuits / (full_total * 13),
            n["train"] * clf["epochs"] * max(1.0, chunk_circuits / 13) / (_FULL["train"] * 50),
        ),
        "experiment_tables": (1.0, 1.0),
        "system_run": (1.0, 1.0),
        "hardware_features": (1.0, device_images * circuits * q["shots"] / (1000 * 1024)),
        "evaluate_hardware": (1.0, 1.0),
        "system_plot": (1.0, 1.0),
    }
    if rule not in ratios:
        raise KeyError(f"no resource model for rule '{rule}' (known: {', '.join(ratios)})")
    data_ratio, work_ratio = ratios[rule]
    return _declare(MEASURED[rule], data_ratio, work_ratio)


def by_attempt(declared: dict[str, int]) -> dict[str, Callable[..., int]]:
    """`declared` as Snakemake resource callables that grow with the job's attempt (1 on its first submission):
    a cluster job killed for its time limit, or its memory where the site enforces it, is resubmitted once
    (profiles/slurm `retries: 1`) asking for twice as much. Local runs have one attempt: the declaration itself."""
    return {name: _times_attempt(value) for name, value in declared.items()}


def _times_attempt(value: int) -> Callable[..., int]:
    def scaled(wildcards, attempt: int) -> int:
        return value * attempt

    return scaled


# --- trainable systems: measured per (system, model) ------------------------------------------------------


@dataclass(frozen=True)
class SystemRun:
    """One measured system_run job: a setting's seeds trained as one group, then evaluated (as run, exact, and
    on Aer with shots on every evaluation set but train)."""

    setting: (
        str  # the setting whose benchmark file it is (results/systems/benchmarks/<system>/system_run_<setting>.tsv)
    )
    seconds: float  # the job's CPU seconds (cpu_time: one thread, so its wall time on a core of its own)
    peak_mb: float  # its peak RSS
    members: int  # seeds in the group
    work: float  # images x epochs of one member (`work`)


# Per (system, model) one measured system_run job, the nearest to the study's use (the circuit with gradients
# reaching its classical part). Its CPU time, not its wall time (the two jobs on 2 cores slow each other, so walls
# were 1.1-1.7x longer, which RUNTIME_HEADROOM covers where a scheduler is asked). From a fresh `make systems` on
# the full default config at commit SYSTEM_RUNS_COMMIT on a clean clone (2 cores; 002's CNN in float32; 004 as a
# TF graph; each setting's seeds as one group). 004 has no train_images key: its work is its epochs.
SYSTEM_RUNS_COMMIT = "b2c5838"
SYSTEM_RUNS: dict[tuple[str, str], SystemRun] = {
    ("paradoxical7_qnn", "quantum"): SystemRun("more_data", 214.1, 1470, members=10, work=1000 * 10),
    ("paradoxical7_qnn", "control"): SystemRun("control", 15.3, 730, members=10, work=1000 * 10),
    ("quantum_mnist", "quantum"): SystemRun("hybrid", 209.2, 2570, members=40, work=4000 * 15),
    ("quantum_mnist", "control"): SystemRun("control", 42.1, 2460, members=40, work=4000 * 15),
    ("cnn_circuit", "quantum"): SystemRun("fashion_shirts_fixed_lr1e_3", 187.0, 1070, members=10, work=800 * 30),
    ("cnn_circuit", "control"): SystemRun("fashion_shirts_control", 161.7, 930, members=10, work=800 * 30),
    ("reuploading", "quantum"): SystemRun("posted_4", 161.2, 1140, members=10, work=1),
    ("reuploading", "control"): SystemRun("control_4", 15.0, 850, members=10, work=1),
}
# What a training job costs before its first step, whatever its size: Python, TensorFlow and Keras imported, the
# model built: the CPU seconds of the smallest job of the CI-config study (a study_cv of 001's control, 6.8 s).
JOB_START_S = 7.0


def work(values: dict) -> float:
    """Images x epochs of one member: the values' train_images (where the system has that key) times epochs."""
    return (values.get("train_images") or 1) * values["epochs"]


def _system_run(system: str, model: str) -> SystemRun | None:
    return SYSTEM_RUNS.get((system, model))


def system_run_seconds(system: str, values: dict, members: int) -> float:
    """A job of `members` seeds (or folds) of one (system, model) at `values`: JOB_START_S, plus the rest of
    the measured job scaled by members x images x epochs. Generous: a group's members cost less than one each
    (one compiled step for all), the Aer evaluation is in the measurement whether the job runs it or not, and a
    larger batch costs fewer steps. A system not measured yet: the flat `system_run` figure per member."""
    measured = _system_run(system, values["model"])
    if measured is None:
        return MEASURED["system_run"].seconds * members
    scale = members * work(values) / (measured.members * measured.work)
    return JOB_START_S + (measured.seconds - JOB_START_S) * scale


def system_run_declared(system: str, values: dict, members: int) -> dict[str, int]:
    """{"mem_mb", "runtime"} of one system_run (or study) job, from its (system, model)'s measurement."""
    measured = _system_run(system, values["model"])
    peak = MEASURED["system_run"].peak_mb if measured is None else measured.peak_mb
    seconds = system_run_seconds(system, values, members)
    memory = max(MIN_MEM_MB, 100 * math.ceil(MEMORY_HEADROOM * peak / 100))
    return {"mem_mb": memory, "runtime": math.ceil(RUNTIME_HEADROOM * seconds / 60 + RUNTIME_SLACK_MIN)}


def per_job(declare: Callable) -> dict[str, Callable[..., int]]:
    """`by_attempt` for a rule whose declaration depends on the job (`declare(wildcards)` -> {"mem_mb",
    "runtime"}): rules system_run and the study's training jobs."""

    def mem_mb(wildcards, attempt: int) -> int:
        return declare(wildcards)["mem_mb"] * attempt

    def runtime(wildcards, attempt: int) -> int:
        return declare(wildcards)["runtime"] * attempt

    return {"mem_mb": mem_mb, "runtime": runtime}
