"""`make repro`: the CI reproducibility check, and the golden file the tests compare their own run with.

Two clean clones of the checkout run config/ci.yaml; the sha256 of every result file must be the same in both
(bitwise, on one machine). The run is also compared with the committed golden file tests/expected/ci_golden.json,
which pins what must hold on any machine:
  exact everywhere    the data stage (split and augmented arrays, from verified raw files and numpy seeds) and
                      the Aer counts given the circuit inputs (they depend only on inputs, seed and row: the
                      check runs Aer again on the run's own inputs with the golden shots and seed);
  within tolerances   what TensorFlow's training produces (latent and circuit-input summaries, MSEs,
                      accuracies): oneDNN picks code paths by instruction set and thread count, so another CPU
                      gives other last bits, and training amplifies them (see TOLERANCES for the measured spread).
`make test` runs the same comparison on its own run, so a change in behaviour fails the tests on any machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# Result files that hold no science and differ between runs: per-job logs and benchmarks (wall times),
# `make bench` output, the HTML report (it embeds its creation time) and each target's provenance.json (its date,
# and a commit that differs between clones of different commits; the files it vouches for are compared).
VOLATILE = ("logs", "benchmarks", "bench", "report.html", "provenance.json")
EXACT_ARRAYS = ["data/train.npz", "data/val.npz", "data/test.npz", "data/train_augmented.npz"]
METRICS = {
    "autoencoder": ["train_mse", "val_mse", "test_mse"],
    "baseline": ["train_accuracy", "val_accuracy", "test_accuracy"],
    "hybrid": ["train_accuracy", "val_accuracy", "test_accuracy"],
}
# Allowed differences for the TensorFlow-derived values. Measured on config/ci.yaml against the default
# (AVX-512) run on one machine: ONEDNN_MAX_CPU_ISA=AVX2 moved latents elementwise by up to 5.9 (mean 0.10, on a
# scale of 32) yet their mean by 0.5 %, the inputs' per-qubit mean/std by <= 0.010, accuracies by <= 2.7 pp
# (val, 300 images) and MSEs by <= 3e-6; SSE41 and other thread counts moved them less (README, Reproducibility).
# Each tolerance is about 3x the largest measured difference.
TOLERANCES = {
    "mse": 1e-4,
    "accuracy": 0.08,
    "latent_mean_relative": 0.03,
    "latent_std_relative": 0.03,
    "dead_latent_units": 2,
    "input_moments": 0.03,
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def result_hashes(results: Path) -> dict[str, str]:
    """sha256 of every result file, by path relative to results/, leaving out the VOLATILE ones (at any depth:
    each dataset has its own logs/ and benchmarks/)."""
    hashes = {}
    for path in sorted(results.rglob("*")):
        relative = path.relative_to(results).as_posix()
        volatile = any(part in VOLATILE for part in relative.split("/"))
        if path.is_file() and not volatile and relative != "README.md":
            hashes[relative] = sha256(path)
    return hashes


def array_digest(path: Path) -> dict[str, str]:
    """sha256 of each array's dtype, shape and bytes (independent of how the .npz container was written)."""
    with np.load(path, allow_pickle=False) as data:
        return {
            name: hashlib.sha256(
                f"{data[name].dtype.str}{data[name].shape}".encode() + data[name].tobytes()
            ).hexdigest()
            for name in sorted(data.files)
        }


def _load(path: Path, name: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:
        return data[name]


def golden_summary(results: Path) -> dict:
    """What the golden file records of a run: exact array hashes, metrics, and summaries of the latents and the
    circuit inputs (elementwise they move with the CPU; their distribution does not)."""
    latents = _load(results / "autoencoder/latents_test.npz", "features")
    inputs = _load(results / "quantum/inputs_test.npz", "inputs")
    inputs = inputs.reshape(-1, inputs.shape[-1])
    metrics = {
        name: {key: json.loads((results / "metrics" / f"{name}.json").read_text())[key] for key in keys}
        for name, keys in METRICS.items()
    }
    return {
        "exact_arrays": {name: array_digest(results / name) for name in EXACT_ARRAYS},
        "metrics": metrics,
        "latents": {
            "mean": float(latents.mean()),
            "std": float(latents.std()),
            "dead_units": int((latents.max(axis=0) == 0).sum()),
        },
        "inputs": {"mean": inputs.mean(axis=0).tolist(), "std": inputs.std(axis=0).tolist()},
    }


def compare_with_golden(summary: dict, golden: dict) -> list[str]:
    """Differences as readable lines; empty when the summary matches the golden file (within TOLERANCES)."""
    problems = []
    for name, digests in golden["exact_arrays"].items():
        for array, expected in digests.items():
            actual = summary["exact_arrays"].get(name, {}).get(array)
            if actual != expected:
                problems.append(f"{name}:{array} sha256 {actual} != golden {expected} (must be equal everywhere)")

    def within(label, actual, expected, tolerance):
        if actual is None or abs(actual - expected) > tolerance:
            problems.append(f"{label} = {actual}, golden {expected} (tolerance {tolerance:g})")

    for name, values in golden["metrics"].items():
        for key, expected in values.items():
            kind = "mse" if key.endswith("mse") else "accuracy"
            within(f"metrics/{name}.json {key}", summary["metrics"].get(name, {}).get(key), expected, TOLERANCES[kind])
    latents, expected = summary["latents"], golden["latents"]
    for key in ("mean", "std"):
        within(f"latents {key}", latents[key], expected[key], TOLERANCES[f"latent_{key}_relative"] * abs(expected[key]))
    within("latents dead units", latents["dead_units"], expected["dead_units"], TOLERANCES["dead_latent_units"])
    for key in ("mean", "std"):
        for qubit, (actual, wanted) in enumerate(zip(summary["inputs"][key], golden["inputs"][key])):
            within(f"circuit input {qubit} {key}", actual, wanted, TOLERANCES["input_moments"])
    return problems


def aer_consistency(results: Path, shots: int, seed: int) -> list[str]:
    """The run's counts must be exactly what Aer gives on the run's own circuit inputs with `shots` and `seed`
    (true on any machine: they depend only on inputs, seed and row)."""
    from qtlmnist import quantum
    from qtlmnist.data import SPLITS

    problems = []
    for split in SPLITS:
        inputs = _load(results / f"quantum/inputs_{split}.npz", "inputs")
        counts = _load(results / f"quantum/{split}.npz", "features")
        again = quantum.circuit_features(inputs, shots, quantum.split_seed(seed, split))
        if not np.array_equal(counts, again):
            problems.append(
                f"quantum/{split}.npz: counts differ from Aer on its own inputs with {shots} shots and seed {seed} "
                f"in {int(np.any(counts != again, axis=1).sum())} of {len(counts)} rows"
            )
    return problems


def check_run(results: Path, golden: dict) -> list[str]:
    """Everything the golden file pins, for one run's results/ folder."""
    quantum = golden["quantum"]
    return compare_with_golden(golden_summary(results), golden) + aer_consistency(
        results, quantum["shots"], quantum["seed"]
    )


def run_ci_config(checkout: Path, cores: int, config: str) -> None:
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "--cores", str(cores), "--configfile", config]
    result = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"workflow failed in {checkout}:\n{result.stderr[-4000:]}")


def hash_table(a: dict[str, str], b: dict[str, str]) -> tuple[list[str], int]:
    lines = [f"{'file':48s} {'hash A':16s} {'hash B':16s} same?"]
    differences = 0
    for name in sorted(set(a) | set(b)):
        same = a.get(name) == b.get(name)
        differences += not same
        lines.append(
            f"{name:48s} {(a.get(name) or 'missing')[:16]:16s} {(b.get(name) or 'missing')[:16]:16s} "
            + ("yes" if same else "NO")
        )
    return lines, differences


def quantum_settings(checkout: Path, config: str) -> dict:
    """Shots and seed of the quantum stage for `config` merged over config/config.yaml, as Snakemake merges them."""
    import yaml

    merged = {}
    for path in (checkout / "config/config.yaml", checkout / config):
        merged.update(yaml.safe_load(path.read_text()).get("quantum") or {})
    return {"shots": merged["shots"], "seed": merged["seed"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/ci.yaml")
    parser.add_argument("--golden", type=Path, default=Path("tests/expected/ci_golden.json"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--update-golden", action="store_true", help="write the golden file from run A (refused unless A == B)"
    )
    args = parser.parse_args(argv)

    root = Path(subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip())
    if subprocess.check_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, text=True).strip():
        print("note: uncommitted changes are not in the clones; the check covers HEAD", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="qtlmnist-repro-") as tmp:
        hashes = {}
        for name in ("A", "B"):
            checkout = Path(tmp) / name
            subprocess.run(["git", "clone", "--quiet", str(root), str(checkout)], check=True)
            print(f"run {name}: {checkout} ({args.config})", flush=True)
            run_ci_config(checkout, args.cores, args.config)
            hashes[name] = result_hashes(checkout / "results")
        lines, differences = hash_table(hashes["A"], hashes["B"])
        print("\n".join(lines))
        print(f"\n{len(lines) - 1} files compared, {differences} differ")
        results = Path(tmp) / "A" / "results" / "mnist"  # config/ci.yaml replicates MNIST
        if args.update_golden:
            if differences:
                print("not writing the golden file: runs A and B differ, so no run is a reference", file=sys.stderr)
                return 1
            golden = golden_summary(results) | {"quantum": quantum_settings(Path(tmp) / "A", args.config)}
            args.golden.parent.mkdir(parents=True, exist_ok=True)
            args.golden.write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")
            print(f"wrote {args.golden}")
            return 0
        problems = check_run(results, json.loads(args.golden.read_text()))
        print(f"golden {args.golden}: " + ("matches" if not problems else f"{len(problems)} difference(s)"))
        for line in problems:
            print(f"  {line}")
    return 1 if differences or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
