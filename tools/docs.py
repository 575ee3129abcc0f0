"""`make docs`: write every results table in README.md and docs/*.md from the results files and their provenance.

A table lives between two markers that a person does not edit:

    <!-- BEGIN generated: NAME [ARGS...] -->
    (written by this tool: a line naming the files, command and commit it came from, then the table)
    <!-- END generated -->

NAME picks a builder in BLOCKS; ARGS are its datasets or targets (e.g. `experiments_controls mnist fashion_mnist`).
Everything outside the markers is left byte for byte as it was. Each file a table reads must exist and match the
sha256 its provenance (qtlmnist.provenance) recorded; otherwise nothing is written and the tool exits non-zero,
naming each missing or changed file and the command that makes it. Run it after the runs it cites:

    PYTHONPATH=workflow/scripts .venv/bin/python -m tools.docs [--only NAME[:ARG...] ...] [--results results] [--root .]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from qtlmnist import report, study
from qtlmnist.data import DATASETS
from qtlmnist.provenance import file_sha256
from qtlmnist.systems import report as systems_report

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/*.md"]
BLOCK = re.compile(
    r"(?P<begin><!-- BEGIN generated: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(?P<end><!-- END generated -->)", re.S
)
PROVENANCE = "provenance.json"


class MissingResult(Exception):
    """A cited result is missing, has no provenance, or changed after its provenance was written."""


def make_command(relative: str) -> str:
    """The make target that writes a results file (path relative to results/)."""
    parts = relative.split("/")
    if parts[0] == "systems":
        return "make systems"
    if parts[0] == "bench":
        return "make bench"
    if parts[0] == "study":
        return "make study"
    if parts[0] in DATASETS:
        later = [name for name in ("experiments", "readings") if name in parts[1:]]
        target = later[0] if later else "replicate"
        return f"make {target}" + ("" if parts[0] == "mnist" else f" DATASET={parts[0]}")
    return "make replicate"


@dataclass
class Reader:
    """Reads result files for one table, remembering each and the provenance that vouches for it."""

    results: Path
    root: Path = ROOT
    read: list[str] = field(default_factory=list)
    provenances: dict[str, dict] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        path = self.results / relative
        if not path.is_file():
            raise MissingResult(f"results/{relative} is missing: run `{make_command(relative)}` first")
        self.provenance_of(relative)
        if relative not in self.read:
            self.read.append(relative)
        return path

    def provenance_of(self, relative: str) -> dict:
        """The provenance beside the file (`<name>.provenance.json`, as `make bench` writes) or in the nearest
        folder above it; a file it lists must still have the sha256 it recorded."""
        path = self.results / relative
        candidates = [path.with_name(path.stem + "." + PROVENANCE)]
        candidates += [folder / PROVENANCE for folder in path.parents if folder.is_relative_to(self.results)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise MissingResult(
                f"results/{relative} has no {PROVENANCE} beside it or above it: "
                f"run `{make_command(relative)}` (it writes one)"
            )
        key = found.relative_to(self.results).as_posix()
        record = self.provenances.setdefault(key, json.loads(found.read_text()))
        recorded = record["files"].get(f"results/{relative}")
        if recorded is not None and recorded != file_sha256(path):
            raise MissingResult(
                f"results/{relative} changed after results/{key} was written: run `{make_command(relative)}` again"
            )
        return record

    def csv(self, relative: str, **options) -> pd.DataFrame:
        return pd.read_csv(self.path(relative), **options)

    def json(self, relative: str) -> dict:
        return json.loads(self.path(relative).read_text())

    def stamp(self) -> str:
        """One line: which files, which command, which commit, when (nothing for a block that reads no results)."""
        if not self.read:
            return ""
        runs = []
        for key, record in sorted(self.provenances.items()):
            commit = record.get("commit")
            revision = "no git checkout" if commit is None else f"commit {commit[:7]}"
            if record.get("uncommitted_changes"):
                revision += " + uncommitted changes"
            runs.append(
                f"`results/{key}`: `{record.get('command') or record.get('target')}` at {revision}, "
                f"{(record.get('written') or '')[:10]}, {(record.get('cpu') or {}).get('model') or 'CPU unknown'}"
            )
        files = ", ".join(f"`results/{r}`" for r in self.read)
        return f"*Written by `make docs` from {files}; runs: {'; '.join(runs)}.*\n\n"


def percent(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%"


def interval(mean: float, low: float, high: float, digits: int = 2) -> str:
    """A fraction with its 95% interval, in percent."""
    return f"{100 * mean:.{digits}f}% [{100 * low:.{digits}f}, {100 * high:.{digits}f}]"


# --- the blocks --------------------------------------------------------------------------------------------


def replication_seeds(reader: Reader, dataset: str) -> str:
    """The paper-vs-measured table of the full run (make replicate) with the interval over seeds (make
    experiments), and its verdicts over every reading when `make readings` has run (make readings)."""
    table = reader.csv(f"{dataset}/experiments/replication.csv", dtype={"seeds_n": "Int64"})
    # with `make readings` run too: whether each hybrid verdict holds over every reading (docs/readings.md)
    if (reader.results / f"{dataset}/readings/claims.csv").is_file():
        table = report.with_readings(table, reader.csv(f"{dataset}/readings/claims.csv"))
    return report.table_markdown(table)


def _seed_row(summary: pd.DataFrame, model: str) -> pd.Series:
    rows = summary[(summary["model"] == model) & (summary["metric"] == "test_accuracy")]
    return rows.iloc[0]


def datasets(reader: Reader, *names: str) -> str:
    """One full run per dataset, side by side (make replicate DATASET=...)."""
    columns = ["measured (same config)", *(DATASETS[d].title for d in names)]
    metrics = {
        d: {m: reader.json(f"{d}/metrics/{m}.json") for m in ("autoencoder", "baseline", "hybrid")} for d in names
    }

    def accuracies(model: str) -> list[str]:
        return [
            " / ".join(percent(metrics[d][model][f"{s}_accuracy"]) for s in ("train", "val", "test")) for d in names
        ]

    def per_class(model: str) -> list[str]:
        cells = []
        for d in names:
            values = metrics[d][model]["test_per_class_accuracy"]
            classes = DATASETS[d].class_names
            low, high = min(range(len(values)), key=values.__getitem__), max(range(len(values)), key=values.__getitem__)
            cells.append(f"{percent(values[low], 1)} ({classes[low]}) to {percent(values[high], 1)} ({classes[high]})")
        return cells

    rows = [
        [
            "autoencoder MSE, train / validation",
            *(
                f"{metrics[d]['autoencoder']['train_mse']:.4f} / {metrics[d]['autoencoder']['val_mse']:.4f}"
                for d in names
            ),
        ],
        ["classical on the 64-d latents: train / validation / test", *accuracies("baseline")],
        ["hybrid on the circuit's counts: train / validation / test", *accuracies("hybrid")],
        [
            "hybrid minus classical, validation",
            *(
                f"{100 * (metrics[d]['hybrid']['val_accuracy'] - metrics[d]['baseline']['val_accuracy']):+.2f} pp"
                for d in names
            ),
        ],
        ["per-class test accuracy, classical (lowest to highest)", *per_class("baseline")],
        ["per-class test accuracy, hybrid (lowest to highest)", *per_class("hybrid")],
    ]
    return report.markdown_table(columns, rows)


def experiments_controls(reader: Reader, *names: str) -> str:
    """Every feature set of the experiments, same classifier and budget (make experiments DATASET=...)."""
    tables, widths = {}, {}
    for d in names:
        summary = reader.csv(f"{d}/experiments/seeds_summary.csv")
        rows = {}
        for model, label in (("baseline", "64-d latents (classical baseline)"), ("hybrid", "hybrid: circuit counts")):
            row = _seed_row(summary, model)
            label = f"{label}, {int(row['n_seeds'])} seeds (Student t)"
            rows[label] = interval(row["mean"], row["ci95_low"], row["ci95_high"])
        for r in reader.csv(f"{d}/experiments/noise.csv").itertuples(index=False):
            if pd.isna(r.mcnemar_p):
                continue  # the noiseless run is the hybrid itself, controls.csv's first row
            label = f"circuit counts, {r.setting} ({r.variant})"
            rows[label], widths[label] = interval(r.test_accuracy, r.ci95_low, r.ci95_high), r.n_features
        for r in reader.csv(f"{d}/experiments/controls.csv").itertuples(index=False):
            rows[r.control], widths[r.control] = interval(r.test_accuracy, r.ci95_low, r.ci95_high), r.n_features
        tables[d] = rows
    labels = list(dict.fromkeys(label for rows in tables.values() for label in rows))
    columns = ["feature set (test accuracy, 95% interval)", "features", *(DATASETS[d].title for d in names)]
    return report.markdown_table(
        columns, [[label, widths.get(label, ""), *(tables[d].get(label, "") for d in names)] for label in labels]
    )


def pipeline_mean(summary: pd.Series, column: str, sign: str = "") -> str:
    """A whole-pipeline mean with its 95% t interval, as `mean [low, high]` (one seed: its value, no interval)."""
    mean, low, high = (f"{summary[f'{column}_{k}']:{sign}.2f}" for k in ("mean", "low", "high"))
    return f"{mean} (one seed)" if summary["n_seeds"] < 2 else f"{mean} [{low}, {high}]"


def experiments_pipeline(reader: Reader, *names: str) -> str:
    """Per dataset, Sarkar's hybrid against the classical baseline over the whole-pipeline seeds (autoencoder,
    shots and both classifiers retrained per seed; make experiments DATASET=...): each model's mean test accuracy
    with its t interval, the paired difference, and the primary test named in config."""
    rows = []
    for d in names:
        s = reader.csv(f"{d}/experiments/pipeline_comparison.csv").iloc[0]

        if s["n_seeds"] < 2:
            test = "none: one seed (McNemar on its images: results/<dataset>/experiments/pipeline.md)"
        else:
            floor = f" (lowest reachable {s['smallest_p']:.3g})" if s["smallest_p"] > 0 else ""
            test = f"{s['primary_test']}: p = {s['p']:.3g}{floor}, "
            test += f"{'significant' if s['significant'] else 'not significant'} at {s['alpha']:g}"
        rows.append(
            [
                DATASETS[d].title,
                int(s["n_seeds"]),
                *(pipeline_mean(s, c, sign) for c, sign in (("baseline", ""), ("hybrid", ""), ("difference_pp", "+"))),
                test,
            ]
        )
    columns = ["dataset", "seeds", "classical test accuracy (%)", "hybrid test accuracy (%)",
               "hybrid - classical (pp)", "primary test across seeds"]  # fmt: skip
    return report.markdown_table(columns, rows)


def experiments_paired(reader: Reader, *names: str) -> str:
    """Each single-run feature set against the paper's hybrid of the same seed on the same test images:
    McNemar's exact test, Holm-adjusted within its table (qtlmnist.experiments.paired)."""
    tables = {}
    for d in names:
        rows = {}
        for file, label in (("noise", lambda r: f"circuit counts, {r.setting} ({r.variant})"), ("controls", None)):
            for r in reader.csv(f"{d}/experiments/{file}.csv").itertuples(index=False):
                if pd.isna(r.mcnemar_p):
                    continue  # the hybrid itself
                verdict = "significant" if r.significant else "not significant"
                rows[r.control if label is None else label(r)] = (
                    f"{int(r.only_this_right)} / {int(r.only_hybrid_right)}; p = {r.mcnemar_p:.2g}, "
                    f"Holm {r.mcnemar_p_holm:.2g} "
                    f"({verdict})"
                )
        tables[d] = rows
    labels = list(dict.fromkeys(label for rows in tables.values() for label in rows))
    columns = [
        "feature set vs the hybrid (images only it / only the hybrid gets right; McNemar p, Holm-adjusted)",
        *(DATASETS[d].title for d in names),
    ]
    return report.markdown_table(columns, [[label, *(tables[d].get(label, "") for d in names)] for label in labels])


def experiments_shots(reader: Reader, *names: str) -> str:
    """Test accuracy against shots per image (seed 1), and the exact limit."""
    tables = {}
    for d in names:
        shots = reader.csv(f"{d}/experiments/shots.csv", dtype={"shots": "Int64"})
        tables[d] = {
            ("exact (infinite shots)" if pd.isna(r.shots) else f"{r.shots}"): interval(
                r.test_accuracy, r.ci95_low, r.ci95_high
            )
            for r in shots.itertuples(index=False)
        }
    labels = list(dict.fromkeys(label for rows in tables.values() for label in rows))
    columns = ["shots per image", *(DATASETS[d].title for d in names)]
    return report.markdown_table(columns, [[label, *(tables[d].get(label, "") for d in names)] for label in labels])


def systems_claims(reader: Reader) -> str:
    """Each claim of the trainable systems' sources against what we measure (make systems)."""
    text = systems_report.claims_markdown(reader.csv("systems/claims.csv", dtype=systems_report.CLAIMS_INTEGERS))
    return text.split("\n", 2)[2].split("\n## ")[0]  # without its page heading, and the claims table only


def study_summary(reader: Reader) -> str:
    """Per system, each model tuned at equal budget and retrained over seeds, then the chosen configurations and
    the paired comparisons of one Holm family (make study)."""
    summary = reader.csv("study/summary.csv")
    comparisons = reader.csv("study/comparisons.csv", dtype={"n_seeds": "Int64"})
    out = [study.summary_markdown(summary), "**Chosen configurations**\n", study.chosen_markdown(summary)]
    paired = study.comparisons_markdown(comparisons)
    out += ["**Paired over seeds** (one Holm family)\n", paired] if paired else []
    return "\n".join(out)


def systems_comparisons(reader: Reader) -> str:
    """Each quantum setting against its control, paired over seeds, Holm over one family (make systems)."""
    table = reader.csv("systems/comparisons.csv", dtype=systems_report.COMPARISONS_INTEGERS)
    ran = table[table["n_seeds"] > 0]
    primary_test = ran["primary_test"].iloc[0] if len(ran) else systems_report.Rules.primary_test
    return systems_report.comparisons_table_markdown(table, primary_test)


# The headline: each source's main claim. Sarkar's: the claim and verdict from the replication table (claim
# names: qtlmnist.report.CLAIMS), the interval over the whole-pipeline seeds (autoencoder, shots and classifier
# retrained per seed: what a rerun can show), by the model whose test accuracy the claim is; each trainable
# system's by (system, setting, evaluation set, statistic), the config's names, from the claims table
# (qtlmnist.systems.report).
HEADLINE_SARKAR = {"Classical test accuracy (~98%)": "baseline", "Hybrid test accuracy (~75%)": "hybrid"}
HEADLINE_SYSTEMS = [
    ("paradoxical7_qnn", "as_published", "test", "final"),
    ("quantum_mnist", "hybrid", "test", "final"),
    ("cnn_circuit", "mnist_3v5_as_shipped", "train", "weight_change"),
    ("reuploading", "posted_4", "test", "final"),
    ("reuploading", "posted_10", "test", "final"),
]
SYSTEM_SOURCES = {
    "paradoxical7_qnn": "001 Paradoxical7/QNN",
    "quantum_mnist": "000 Quantum-MNIST",
    "cnn_circuit": "002 Hybrid-Quantum-Classifier",
    "reuploading": "004 re-uploading post",
}


HEADLINE_PARTS = ("sarkar", "systems")


def headline(reader: Reader, *parts: str) -> str:
    """Each source's main claim, our measured value with its 95% interval over seeds, and the verdict. `parts`
    (default both): "sarkar" (from `make experiments`) and/or "systems" (from `make systems`), so that each half
    can be written from its own run, as one table or as two blocks one above the other."""
    unknown = set(parts) - set(HEADLINE_PARTS)
    if unknown:
        raise ValueError(f"headline: unknown part(s) {sorted(unknown)}; known: {', '.join(HEADLINE_PARTS)}")
    parts = parts or HEADLINE_PARTS
    columns = ["source", "claim", "claimed", "measured: mean over seeds [95% interval]", "seeds", "verdict"]
    rows = []
    if "sarkar" in parts:
        sarkar = reader.csv("mnist/experiments/replication.csv").set_index("claim")
        pipeline = reader.csv("mnist/experiments/pipeline_comparison.csv").iloc[0]
        for claim, model in HEADLINE_SARKAR.items():
            r = sarkar.loc[claim]
            measured = pipeline_mean(pipeline, model).replace(" ", "% ", 1)
            seeds = f"{int(pipeline['n_seeds'])} (whole pipeline)"
            rows.append([f"Sarkar 2024 ({r['source']})", claim, f"{r['paper']:.2f}%", measured, seeds, r["verdict"]])
    if "systems" in parts:
        claims = reader.csv("systems/claims.csv", dtype=systems_report.CLAIMS_INTEGERS)
        for system, setting, eval_set, statistic in HEADLINE_SYSTEMS:
            key = (claims["system"] == system) & (claims["setting"] == setting)
            found = claims[key & (claims["eval_set"] == eval_set) & (claims["statistic"] == statistic)]
            if found.empty:
                raise MissingResult(
                    f"results/systems/claims.csv has no row for {system} {setting} ({eval_set}, {statistic}): "
                    "the headline (tools/docs.py HEADLINE_SYSTEMS) names a claim the systems no longer make"
                )
            r = found.iloc[0]  # a Series: r["compare"], since r.compare is its method
            claimed = "" if pd.isna(r["claimed"]) else f"{'' if r['compare'] == 'equal' else '> '}{r['claimed']:.1f}%"
            low, high = r["ci95_low"], r["ci95_high"]
            measured = "" if pd.isna(low) else f"{r['measured_as_run']:.1f}% [{low:.1f}, {high:.1f}]"
            rows.append(
                [SYSTEM_SOURCES[system], f"{r['claim']} ({setting})", claimed, measured, r["n_seeds"], r["verdict"]]
            )
    return report.markdown_table(columns, rows)


# Which benchmark files belong to a target: (folder under results/, its subfolders that belong to another target,
# the provenance of the target's run).
TARGET_BENCHMARKS = {
    "replicate": ("{d}/benchmarks", ("experiments", "readings"), "{d}/provenance.json"),
    "experiments": ("{d}/benchmarks/experiments", (), "{d}/experiments/provenance.json"),
    "readings": ("{d}/benchmarks/readings", (), "{d}/readings/provenance.json"),
    "systems": ("systems/benchmarks", (), "systems/provenance.json"),
}
# The circuit drawing both datasets share: its job belongs to `make replicate` of either.
SHARED_BENCHMARKS = "benchmarks"


def _jobs(reader: Reader, folder: str, leave_out: tuple[str, ...], vouched_by: str) -> pd.DataFrame:
    """One row per job of a target (rule, wall s, CPU s, max RSS MB) from its benchmark files, cited as a folder
    (they are many, and hold no science), with the provenance of the run that wrote them (`vouched_by`)."""
    from tools.bench import rule_names

    rules = rule_names(ROOT / "workflow" / "rules")
    base = reader.results / folder
    paths = [p for p in sorted(base.rglob("*.tsv")) if p.relative_to(base).parts[0] not in leave_out]
    if not paths:
        raise MissingResult(f"results/{folder} holds no benchmark files: run `{make_command(vouched_by)}` first")
    reader.json(vouched_by)
    cited = f"{folder}/" + (f" (less {', '.join(leave_out)}/)" if leave_out else "")
    if cited not in reader.read:  # the shared circuit drawing's folder serves both datasets
        reader.read.append(cited)
    rows = []
    for path in paths:
        name = max((r for r in rules if path.stem == r or path.stem.startswith(r + "_")), key=len, default=path.stem)
        last = pd.read_csv(path, sep="\t").iloc[-1]
        parts = path.relative_to(base).parts
        folder_name = parts[0] if len(parts) > 1 else ""  # the system's folder; "" for a target-wide job
        rows.append(
            {"rule": name, "folder": folder_name, "wall_s": last["s"], "cpu_s": last["cpu_time"]}
            | {"max_rss_mb": last["max_rss"]}
        )
    return pd.DataFrame(rows)


def target_jobs(reader: Reader, kind: str, dataset: str = "") -> tuple[pd.DataFrame, dict]:
    """Every job of one target's last run, and that run's provenance."""
    folder, leave_out, vouched_by = (
        value.format(d=dataset) if isinstance(value, str) else value for value in TARGET_BENCHMARKS[kind]
    )
    jobs = _jobs(reader, folder, leave_out, vouched_by)
    if kind == "replicate":
        jobs = pd.concat([jobs, _jobs(reader, SHARED_BENCHMARKS, (), vouched_by)], ignore_index=True)
    return jobs, reader.json(vouched_by)


def costs(reader: Reader, *targets: str) -> str:
    """What each target cost in its last run: jobs, elapsed time of the command that finished it, the jobs' summed
    wall and CPU time, and the largest job's memory (targets: replicate:DATASET, experiments:DATASET, systems)."""
    columns = ["command", "jobs", "elapsed (s)", "summed job wall time (s)", "summed CPU time (s)", "peak RSS (MB)"]
    rows = []
    for target in targets:
        kind, _, dataset = target.partition(":")
        jobs, provenance = target_jobs(reader, kind, dataset)
        started, written = (provenance.get(k) for k in ("started", "written"))
        elapsed = (
            f"{(pd.Timestamp(written) - pd.Timestamp(started)).total_seconds():,.0f}" if started and written else ""
        )
        command = f"make {kind}" + (f" DATASET={dataset}" if dataset and dataset != "mnist" else "")
        rows.append(
            [
                f"`{command}`",
                len(jobs),
                elapsed,
                f"{jobs['wall_s'].sum():,.0f}",
                f"{jobs['cpu_s'].sum():,.0f}",
                f"{jobs['max_rss_mb'].max():,.0f}",
            ]
        )
    return report.markdown_table(columns, rows)


def system_costs(reader: Reader) -> str:
    """Per trainable system, what its part of the last `make systems` cost: jobs, settings trained (one job
    each, all seeds of a setting in it), summed wall and CPU time, the largest job's memory, and of the jobs'
    wall time how much went to training (`fit`) and to Aer's shots (the runs' own clocks, runs.csv): the rest is
    start-up, loading and the exact evaluation."""
    jobs, _ = target_jobs(reader, "systems")
    # one row per run (its seconds repeat on each of its evaluation sets' rows)
    runs = reader.csv("systems/runs.csv").drop_duplicates(["system", "setting", "seed"])
    clocks = runs.groupby("system")[["fit_seconds", "shots_seconds"]].sum()

    def sums(frame: pd.DataFrame) -> list[str]:
        return [f"{frame[c].sum():,.0f}" for c in ("wall_s", "cpu_s")] + [f"{frame['max_rss_mb'].max():,.0f}"]

    columns = ["system", "jobs", "settings", "summed job wall time (s)", "summed CPU time (s)", "peak RSS (MB)"]
    columns += ["of the wall time: training (s)", "Aer's shots (s)"]
    rows = [
        [SYSTEM_SOURCES.get(system, system), len(frame), int((frame["rule"] == "system_run").sum()), *sums(frame)]
        + [f"{clocks.loc[system, c]:,.0f}" if system in clocks.index else "" for c in clocks.columns]
        for system, frame in jobs[jobs["folder"] != ""].groupby("folder")
    ]
    rest = jobs[jobs["folder"] == ""]
    rows.append(["the claims table, figures and provenance", len(rest), 0, *sums(rest), "", ""])
    return report.markdown_table(columns, rows)


def stage_costs(reader: Reader, *names: str) -> str:
    """Per rule of `make replicate`: jobs, summed wall and CPU time, and the largest job's memory, per dataset."""
    per = {}
    for d in names:
        jobs, _ = target_jobs(reader, "replicate", d)
        per[d] = jobs.groupby("rule", sort=False).agg(
            jobs=("rule", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"), max_rss_mb=("max_rss_mb", "max")
        )
    order = per[names[0]].sort_values("wall_s", ascending=False, kind="stable").index
    columns = ["rule", "jobs", *(f"{DATASETS[d].title} {what}" for d in names for what in ("wall (s)", "CPU (s)"))]
    columns.append("max RSS (MB)")
    rows = []
    for rule in [*order, "all"]:
        frames = {d: per[d] if rule == "all" else per[d].loc[[rule]] for d in names}
        cells = [rule, int(frames[names[0]]["jobs"].sum())]
        for d in names:
            cells += [f"{frames[d]['wall_s'].sum():.1f}", f"{frames[d]['cpu_s'].sum():.1f}"]
        cells.append(f"{max(frames[d]['max_rss_mb'].max() for d in names):.0f}")
        rows.append(cells)
    return report.markdown_table(columns, rows)


QUANTUM_METHODS = {
    "paper_loop": "the paper's section 3.4 per image: new circuit, `transpile`, `run`, `get_counts`",
    "pipeline": "the workflow's code: one transpiled parameterised circuit, batched `parameter_binds`, shard processes",
    "exact_limit": "closed-form probabilities + numpy multinomial sampling",
}


def bench_quantum(reader: Reader) -> str:
    """The quantum stage's three routes (make bench, tools.bench)."""
    bench = reader.json("bench/quantum.json")
    rows = [
        [
            f"`{m}`",
            f"{what} ({bench['n_samples'][m]:,} inputs)",
            f"{bench['samples_per_s'][m]:,.1f}",
            f"{bench['peak_rss_mb'][m]:,.0f}",
        ]
        for m, what in QUANTUM_METHODS.items()
    ]
    table = report.markdown_table(["method", "what", "samples/s", "peak RSS (MB)"], rows)
    scaling = bench["scaling"]
    by_n = sorted(scaling["time_vs_n_seconds"].items(), key=lambda item: int(item[0]))
    times = ", ".join(f"{float(s):.2f} s / {int(n):,}" for n, s in by_n)
    return table + (
        f"\npipeline / paper_loop = {bench['speedup_vs_paper_loop']:,.0f}x; exact_limit / pipeline = "
        f"{bench['gap_to_exact_limit']:,.0f}x; 2 parallel shards = {scaling['two_shards_vs_one']:.2f}x one shard; "
        f"time vs N (one shard): {times}; {bench['shots']} shots, {bench['cpu_count']} cores; paper-loop counts equal "
        f"the pipeline's on the same rows: {'yes' if bench['paper_loop_equals_pipeline'] else 'no'}.\n"
    )


def bench_systems(reader: Reader) -> str:
    """Each trainable system's circuit trained every way the benchmark knows (make bench, tools.bench_systems)."""
    from tools.bench_systems import table

    return table(reader.json("bench/systems.json")["systems"]) + "\n"


def bench_peers(reader: Reader) -> str:
    """Per system, ours against the fastest peer over a typical run, compilation included (make bench,
    tools.bench_systems)."""
    from tools.bench_systems import peers_table

    return peers_table(reader.json("bench/systems.json")["systems"])


def bench_levers(reader: Reader) -> str:
    """The engine's plan and XLA, one by one, on each system's circuit (make bench, tools.bench_engine_levers)."""
    from tools.bench_engine_levers import table

    return table(reader.json("bench/engine_levers.json"))


def readings_factors(reader: Reader) -> str:
    """The reading space as config/config.yaml states it: each factor's values and why a reader would pick
    them (no results: the config is its one place)."""
    import yaml

    from qtlmnist import readings

    factors = yaml.safe_load((ROOT / "config/config.yaml").read_text())["readings"]["factors"]
    rows = [
        [f"`{factor}`", f"`{value}`" + (" (ours)" if value == readings.OURS[factor] else ""), reason]
        for factor, values in factors.items()
        for value, reason in values.items()
    ]
    return report.markdown_table(["factor", "value", "why a careful reader could pick it"], rows)


def readings_design(reader: Reader) -> str:
    """The default design (config/config.yaml): its size and every reading (tools/readings_design)."""
    from tools.readings_design import describe, load

    return "```\n" + describe(load(None)) + "\n```\n"


def readings_claims(reader: Reader, *names: str) -> str:
    """Per dataset, each hybrid claim over every reading (make readings DATASET=...)."""
    from qtlmnist import readings_tables

    tables = []
    for d in names:
        table = reader.csv(f"{d}/readings/claims.csv")
        tables.append(f"**{DATASETS[d].title}**\n\n" + readings_tables.claims_markdown(table))
    return "\n".join(tables)


def readings_effects(reader: Reader, *names: str) -> str:
    """Per dataset, the main effects of each choice on the hybrid's test accuracy (make readings DATASET=...)."""
    from qtlmnist import readings_tables

    tables = []
    for d in names:
        effects = reader.csv(f"{d}/readings/main_effects.csv")
        fit = reader.json(f"{d}/readings/fit.json")
        tables.append(f"**{DATASETS[d].title}**\n\n" + readings_tables.effects_markdown(effects, fit))
    return "\n".join(tables)


def readings_replication(reader: Reader, *names: str) -> str:
    """Per dataset, the replication table of the run the readings read (make replicate's metrics) with its
    verdict over every reading beside each hybrid claim (make readings DATASET=...)."""
    tables = []
    for d in names:
        table = reader.csv(f"{d}/readings/replication.csv")
        tables.append(f"**{DATASETS[d].title}**\n\n" + report.table_markdown(table))
    return "\n".join(tables)


def pages(reader: Reader) -> str:
    """Each docs page with its question (its first heading; qtlmnist.report.page_questions, as the HTML report's
    landing page lists them)."""
    texts = {path.stem: path.read_text() for path in sorted((reader.root / "docs").glob("*.md"))}
    rows = [[f"[docs/{name}.md](docs/{name}.md)", question] for name, question in report.page_questions(texts)]
    return report.markdown_table(["page", "question"], rows)


BLOCKS: dict[str, Callable[..., str]] = {
    "pages": pages,
    "headline": headline,
    "costs": costs,
    "replication_seeds": replication_seeds,
    "datasets": datasets,
    "experiments_controls": experiments_controls,
    "experiments_shots": experiments_shots,
    "experiments_paired": experiments_paired,
    "experiments_pipeline": experiments_pipeline,
    "systems_claims": systems_claims,
    "systems_comparisons": systems_comparisons,
    "study_summary": study_summary,
    "stage_costs": stage_costs,
    "system_costs": system_costs,
    "bench_quantum": bench_quantum,
    "bench_systems": bench_systems,
    "bench_peers": bench_peers,
    "bench_levers": bench_levers,
    "readings_factors": readings_factors,
    "readings_design": readings_design,
    "readings_claims": readings_claims,
    "readings_effects": readings_effects,
    "readings_replication": readings_replication,
}


# --- pages ---------------------------------------------------------------------------------------------------


def page_files(root: Path) -> list[Path]:
    return [path for pattern in PAGES for path in sorted(root.glob(pattern))]


def build(spec: str, root: Path, results: Path) -> str:
    """The body of one block: its stamp and its table."""
    name, *args = spec.split()
    if name not in BLOCKS:
        raise ValueError(f"unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
    reader = Reader(results, root)
    table = BLOCKS[name](reader, *args)
    return reader.stamp() + table


def render(text: str, root: Path, results: Path, only: set[str] | None = None) -> tuple[str, list[str]]:
    """The page with each chosen block rewritten, and the problems found (then the page must not be written)."""
    problems = []

    def replace(match: re.Match) -> str:
        name = match["spec"].split()[0]
        # a chosen name picks every block of that name; NAME:ARG... only the block of that spec (its spaces
        # written as colons: compare that way round, since an argument may hold a colon itself)
        if only is not None and name not in only and match["spec"].replace(" ", ":") not in only:
            return match[0]
        try:
            body = build(match["spec"], root, results)
        except MissingResult as error:
            problems.append(f"{match['spec']}: {error}")
            return match[0]
        return match["begin"] + body + match["end"]

    return BLOCK.sub(replace, text), problems


def generate(root: Path, results: Path, only: set[str] | None = None) -> dict[Path, str]:
    """Every page under `root` rendered from `results`; raises MissingResult listing every problem."""
    rendered, problems = {}, []
    for path in page_files(root):
        text, found = render(path.read_text(), root, results, only)
        problems += [f"{path.relative_to(root)}: {p}" for p in found]
        rendered[path] = text
    if problems:
        raise MissingResult("\n".join(problems))
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="where README.md and docs/ are")
    parser.add_argument("--results", type=Path, default=None, help="the results folder (default: ROOT/results)")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME[:ARG...]", help="rewrite only these blocks (NAME:ARG: only that spec)"
    )
    args = parser.parse_args(argv)
    unknown = [o for o in args.only or () if o.split(":")[0] not in BLOCKS]
    if unknown:
        parser.error(f"unknown block(s) {', '.join(unknown)}; known: {', '.join(BLOCKS)}")
    results = args.results or args.root / "results"
    try:
        rendered = generate(args.root, results, set(args.only) if args.only else None)
    except MissingResult as error:
        print(f"make docs: nothing written; cited results are missing or stale:\n{error}", file=sys.stderr)
        return 1
    for path, text in rendered.items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
