"""`make repro`: the CI reproducibility check.

Clones the current checkout twice, runs config/ci.yaml in each, compares the sha256 of every result file
(logs and benchmarks hold timings and are left out), prints the table and exits non-zero on any difference.
It also compares the run with the committed golden file tests/expected/ci_metrics.json: array hashes
exactly, floats within the tolerance stored in that file. The tests use `golden_summary` and
`compare_with_golden` on their own CI run, so a change in behaviour fails `make test` too.
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

# Generated files whose content is not the science: per-job logs and wall-time benchmarks.
VOLATILE = ("logs", "benchmarks", "bench", "report.html")
GOLDEN_ARRAYS = [
    "data/train.npz",
    "data/val.npz",
    "data/test.npz",
    "data/train_augmented.npz",
    "autoencoder/latents_test.npz",
    "quantum/train.npz",
    "quantum/val.npz",
    "quantum/test.npz",
]
GOLDEN_METRICS = {
    "autoencoder": ["train_mse", "val_mse", "test_mse"],
    "baseline": ["train_accuracy", "val_accuracy", "test_accuracy", "test_loss"],
    "hybrid": ["train_accuracy", "val_accuracy", "test_accuracy", "test_loss"],
}
FLOAT_TOLERANCE = 1e-6


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def result_hashes(results: Path) -> dict[str, str]:
    """sha256 of every result file, by path relative to results/, leaving out logs and benchmarks."""
    hashes = {}
    for path in sorted(results.rglob("*")):
        relative = path.relative_to(results).as_posix()
        if path.is_file() and not relative.startswith(VOLATILE) and relative != "README.md":
            hashes[relative] = sha256(path)
    return hashes


def array_digest(path: Path) -> dict[str, str]:
    """sha256 of each array's dtype, shape and bytes (independent of how the .npz container was written)."""
    with np.load(path, allow_pickle=False) as data:
        return {
            name: hashlib.sha256(f"{data[name].dtype.str}{data[name].shape}".encode() + data[name].tobytes()).hexdigest()
            for name in sorted(data.files)
        }


def golden_summary(results: Path) -> dict:
    metrics = {
        name: {key: json.loads((results / "metrics" / f"{name}.json").read_text())[key] for key in keys}
        for name, keys in GOLDEN_METRICS.items()
    }
    return {
        "float_tolerance": FLOAT_TOLERANCE,
        "arrays": {name: array_digest(results / name) for name in GOLDEN_ARRAYS},
        "metrics": metrics,
    }


def compare_with_golden(summary: dict, golden: dict) -> list[str]:
    """Differences as readable lines; empty when the run matches the golden file."""
    problems = []
    for name, digests in golden["arrays"].items():
        for array, expected in digests.items():
            actual = summary["arrays"].get(name, {}).get(array)
            if actual != expected:
                problems.append(f"{name}:{array} sha256 {actual} != golden {expected}")
    tolerance = golden["float_tolerance"]
    for name, values in golden["metrics"].items():
        for key, expected in values.items():
            actual = summary["metrics"].get(name, {}).get(key)
            if actual is None or abs(actual - expected) > tolerance:
                problems.append(f"metrics/{name}.json {key} = {actual}, golden {expected} (tolerance {tolerance})")
    return problems


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
        lines.append(f"{name:48s} {(a.get(name) or 'missing')[:16]:16s} {(b.get(name) or 'missing')[:16]:16s} {'yes' if same else 'NO'}")
    return lines, differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/ci.yaml")
    parser.add_argument("--golden", type=Path, default=Path("tests/expected/ci_metrics.json"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--update-golden", action="store_true", help="write the golden file from run A")
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
        summary = golden_summary(Path(tmp) / "A" / "results")
        if args.update_golden:
            args.golden.parent.mkdir(parents=True, exist_ok=True)
            args.golden.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
            print(f"wrote {args.golden}")
            problems = []
        else:
            problems = compare_with_golden(summary, json.loads(args.golden.read_text()))
            print(f"golden {args.golden}: " + ("matches" if not problems else f"{len(problems)} difference(s)"))
            for line in problems:
                print(f"  {line}")
    return 1 if differences or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
