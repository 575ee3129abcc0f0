"""`make bench`: how fast the quantum stage turns scaled 5-d inputs into 1024-shot count features, and what
each rule of the last run cost.

Three methods on the same inputs and seed, each timed in its own process (so peak RSS is its own):
  paper_loop   the paper's section 3.4: per sample a new circuit, transpile, run, get_counts (a subset);
  pipeline     exactly the workflow's code path, qtlmnist.quantum.aer_features (batched Aer);
  exact_limit  closed-form probabilities plus numpy multinomial sampling, the floor for any shot method.
Then: pipeline vs exact agreement (chi-square per sample), scaling with parallel shards and with N, and
results/bench/stages_<dataset>.csv + results/figures/stage_times_<dataset>.png from results/<dataset>/benchmarks/.

Timings are reported, never asserted: absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from qtlmnist import provenance, quantum
from qtlmnist.arrays import save_csv, save_json


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def paper_loop(x: np.ndarray, shots: int, seed: int, first_row: int = 0) -> np.ndarray:
    """The paper's per-sample recipe (its `assemble` step no longer exists in Qiskit 2.x; run takes circuits).

    Seeded like the pipeline (seed + 2113 * global row), so its counts must equal the pipeline's.
    """
    from qiskit import QuantumCircuit, transpile
    from qiskit_aer import AerSimulator

    backend = AerSimulator()
    n = x.shape[1]
    features = np.empty((len(x), 2**n))
    for row, values in enumerate(x):
        circuit = QuantumCircuit(n, n)
        for q, value in enumerate(values):
            circuit.ry(2 * np.arccos(value), q)
        for q in range(n):
            circuit.h(q)
        for q in range(n - 1):
            circuit.cx(q, q + 1)
        circuit.measure(range(n), range(n))
        compiled = transpile(circuit, backend)
        seed_row = seed + quantum.SEED_STRIDE * (first_row + row)
        result = backend.run(compiled, shots=shots, seed_simulator=seed_row).result()
        features[row] = quantum.counts_to_features([result.get_counts(compiled)], n)[0]
    return features


def pipeline(x: np.ndarray, shots: int, seed: int, first_row: int = 0, threads: int = 1) -> np.ndarray:
    """The workflow's quantum_features job: aer_features with its default chunk size."""
    return quantum.aer_features(x, shots, seed, first_row=first_row, threads=threads)


def exact_limit(x: np.ndarray, shots: int, seed: int, first_row: int = 0) -> np.ndarray:
    """Closed-form probabilities and one vectorised multinomial draw per row."""
    rng = np.random.default_rng([seed, first_row])
    return rng.multinomial(shots, quantum.exact_probabilities(x)) / shots


METHODS = {"paper_loop": paper_loop, "pipeline": pipeline, "exact_limit": exact_limit}


def _timed_child(name, x, first_row, shots, seed, kwargs, queue, barrier):
    METHODS[name](x[:2], shots, seed, **kwargs)  # warm-up: imports and first transpile are one-off costs
    barrier.wait()  # parallel shards start together, after their start-up
    start = time.monotonic()  # system-wide clock: comparable across processes
    features = METHODS[name](x, shots, seed, first_row=first_row, **kwargs)
    queue.put((first_row, start, time.monotonic(), _peak_rss_mb(), features))


def timed(name: str, x: np.ndarray, shots: int, seed: int, shards: int = 1, **kwargs) -> dict:
    """Run a method in fresh processes, `shards` of them in parallel on consecutive row ranges (as Snakemake
    runs the quantum_features jobs). Returns seconds, samples/s, peak RSS (MB, largest process), features."""
    context = multiprocessing.get_context("spawn")
    queue, barrier = context.Queue(), context.Barrier(shards)
    bounds = [quantum.shard_bounds(len(x), shards, k) for k in range(shards)]
    processes = [
        context.Process(target=_timed_child, args=(name, x[a:b], a, shots, seed, kwargs, queue, barrier))
        for a, b in bounds
    ]
    for process in processes:
        process.start()
    outputs = sorted(queue.get() for _ in processes)  # by first row
    for process in processes:
        process.join()
    seconds = max(o[2] for o in outputs) - min(o[1] for o in outputs)
    return {
        "seconds": seconds,
        "samples_per_s": len(x) / seconds,
        "peak_rss_mb": max(o[3] for o in outputs),
        "features": np.concatenate([o[4] for o in outputs]),
    }


def pearson_statistics(features: np.ndarray, probabilities: np.ndarray, shots: int) -> np.ndarray:
    """Per-sample Pearson statistic sum (O - E)^2 / E of the counts against the exact probabilities."""
    observed = np.rint(features * shots)
    expected = probabilities * shots
    return np.sum((observed - expected) ** 2 / np.maximum(expected, 1e-300), axis=1)


def noise_check(features: np.ndarray, probabilities: np.ndarray, shots: int) -> dict:
    """Are the counts multinomial(shots, p)? Pooled over samples, each outcome's count total must sit within
    shot noise of its expectation (chi-square of the 32 pooled z-scores), and the observed squared deviations
    must match the multinomial variance n p (1 - p) (ratio 1)."""
    from scipy import stats

    observed = np.rint(features * shots)
    expected = probabilities * shots
    variance = shots * probabilities * (1 - probabilities)
    z = (observed - expected).sum(axis=0) / np.sqrt(variance.sum(axis=0))
    return {
        "pooled_chi2_pvalue": float(stats.chi2.sf(np.sum(z**2), probabilities.shape[1] - 1)),
        "max_abs_pooled_z": float(np.abs(z).max()),
        "variance_ratio": float(np.sum((observed - expected) ** 2) / variance.sum()),
    }


def agreement(pipeline_features: np.ndarray, exact_features: np.ndarray, probabilities: np.ndarray, shots: int) -> dict:
    """Pipeline vs exact multinomial sampling on the same inputs: the noise check for each, and a two-sample KS
    test on their per-sample Pearson statistics (whose chi-square approximation is poor with 32 cells of small
    expected counts, so we compare the two empirical distributions instead)."""
    from scipy import stats

    return {
        "n_samples": len(probabilities),
        "pipeline": noise_check(pipeline_features, probabilities, shots),
        "exact_limit": noise_check(exact_features, probabilities, shots),
        "ks_two_sample_pvalue": float(
            stats.ks_2samp(
                pearson_statistics(pipeline_features, probabilities, shots),
                pearson_statistics(exact_features, probabilities, shots),
            ).pvalue
        ),
    }


def stage_times(benchmarks: Path, rules: list[str]):
    """Per-rule wall time (summed over its jobs) and max RSS from Snakemake benchmark files.

    A benchmark file is named after its rule plus wildcards (e.g. quantum_features_train_0.tsv); the longest
    rule name that prefixes the file name is its rule.
    """
    import pandas as pd

    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        rule = max((r for r in rules if path.stem == r or path.stem.startswith(r + "_")), key=len, default=path.stem)
        frame = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "rule": rule,
                "job": path.stem,
                "wall_s": float(frame["s"].iloc[-1]),
                "max_rss_mb": float(frame["max_rss"].iloc[-1]),
            }
        )
    jobs = pd.DataFrame(rows)
    if jobs.empty:
        return jobs
    per_rule = jobs.groupby("rule", sort=False).agg(
        jobs=("job", "count"), wall_s=("wall_s", "sum"), max_rss_mb=("max_rss_mb", "max")
    )
    return per_rule.reset_index().sort_values("wall_s", ascending=False, kind="stable")


def rule_names(rules_dir: Path) -> list[str]:
    """Every `rule NAME:` (and `checkpoint NAME:`) in the workflow's rule files, and every `use rule X as NAME
    with:` (a rule reused under another name, e.g. the experiments' whole-pipeline seeds)."""
    import re

    pattern = r"^(?:(?:rule|checkpoint) (\w+):|use rule \w+ as (\w+) with:)"
    found = (a or b for path in rules_dir.glob("*.smk") for a, b in re.findall(pattern, path.read_text(), re.M))
    return sorted(set(found))


def versions() -> dict:
    import qiskit
    import qiskit_aer

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "qiskit": qiskit.__version__,
        "qiskit_aer": qiskit_aer.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20000, help="inputs for pipeline and exact_limit")
    parser.add_argument("--paper-samples", type=int, default=100, help="inputs for the slow paper_loop")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scaling-sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--dataset", default="mnist", help="whose per-rule costs to summarise (results/<dataset>/)")
    args = parser.parse_args(argv)
    started = provenance.now()

    x = np.random.default_rng(args.seed).random((args.samples, 5))
    cores = os.cpu_count() or 1
    runs = {
        "paper_loop": timed("paper_loop", x[: args.paper_samples], args.shots, args.seed),
        "pipeline": timed("pipeline", x, args.shots, args.seed, shards=cores),
        "exact_limit": timed("exact_limit", x, args.shots, args.seed),
    }
    rate = {name: run["samples_per_s"] for name, run in runs.items()}
    paper_rows = runs["paper_loop"]["features"]
    scaling_x = x[: min(args.samples, 10000)]
    shards = {
        str(s): timed("pipeline", scaling_x, args.shots, args.seed, shards=s)["samples_per_s"]
        for s in sorted({1, 2, cores})
    }
    report = {
        "shots": args.shots,
        "n_samples": {"paper_loop": len(paper_rows), "pipeline": args.samples, "exact_limit": args.samples},
        "samples_per_s": rate,
        "speedup_vs_paper_loop": rate["pipeline"] / rate["paper_loop"],
        "gap_to_exact_limit": rate["exact_limit"] / rate["pipeline"],
        "peak_rss_mb": {name: run["peak_rss_mb"] for name, run in runs.items()},
        "pipeline_layout": (
            f"{cores} parallel shard processes, 1 Aer thread each (the workflow's quantum_features jobs)"
        ),
        "pipeline_one_process_threads": {
            str(cores): timed("pipeline", scaling_x, args.shots, args.seed, threads=cores)["samples_per_s"]
        },
        "paper_loop_equals_pipeline": bool(np.array_equal(paper_rows, runs["pipeline"]["features"][: len(paper_rows)])),
        "agreement": agreement(
            runs["pipeline"]["features"], runs["exact_limit"]["features"], quantum.exact_probabilities(x), args.shots
        ),
        "scaling": {
            "parallel_shards_samples_per_s": shards,
            "two_shards_vs_one": shards["2"] / shards["1"],
            "time_vs_n_seconds": {
                str(n): timed("pipeline", np.resize(x, (n, 5)), args.shots, args.seed)["seconds"]
                for n in args.scaling_sizes
            },
        },
        "cpu_count": cores,
        "versions": versions(),
    }
    save_json(args.results / "bench" / "quantum.json", report)
    save_json(
        provenance.beside(args.results / "bench" / "quantum.json"),
        provenance.record("bench", vars(args), [args.results / "bench" / "quantum.json"], started=started),
    )

    check = report["agreement"]
    print(f"quantum features, {args.shots} shots, {cores} cores (pipeline = {report['pipeline_layout']}):")
    for name in METHODS:
        print(
            f"  {name:12s} {rate[name]:12.1f} samples/s  (n={report['n_samples'][name]}, "
            f"peak RSS {report['peak_rss_mb'][name]:.0f} MB)"
        )
    print(f"  pipeline / paper_loop    = {report['speedup_vs_paper_loop']:.0f}x")
    print(f"  exact_limit / pipeline   = {report['gap_to_exact_limit']:.0f}x")
    print(f"  one process, {cores} Aer threads: {report['pipeline_one_process_threads'][str(cores)]:.0f} samples/s")
    print(f"  paper_loop counts == pipeline counts on its rows: {report['paper_loop_equals_pipeline']}")
    for name in ("pipeline", "exact_limit"):
        c = check[name]
        print(
            f"  noise check {name:11s}: pooled chi2 p = {c['pooled_chi2_pvalue']:.3f}, "
            f"max |z| = {c['max_abs_pooled_z']:.2f}, "
            f"variance ratio = {c['variance_ratio']:.4f} (multinomial: 1)"
        )
    print(
        "  two-sample KS on per-sample Pearson statistics, pipeline vs exact_limit: "
        f"p = {check['ks_two_sample_pvalue']:.3f}"
    )
    print(
        "  parallel shards (1 thread each): "
        + ", ".join(f"{k}: {v:.0f}/s" for k, v in shards.items())
        + f"; 2 vs 1 = {report['scaling']['two_shards_vs_one']:.2f}x"
    )
    print(
        "  time vs N (1 shard): "
        + ", ".join(f"{k}: {v:.2f} s" for k, v in report["scaling"]["time_vs_n_seconds"].items())
    )

    benchmarks = args.results / args.dataset / "benchmarks"
    if benchmarks.is_dir():
        from qtlmnist import figures

        stages = stage_times(benchmarks, rule_names(Path(__file__).resolve().parents[1] / "workflow" / "rules"))
        save_csv(args.results / "bench" / f"stages_{args.dataset}.csv", stages)
        figures.stage_times(stages, args.results / "figures" / f"stage_times_{args.dataset}.png")
        print(f"\nper-rule cost of the last run ({benchmarks}):")
        print(stages.to_string(index=False))


if __name__ == "__main__":
    main()
