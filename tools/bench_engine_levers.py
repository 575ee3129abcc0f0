"""The engine's levers one by one (docs/performance-engine.md): each benchmarked system's circuit at its training
batch, forward + gradient of a mean of squared outputs, gate by gate (`fuse=False`) or fused, as a plain
tf.function or under XLA; first call (tracing, plus XLA's compile) and CPU milliseconds per step, 1 thread.

    PYTHONPATH=workflow/scripts .venv/bin/python -m tools.bench_engine_levers [--calls 200]

Writes results/bench/engine_levers.json and its provenance (`make bench` runs it last; `make docs` writes its
table, block `bench_levers`). Timings are reported, never asserted: they depend on the machine and its load (CPU
time is the steadier clock on a shared machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def measure(calls: int, config: dict) -> dict:
    import tensorflow as tf

    from qtlmnist.systems import engine
    from tools import bench_systems

    out = {}
    for name, case in bench_systems.cases(config).items():
        spec = bench_systems.circuit_spec(case)
        rng = np.random.default_rng(0)
        x = tf.constant(rng.uniform(0, np.pi, (case.batch, len(spec.inputs))))
        w = tf.Variable(rng.uniform(0, np.pi, len(spec.weights)))
        for fuse in (False, True):
            compiled = engine.compile_circuit(spec.circuit, spec.inputs, spec.weights, fuse=fuse)
            observables = engine.PauliObservables(spec.observables, compiled.num_qubits) if spec.observables else None

            def step(x, compiled=compiled, observables=observables, w=w):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    if observables is None:
                        values = compiled.probabilities(x, w)
                    else:
                        values = compiled.expectations(x, w, observables)
                    loss = tf.reduce_mean(values**2)
                return tape.gradient(loss, [w, x])

            for jit in (False, True):
                function = tf.function(step, jit_compile=jit)
                began, cpu = time.perf_counter(), time.process_time()
                function(x)
                first, first_cpu = time.perf_counter() - began, time.process_time() - cpu
                cpu = time.process_time()
                for _ in range(calls):
                    function(x)
                row = {
                    "system": name,
                    "batch": case.batch,
                    "fused": fuse,
                    "plan_steps": len(compiled._steps),
                    "xla": jit,
                    "first_call_s": first,
                    "first_call_cpu_s": first_cpu,
                    "cpu_ms_per_step": (time.process_time() - cpu) / calls * 1e3,
                }
                out[f"{name} fuse={fuse} xla={jit}"] = row
                print(row, flush=True)
    return out


def table(rows: dict[str, dict]) -> str:
    """Markdown table of the measured rows (engine_levers.json): per system, gate by gate against the engine's
    plan (`compile_circuit`'s default: fused 1-qubit runs, phase blocks, multiplexed Ry, dense layers), each as
    a graph and under XLA."""
    from qtlmnist.report import markdown_table

    cells, shown = [], None
    for row in rows.values():
        system = f"{row['system']} ({row['batch']})" if row["system"] != shown else ""
        shown = row["system"]
        plan = f"{'the engine' if row['fused'] else 'gate by gate'} ({row['plan_steps']})"
        first = f"{row['first_call_s']:.1f} / {row['first_call_cpu_s']:.1f}"
        cells.append([system, plan, "XLA" if row["xla"] else "graph", first, f"{row['cpu_ms_per_step']:.2f}"])
    columns = ["system (batch)", "plan (steps)", "path", "first call s (wall / CPU)", "CPU ms per step"]
    return markdown_table(columns, cells)


def main(argv: list[str] | None = None) -> None:
    from qtlmnist import provenance

    started = provenance.now()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)

    import yaml

    from qtlmnist import runtime
    from qtlmnist.arrays import save_json

    runtime.seed_tensorflow(1, 1)
    config = yaml.safe_load(args.config.read_text())
    rows = measure(args.calls, config)
    path = args.results / "bench" / "engine_levers.json"
    save_json(path, rows)
    save_json(
        provenance.beside(path),
        provenance.record("bench", config | {"args": vars(args)}, [path], started=started),
    )
    print(table(rows))


if __name__ == "__main__":
    main()
