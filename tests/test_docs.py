"""`make docs` (tools/docs.py): tables written from the results files and their provenance, prose left alone,
refusal on a missing or stale result; every relative link in README.md and docs/ resolves; provenance records."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from conftest import ROOT
from qtlmnist import provenance, report
from tools import docs

LINK = re.compile(r"\]\(([^)\s]+)\)")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def numbers(cell: str) -> list[float]:
    return [float(n.replace(",", "")) for n in NUMBER.findall(cell)]


def close(shown: float, value: float, digits: int) -> bool:
    """`shown` is `value` rounded to `digits` decimals (half a unit of the last digit, plus float slack)."""
    return abs(shown - value) <= 0.5 * 10**-digits + 1e-9


def markdown_rows(body: str) -> list[list[str]]:
    """The cells of every body row of the first markdown table in `body` (header and rule left out)."""
    lines = [line for line in body.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines[2:]]


def outside_markers(text: str) -> list[str]:
    """The hand-written text of a page: everything but the bodies of its generated blocks."""
    return docs.BLOCK.split(text)[:: len(docs.BLOCK.groupindex) + 1]


def blocks(text: str) -> dict[str, str]:
    return {m["spec"]: m["body"] for m in docs.BLOCK.finditer(text)}


# --- links and markers ---------------------------------------------------------------------------------------


def test_every_relative_link_in_readme_and_docs_points_to_a_file():
    # Strict on purpose: a page the README links to must exist (docs/module.md, docs/hardware.md and
    # docs/adding-a-system.md come from other branches; this fails until they are merged).
    broken = []
    for page in docs.page_files(ROOT):
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_every_page_opens_with_its_question_and_every_block_is_known():
    texts = {path.stem: path.read_text() for path in (ROOT / "docs").glob("*.md")}
    assert [name for name, _ in report.page_questions(texts)][:3] == ["replication", "experiments", "systems"]
    for page in docs.page_files(ROOT):
        text = page.read_text()
        assert text.count("<!-- BEGIN generated:") == text.count("<!-- END generated -->") == len(blocks(text))
        for spec in blocks(text):
            assert spec.split()[0] in docs.BLOCKS, f"{page.name}: {spec}"
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    readme = (ROOT / "README.md").read_text()
    assert "make replicate" in readme and "make test" in readme


def test_a_page_without_its_question_is_refused():
    with pytest.raises(ValueError, match=r"docs/notes\.md must open with its question"):
        report.page_questions({"notes": "Some notes\n"})


# --- refusal -------------------------------------------------------------------------------------------------


def page(tmp_path: Path, text: str) -> Path:
    (tmp_path / "docs").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "docs" / "page.md"
    path.write_text(text)
    return path


def test_refuses_a_missing_result_naming_it_and_writes_nothing(tmp_path):
    text = "# Q?\n\nprose\n<!-- BEGIN generated: datasets mnist fashion_mnist -->\nold\n<!-- END generated -->\nend\n"
    path = page(tmp_path, text)
    (tmp_path / "results").mkdir()
    assert docs.main(["--root", str(tmp_path)]) == 1
    assert path.read_text() == text
    with pytest.raises(
        docs.MissingResult, match=r"results/mnist/metrics/autoencoder.json is missing: run `make replicate`"
    ):
        docs.generate(tmp_path, tmp_path / "results")


def test_refuses_a_result_without_provenance_or_changed_after_it(tmp_path):
    results = tmp_path / "results"
    (results / "mnist" / "experiments").mkdir(parents=True)
    table = results / "mnist" / "experiments" / "replication.csv"
    table.write_text("claim\n")
    page(tmp_path, "# Q?\n<!-- BEGIN generated: replication_seeds mnist -->\n<!-- END generated -->\n")
    with pytest.raises(docs.MissingResult, match=r"has no provenance\.json"):
        docs.generate(tmp_path, results)
    recorded = {"results/mnist/experiments/replication.csv": hashlib.sha256(b"claim\nother\n").hexdigest()}
    (results / "mnist" / "experiments" / "provenance.json").write_text(json.dumps({"files": recorded}))
    with pytest.raises(docs.MissingResult, match=r"changed after results/mnist/experiments/provenance\.json was"):
        docs.generate(tmp_path, results)


def test_only_a_spec_written_with_colons_rewrites_that_block_alone(tmp_path, monkeypatch):
    # a block's arguments may hold colons themselves (`costs readings:mnist`): the spec's spaces written as colons
    # must pick that block and leave its namesakes alone
    monkeypatch.setitem(docs.BLOCKS, "echo", lambda reader, *args: "|".join(args) + "\n")
    text = "# Q?\n" + "".join(
        f"<!-- BEGIN generated: echo {spec} -->\nold\n<!-- END generated -->\n" for spec in ("a:1 b:2", "a:1")
    )
    path = page(tmp_path, text)
    assert docs.main(["--root", str(tmp_path), "--only", "echo:a:1"]) == 0
    assert path.read_text() == text.replace("echo a:1 -->\nold", "echo a:1 -->\na:1")
    assert docs.main(["--root", str(tmp_path), "--only", "echo"]) == 0
    assert "a:1|b:2\n" in path.read_text() and "old" not in path.read_text()


# --- provenance ------------------------------------------------------------------------------------------------

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 2.00GHz
flags\t\t: fpu sse sse2 ssse3 sse4_1 avx avx2 avx512f lm

processor\t: 1
model name\t: Another
flags\t\t: fpu
"""


def test_provenance_reads_the_first_cpu_and_hashes_the_files(tmp_path):
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    assert provenance.cpu(tmp_path / "cpuinfo") == {
        "model": "Example CPU @ 2.00GHz",
        "isa_flags": ["avx", "avx2", "avx512f", "sse", "sse2", "sse4_1", "ssse3"],
    }
    (tmp_path / "a.csv").write_bytes(b"x,y\n1,2\n")
    record = provenance.record("replicate", {"b": 1, "a": [2]}, ["a.csv"], root=tmp_path)
    assert record["files"] == {"a.csv": hashlib.sha256(b"x,y\n1,2\n").hexdigest()}
    assert record["config_sha256"] == hashlib.sha256(b'{"a": [2], "b": 1}').hexdigest()
    assert record["commit"] is None  # tmp_path is no git checkout
    assert provenance.beside(tmp_path / "bench" / "quantum.json").name == "quantum.provenance.json"


def test_bench_tables_hold_the_numbers_of_their_json(tmp_path):
    bench = tmp_path / "results" / "bench"
    bench.mkdir(parents=True)
    methods = ("paper_loop", "pipeline", "exact_limit")
    quantum = {
        "shots": 1024,
        "cpu_count": 2,
        "n_samples": dict(zip(methods, (100, 20000, 20000))),
        "samples_per_s": dict(zip(methods, (9.04, 1945.3, 331678.2))),
        "peak_rss_mb": dict(zip(methods, (105.2, 151.9, 51.1))),
        "speedup_vs_paper_loop": 215.2,
        "gap_to_exact_limit": 170.5,
        "paper_loop_equals_pipeline": True,
        "scaling": {"two_shards_vs_one": 2.104, "time_vs_n_seconds": {"1000": 0.84, "5000": 4.05}},
    }
    (bench / "quantum.json").write_text(json.dumps(quantum))
    files = {"results/bench/quantum.json": provenance.file_sha256(bench / "quantum.json")}
    (bench / "quantum.provenance.json").write_text(json.dumps({"files": files, "commit": "a" * 40}))
    reader = docs.Reader(tmp_path / "results")
    rows = markdown_rows(docs.bench_quantum(reader))
    assert [row[0] for row in rows] == [f"`{m}`" for m in methods]
    for row, method in zip(rows, methods):
        assert numbers(row[2]) == [round(quantum["samples_per_s"][method], 1)]
        assert numbers(row[3]) == [round(quantum["peak_rss_mb"][method])]
    assert "commit aaaaaaa" in reader.stamp()


def test_bench_systems_table_holds_the_numbers_of_its_json(tmp_path):
    bench = tmp_path / "results" / "bench"
    bench.mkdir(parents=True)
    ours = {"samples": 80, "samples_per_s": 219.4, "samples_per_cpu_s": 230.1, "s_per_epoch_cpu": 0.3712}
    ours |= {"speedup_of_ours": 1.0, "speedup_of_ours_cpu": 1.0, "grad_max_abs_diff": None}
    ours |= {"compile_s": 4.2, "step_s": 0.0042, "step_cpu_s": 0.0039, "typical_run_s": 14.3, "typical_run_cpu_s": 13.6}
    shift = {"samples": 12, "samples_per_s": 5.081, "samples_per_cpu_s": 5.33, "s_per_epoch_cpu": 15.83}
    shift |= {
        "speedup_of_ours": 38.52,
        "speedup_of_ours_cpu": 43.1,
        "grad_max_abs_diff": 5.04e-16,
        "capped": True,
        "seconds": 60.2,
        "compile_s": None,  # a route without a compiled first step
        "step_s": 0.197,
        "step_cpu_s": 0.188,
        "typical_run_s": 472.8,
        "typical_run_cpu_s": 451.2,
    }
    entry = {"seed_document": "001", "batch": 1, "routes": {"ours": ours, "qml_shift": shift}}
    (bench / "systems.json").write_text(json.dumps({"systems": {"paradoxical7_qnn": entry}}))
    files = {"results/bench/systems.json": provenance.file_sha256(bench / "systems.json")}
    (bench / "systems.provenance.json").write_text(json.dumps({"files": files, "commit": "b" * 40}))
    rows = markdown_rows(docs.bench_systems(docs.Reader(tmp_path / "results")))
    assert [row[1] for row in rows] == ["ours", "qml_shift"]
    for row, route in zip(rows, (ours, shift)):
        assert int(row[3]) == route["samples"]
        for cell, key in zip(row[4:9], ("samples_per_s", "samples_per_cpu_s", "s_per_epoch_cpu", "speedup_of_ours")):
            shown, value = numbers(cell)[0], route[key]
            assert abs(shown - value) <= (0.5 if value >= 100 else 0.005 * value), (key, cell)
        for cell, key in zip(row[13:15], ("typical_run_s", "typical_run_cpu_s")):
            assert abs(numbers(cell)[0] - route[key]) <= 0.005 * route[key], (key, cell)
    assert numbers(rows[1][9]) == [5.0e-16] and "capped" in rows[1][-1]


def _write_bench(tmp_path: Path, name: str, payload: dict) -> docs.Reader:
    bench = tmp_path / "results" / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    (bench / f"{name}.json").write_text(json.dumps(payload))
    files = {f"results/bench/{name}.json": provenance.file_sha256(bench / f"{name}.json")}
    (bench / f"{name}.provenance.json").write_text(json.dumps({"files": files, "commit": "c" * 40}))
    return docs.Reader(tmp_path / "results")


def test_bench_peers_table_holds_each_systems_totals_and_ratios(tmp_path):
    # hand-made totals: one seed, ours 9.31 CPU s (ours_graph) vs tc_jax 11.9: 1.278; 10 seeds together, ours
    # 23.4 vs pl_jax_group 24.9: 1.064; wall 0.62 (a peer faster on wall time)
    def versus(ours, ours_s, peer, peer_s):
        return {
            "ours": ours,
            "ours_s": ours_s,
            "fastest_peer": peer,
            "peer_s": peer_s,
            "peer_over_ours": peer_s / ours_s,
        }

    entry = {"seed_document": "000", "batch": 32, "steps": 1875, "seeds": 10}
    entry |= {
        "versus_fastest_peer_cpu": versus("ours_graph", 9.31, "tc_jax", 11.9),
        "versus_fastest_peer": versus("ours_xla", 26.5, "pl_jax", 16.43),
        "versus_fastest_peer_group_cpu": versus("ours_group", 23.4, "pl_jax_group", 24.9),
        "versus_fastest_peer_group": versus("ours_group", 40.0, "pl_jax_group", 44.0),
    }
    rows = markdown_rows(docs.bench_peers(_write_bench(tmp_path, "systems", {"systems": {"quantum_mnist": entry}})))
    assert rows[0][:2] == ["000 quantum_mnist (32, 1,875)", "one seed"] and rows[1][:2] == ["", "10 seeds together"]
    assert rows[0][2:4] == ["ours_graph 9.31", "tc_jax 11.9"] and rows[1][2:4] == [
        "ours_group 23.4",
        "pl_jax_group 24.9",
    ]
    assert [numbers(cell)[0] for cell in rows[0][4:]] == [1.28, 0.62]  # the cell's first number
    assert [numbers(cell)[0] for cell in rows[1][4:]] == [1.06, 1.10]
    assert rows[0][4] == "**1.28**" and rows[0][5] == "0.62 (ours_xla vs pl_jax)"  # bold: at least as fast;
    # the wall comparison names its routes where they differ from the CPU one's
    assert rows[1][5] == "**1.10**"
    del entry["versus_fastest_peer_group_cpu"], entry["versus_fastest_peer_group"]  # a run without the group routes
    rows = markdown_rows(docs.bench_peers(_write_bench(tmp_path, "systems", {"systems": {"quantum_mnist": entry}})))
    assert [row[1] for row in rows] == ["one seed"]


def test_bench_levers_table_holds_the_numbers_of_its_json(tmp_path):
    def row(fused, xla, first, first_cpu, ms):
        return {"system": "cnn_circuit", "batch": 16, "fused": fused, "plan_steps": 4 if fused else 5, "xla": xla,
                "first_call_s": first, "first_call_cpu_s": first_cpu, "cpu_ms_per_step": ms}  # fmt: skip

    levers = {
        "cnn_circuit fuse=False xla=False": row(False, False, 2.71, 0.94, 1.504),
        "cnn_circuit fuse=True xla=True": row(True, True, 5.02, 1.83, 0.687),
    }
    rows = markdown_rows(docs.bench_levers(_write_bench(tmp_path, "engine_levers", levers)))
    assert rows == [
        ["cnn_circuit (16)", "gate by gate (5)", "graph", "2.7 / 0.9", "1.50"],
        ["", "the engine (4)", "XLA", "5.0 / 1.8", "0.69"],
    ]


# --- the generator on the CI run -------------------------------------------------------------------------------

# Not in the CI run (test_experiments runs `experiments` on MNIST only; `make bench` takes minutes):
# on the copied pages these markers lose their Fashion-MNIST experiments, and the bench blocks are left out.
CI_MARKERS = {
    "experiments_controls mnist fashion_mnist": "experiments_controls mnist",
    "experiments_shots mnist fashion_mnist": "experiments_shots mnist",
    "experiments_paired mnist fashion_mnist": "experiments_paired mnist",
    "experiments_pipeline mnist fashion_mnist": "experiments_pipeline mnist",
    " experiments:fashion_mnist ": " ",
    "readings_claims mnist fashion_mnist": "readings_claims mnist",
    "readings_effects mnist fashion_mnist": "readings_effects mnist",
    "readings_replication mnist fashion_mnist": "readings_replication mnist",
    "costs readings:mnist readings:fashion_mnist": "costs readings:mnist",
}
NOT_ON_CI = {"bench_quantum", "bench_systems", "bench_peers", "bench_levers"}


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="Fashion-MNIST's offline source is Debian's package")
def test_docs_generated_from_the_ci_run_hold_the_numbers_of_the_files_they_read(ci_run, tmp_path):
    # the targets the pages cite: ci_run made them all (conftest.ci_targets; Fashion-MNIST and the systems where
    # apt-get is, as here)
    results = ci_run / "results"

    root = tmp_path / "pages"
    (root / "docs").mkdir(parents=True)
    for path in docs.page_files(ROOT):
        text = path.read_text()
        for old, new in CI_MARKERS.items():
            text = text.replace(old, new)
        (root / path.relative_to(ROOT)).write_text(text)
    before = {path: path.read_text() for path in docs.page_files(root)}
    chosen = set(docs.BLOCKS) - NOT_ON_CI
    assert docs.main(["--root", str(root), "--results", str(results), "--only", *sorted(chosen)]) == 0

    generated = {}
    for path, old in before.items():
        new = path.read_text()
        assert outside_markers(new) == outside_markers(old), f"{path.name}: text outside the markers changed"
        for spec, body in blocks(new).items():
            if spec.split()[0] in NOT_ON_CI:
                assert body == blocks(old)[spec]  # left alone
            else:
                generated[spec] = body
    assert {spec.split()[0] for spec in generated} == chosen

    for spec, body in generated.items():
        if spec not in ("pages", "readings_factors", "readings_design"):  # every results table says its source
            assert body.startswith("*Written by `make docs` from `results/") and "`snakemake " in body, spec
    check_replication(generated["replication_seeds mnist"], results / "mnist/experiments/replication.csv")
    check_datasets(generated["datasets mnist fashion_mnist"], results)
    check_experiments(generated["experiments_controls mnist"], generated["experiments_shots mnist"], results)
    check_paired(generated["experiments_paired mnist"], results)
    check_pipeline(generated["experiments_pipeline mnist"], results)
    check_systems(generated["systems_claims"], results / "systems/claims.csv")
    check_systems_comparisons(generated["systems_comparisons"], results / "systems/comparisons.csv")
    check_headline(generated["headline sarkar"], generated["headline systems"], results)
    check_costs([body for spec, body in generated.items() if spec.startswith("costs")], results)
    check_stage_costs(generated["stage_costs mnist fashion_mnist"], results)
    check_readings(generated["readings_claims mnist"], generated["readings_effects mnist"], results / "mnist/readings")
    check_readings_replication(generated["readings_replication mnist"], results / "mnist/readings/replication.csv")
    check_study(generated["study_summary"], results / "study")
    check_system_costs(generated["system_costs"], results / "systems/benchmarks")
    questions = [row[1] for row in markdown_rows(generated["pages"])]
    assert questions == [path.read_text().splitlines()[0][2:] for path in sorted_pages(root)]

    # a cited result that the run did not make: refused, naming it, and nothing written
    text = (
        (root / "docs/experiments.md").read_text().replace("experiments_shots mnist", "experiments_shots fashion_mnist")
    )
    (root / "docs/experiments.md").write_text(text)
    pages_before = {path: path.read_text() for path in docs.page_files(root)}
    with pytest.raises(docs.MissingResult, match=r"results/fashion_mnist/experiments/shots.csv is missing"):
        docs.generate(root, results)
    assert docs.main(["--root", str(root), "--results", str(results)]) == 1
    assert {path: path.read_text() for path in docs.page_files(root)} == pages_before


def sorted_pages(root: Path) -> list[Path]:
    texts = {path.stem: path for path in (root / "docs").glob("*.md")}
    return [texts[name] for name, _ in report.page_questions({k: v.read_text() for k, v in texts.items()})]


def check_replication(body: str, csv: Path):
    table = pd.read_csv(csv).set_index("claim")
    rows = markdown_rows(body)
    assert [row[0] for row in rows] == list(table.index)
    for row in rows:
        source = table.loc[row[0]]
        assert row[6] == source["verdict"]
        digits = 4 if source["unit"] == "mse" else 2
        assert close(numbers(row[3 if source["unit"] != "comparison" else 4])[0], source["measured"], digits)
        if not pd.isna(source["seeds_mean"]):
            mean, low, high, n = numbers(row[7])
            assert close(mean, source["seeds_mean"], 2) and close(low, source["seeds_ci95_low"], 2)
            assert close(high, source["seeds_ci95_high"], 2) and n == source["seeds_n"]


def check_datasets(body: str, results: Path):
    rows = {row[0]: row[1:] for row in markdown_rows(body)}
    for column, dataset in enumerate(("mnist", "fashion_mnist")):
        metrics = {
            m: json.loads((results / f"{dataset}/metrics/{m}.json").read_text())
            for m in ("autoencoder", "baseline", "hybrid")
        }
        train, val = numbers(rows["autoencoder MSE, train / validation"][column])
        assert close(train, metrics["autoencoder"]["train_mse"], 4) and close(val, metrics["autoencoder"]["val_mse"], 4)
        for model, label in (("baseline", "classical"), ("hybrid", "hybrid")):
            cell = next(cells for name, cells in rows.items() if name.startswith(label + " on"))[column]
            for shown, split in zip(numbers(cell), ("train", "val", "test")):
                assert close(shown, 100 * metrics[model][f"{split}_accuracy"], 2)
        gap = 100 * (metrics["hybrid"]["val_accuracy"] - metrics["baseline"]["val_accuracy"])
        assert close(numbers(rows["hybrid minus classical, validation"][column])[0], gap, 2)
        per_class = metrics["hybrid"]["test_per_class_accuracy"]
        cell = rows["per-class test accuracy, hybrid (lowest to highest)"][column]
        low, high = (float(v) for v in re.findall(r"(\d+\.\d)% \(", cell))
        assert close(low, 100 * min(per_class), 1) and close(high, 100 * max(per_class), 1)


def check_interval(cell: str, mean: float, low: float, high: float):
    shown = numbers(cell)
    assert len(shown) == 3 and all(close(s, 100 * v, 2) for s, v in zip(shown, (mean, low, high))), cell


def check_experiments(controls_body: str, shots_body: str, results: Path):
    out = results / "mnist/experiments"
    rows = {row[0]: row[2] for row in markdown_rows(controls_body)}
    widths = {row[0]: row[1] for row in markdown_rows(controls_body)}
    summary = pd.read_csv(out / "seeds_summary.csv")
    for model, prefix in (("baseline", "64-d latents"), ("hybrid", "hybrid:")):
        source = summary[(summary["model"] == model) & (summary["metric"] == "test_accuracy")].iloc[0]
        cell = next(cells for name, cells in rows.items() if name.startswith(prefix))
        check_interval(cell, source["mean"], source["ci95_low"], source["ci95_high"])
    noise = pd.read_csv(out / "noise.csv")
    # the noiseless run (no McNemar: it is the hybrid itself) is listed once, as controls.csv's hybrid row
    singles = pd.concat([noise[noise["mcnemar_p"].notna()], pd.read_csv(out / "controls.csv")])
    for r in singles.itertuples(index=False):
        label = r.control if isinstance(r.control, str) else f"circuit counts, {r.setting} ({r.variant})"
        check_interval(rows[label], r.test_accuracy, r.ci95_low, r.ci95_high)
        assert int(widths[label]) == r.n_features
    assert len(rows) == 2 + len(singles)
    shots = pd.read_csv(out / "shots.csv")
    shot_rows = markdown_rows(shots_body)
    assert len(shot_rows) == len(shots)
    for row, r in zip(shot_rows, shots.itertuples(index=False)):
        assert row[0] == ("exact (infinite shots)" if pd.isna(r.shots) else str(int(r.shots)))
        check_interval(row[1], r.test_accuracy, r.ci95_low, r.ci95_high)


def check_paired(body: str, results: Path):
    out = results / "mnist/experiments"
    rows = {row[0]: row[1] for row in markdown_rows(body)}
    paired = 0
    for file in ("noise", "controls"):
        for r in pd.read_csv(out / f"{file}.csv").itertuples(index=False):
            if pd.isna(r.mcnemar_p):
                continue
            paired += 1
            label = r.control if file == "controls" else f"circuit counts, {r.setting} ({r.variant})"
            only_this, only_hybrid, p, holm = numbers(rows[label])
            assert (only_this, only_hybrid) == (r.only_this_right, r.only_hybrid_right), label
            assert (p, holm) == (float(f"{r.mcnemar_p:.2g}"), float(f"{r.mcnemar_p_holm:.2g}")), label
    assert len(rows) == paired


def check_systems(body: str, csv: Path):
    table = pd.read_csv(csv)
    rows = markdown_rows(body)
    assert len(rows) == len(table)
    for row, r in zip(rows, table.itertuples(index=False)):
        assert row[0] == r.system and row[1] == r.claim and row[-1] == r.verdict
        if not pd.isna(r.measured_as_run):
            assert close(numbers(row[6])[0], r.measured_as_run, 1)
        if not pd.isna(r.ci95_low):
            low, high = numbers(row[8])
            assert close(low, r.ci95_low, 1) and close(high, r.ci95_high, 1)


def check_systems_comparisons(body: str, csv: Path):
    table = pd.read_csv(csv)
    ran = table[table["n_seeds"] > 0]
    rows = markdown_rows(body)
    assert len(rows) == len(ran) > 0
    for row, r in zip(rows, ran.itertuples(index=False)):
        assert row[0] == r.system and row[1].startswith(f"{r.quantum} vs {r.control} (") and row[-1] == r.verdict
        assert int(row[2]) == r.n_seeds and close(numbers(row[5])[0], r.mean_difference, 1)
        assert float(row[9]) == float(f"{r.p_holm:.2g}")


def check_headline(sarkar_body: str, systems_body: str, results: Path):
    rows = markdown_rows(sarkar_body)
    assert len(rows) == len(docs.HEADLINE_SARKAR)
    sarkar = pd.read_csv(results / "mnist/experiments/replication.csv").set_index("claim")
    pipeline = pd.read_csv(results / "mnist/experiments/pipeline_seeds.csv")  # per seed: the interval by hand
    for row, model in zip(rows, ("baseline", "hybrid")):
        source = sarkar.loc[row[1]]
        assert close(numbers(row[2])[0], source["paper"], 2) and row[5] == source["verdict"]
        assert row[1].startswith("Classical" if model == "baseline" else "Hybrid")
        values = pipeline[model].to_numpy()
        assert all(close(a, b, 2) for a, b in zip(numbers(row[3]), t_interval_by_hand(values)))
        assert len(numbers(row[3])) == 3 and numbers(row[4]) == [len(values)]
    claims = pd.read_csv(results / "systems/claims.csv")
    system_rows = markdown_rows(systems_body)
    assert len(system_rows) == len(docs.HEADLINE_SYSTEMS)
    for row, (system, setting, eval_set, statistic) in zip(system_rows, docs.HEADLINE_SYSTEMS):
        found = claims[
            (claims["system"] == system)
            & (claims["setting"] == setting)
            & (claims["eval_set"] == eval_set)
            & (claims["statistic"] == statistic)
        ].iloc[0]
        assert row[1] == f"{found['claim']} ({setting})" and row[5] == found["verdict"]
        if not pd.isna(found["ci95_low"]):
            mean, low, high = numbers(row[3])
            assert close(mean, found["measured_as_run"], 1) and close(low, found["ci95_low"], 1)
            assert close(high, found["ci95_high"], 1)


def t_interval_by_hand(values) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval, from the textbook formula (not qtlmnist.stats)."""
    values = np.asarray(values, dtype=float)
    half = scipy.stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean(), values.mean() - half, values.mean() + half


def primary_p_by_hand(test: str, hybrid, baseline) -> float:
    """The primary test's p from SciPy directly: the paired t-test, or the exact sign flip as
    scipy.stats.permutation_test enumerates it."""
    if test == "paired_t":
        return scipy.stats.ttest_rel(hybrid, baseline).pvalue
    result = scipy.stats.permutation_test(
        (np.asarray(hybrid), np.asarray(baseline)),
        lambda a, b: np.mean(a - b),
        permutation_type="samples",
        n_resamples=np.inf,
    )
    return result.pvalue


def check_pipeline(body: str, results: Path):
    """Each dataset's whole-pipeline comparison against its per-seed file: means, t intervals, the paired
    difference and the primary test's p recomputed here from the seeds' accuracies."""
    rows = markdown_rows(body)
    assert [row[0] for row in rows] == ["MNIST"]
    per_seed = pd.read_csv(results / "mnist/experiments/pipeline_seeds.csv")
    summary = pd.read_csv(results / "mnist/experiments/pipeline_comparison.csv").iloc[0]
    assert int(rows[0][1]) == len(per_seed) >= 2  # config/ci.yaml runs two whole-pipeline seeds
    hybrid, baseline = per_seed["hybrid"].to_numpy(), per_seed["baseline"].to_numpy()
    for cell, values in zip(rows[0][2:5], (baseline, hybrid, hybrid - baseline)):
        shown, expected = numbers(cell), t_interval_by_hand(values)
        assert len(shown) == 3 and all(close(a, b, 2) for a, b in zip(shown, expected)), cell
    p = primary_p_by_hand(summary["primary_test"], hybrid, baseline)
    assert rows[0][5].startswith(f"{summary['primary_test']}: p = {p:.3g}"), rows[0][5]
    assert ("not significant" in rows[0][5]) == (p > summary["alpha"])


def test_a_single_whole_pipeline_seed_shows_its_value_without_an_interval_or_a_test(tmp_path):
    summary = {"n_seeds": 1, "primary_test": "paired_t", "p": float("nan"), "smallest_p": 0.0, "alpha": 0.05}
    summary |= {"significant": False}
    for column, value in (("baseline", 98.71), ("hybrid", 64.36), ("difference_pp", -34.35)):
        summary |= {f"{column}_{k}": value for k in ("mean", "low", "high")} | {f"{column}_std": float("nan")}
    folder = tmp_path / "results" / "mnist" / "experiments"
    folder.mkdir(parents=True)
    pd.DataFrame([summary]).to_csv(folder / "pipeline_comparison.csv", index=False)
    (folder / "provenance.json").write_text(json.dumps({"files": {}, "commit": "e" * 40}))
    rows = markdown_rows(docs.experiments_pipeline(docs.Reader(tmp_path / "results"), "mnist"))
    assert rows == [["MNIST", "1", "98.71 (one seed)", "64.36 (one seed)", "-34.35 (one seed)", rows[0][5]]] and rows[
        0
    ][5].startswith("none: one seed")


def benchmark_sums(folders: list[Path], leave_out: tuple[str, ...] = ()) -> tuple[int, float, float]:
    """Jobs, summed wall and CPU seconds of the benchmark files under `folders` (less the subfolders named in
    `leave_out`), read here independently."""
    paths = [
        p for folder in folders for p in folder.rglob("*.tsv") if not set(leave_out) & set(p.relative_to(folder).parts)
    ]
    frames = [pd.read_csv(p, sep="\t").iloc[-1] for p in paths]
    return len(paths), sum(f["s"] for f in frames), sum(f["cpu_time"] for f in frames)


# the benchmark subfolders of the targets that run after `make replicate` (tools/docs.py TARGET_BENCHMARKS)
LATER = ("experiments", "readings")


def check_costs(bodies: list[str], results: Path):
    rows = {row[0]: row[1:] for body in bodies for row in markdown_rows(body)}
    expected = {
        "`make replicate`": benchmark_sums([results / "mnist/benchmarks", results / "benchmarks"], LATER),
        "`make replicate DATASET=fashion_mnist`": benchmark_sums(
            [results / "fashion_mnist/benchmarks", results / "benchmarks"], LATER
        ),
        "`make experiments`": benchmark_sums([results / "mnist/benchmarks/experiments"]),
        "`make readings`": benchmark_sums([results / "mnist/benchmarks/readings"]),
        "`make systems`": benchmark_sums([results / "systems/benchmarks"]),
    }
    assert set(rows) == set(expected)
    for command, (jobs, wall, cpu) in expected.items():
        assert int(rows[command][0]) == jobs
        assert close(numbers(rows[command][2])[0], wall, 0) and close(numbers(rows[command][3])[0], cpu, 0)


def check_readings(claims_body: str, effects_body: str, folder: Path):
    claims = pd.read_csv(folder / "claims.csv")
    rows = markdown_rows(claims_body.split("\n\n", 2)[2])  # after the stamp and the dataset's title
    assert [row[-1] for row in rows] == list(claims["verdict"])
    for row, (_, source) in zip(rows, claims.iterrows()):
        assert close(numbers(row[1])[0], source["paper"], 2) and close(numbers(row[2])[0], source["highest"], 2)
        assert numbers(row[3]) == [source["readings_reaching"], source["readings_within_tolerance"], source["readings"]]
    effects = pd.read_csv(folder / "main_effects.csv")
    rows = markdown_rows(effects_body.split("\n\n", 2)[2])
    assert [(row[0], row[1]) for row in rows] == list(zip(effects["factor"], effects["value"]))
    for row, (_, source) in zip(rows, effects.iterrows()):
        if not source["reference"]:
            assert close(numbers(row[3])[0], source["effect_pp"], 2)


def check_readings_replication(body: str, path: Path):
    table = pd.read_csv(path)
    rows = markdown_rows(body.split("\n\n", 2)[2])  # after the stamp and the dataset's title
    assert [row[0] for row in rows] == list(table["claim"])
    # the replication verdict, then the verdict over every reading (empty where the claim is not the hybrid's)
    assert [row[-2] for row in rows] == list(table["verdict"])
    assert [row[-1] for row in rows] == [v if isinstance(v, str) else "" for v in table["readings_verdict"]]
    hybrid = table["readings_verdict"].notna()
    assert hybrid.sum() == 3 and all(table.loc[hybrid, "claim"].str.startswith("Hybrid"))


def check_study(body: str, folder: Path):
    summary = pd.read_csv(folder / "summary.csv")
    tuned, chosen, *paired = body.split("\n**")
    header = next(line for line in tuned.splitlines() if line.startswith("|"))
    models = [cell.strip().removeprefix("tuned ") for cell in header.strip("|").split(" | ")[2:]]
    rows = markdown_rows(tuned)
    assert [row[0] for row in rows] == list(dict.fromkeys(summary["system"]))
    for row in rows:
        for model, cell in zip(models, row[2:]):
            found = summary[(summary["system"] == row[0]) & (summary["model"] == model)]
            if found.empty:
                assert cell == "not planned"
                continue
            r = found.iloc[0]
            shown = numbers(cell)
            expected = [r["test_mean"], *([] if pd.isna(r["test_low"]) else [r["test_low"], r["test_high"]])]
            expected.append(r["cv_mean"])
            if r["n_trained"] != r["n_seeds"]:  # "k of n runs train" where some stuck
                expected += [r["n_trained"], r["n_seeds"]]
            assert all(close(a, b, 1) for a, b in zip(shown, expected)), cell
            assert len(shown) == len(expected), cell
    chosen_rows = markdown_rows(chosen)
    assert [(row[0], row[1], row[2]) for row in chosen_rows] == list(
        zip(summary["system"], summary["model"], summary["configuration"])
    )
    comparisons = pd.read_csv(folder / "comparisons.csv")
    ran = comparisons[comparisons["n_seeds"] > 0]
    paired_rows = markdown_rows(paired[0]) if paired else []
    assert len(paired_rows) == len(ran)
    for row, r in zip(paired_rows, ran.itertuples(index=False)):
        assert row[1] == f"{r.model} vs {r.against}" and row[-1] == r.verdict and int(row[2]) == r.n_seeds
        assert close(numbers(row[3])[0], r.mean_difference, 1)
        assert (float(row[4]), float(row[5])) == (float(f"{r.p:.2g}"), float(f"{r.p_holm:.2g}"))


def check_system_costs(body: str, folder: Path):
    rows = markdown_rows(body)
    systems = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert [row[0] for row in rows[:-1]] == [docs.SYSTEM_SOURCES.get(s, s) for s in systems]
    runs = pd.read_csv(folder.parent / "runs.csv")
    for row, system in zip(rows, systems):
        jobs, wall, cpu = benchmark_sums([folder / system])
        assert int(row[1]) == jobs and int(row[2]) == len(list((folder / system).glob("system_run_*.tsv")))
        assert close(numbers(row[3])[0], wall, 0) and close(numbers(row[4])[0], cpu, 0)
        # training and shots: each run's clock once, though runs.csv repeats it on every evaluation set's row
        seen = set()
        fit = shots = 0.0
        for r in runs[runs["system"] == system].itertuples(index=False):
            if (r.setting, r.seed) not in seen:
                seen.add((r.setting, r.seed))
                fit, shots = fit + r.fit_seconds, shots + r.shots_seconds
        assert close(numbers(row[6])[0], fit, 0) and close(numbers(row[7])[0], shots, 0)
    top = [pd.read_csv(p, sep="\t").iloc[-1] for p in folder.glob("*.tsv")]  # the jobs of no one system
    assert int(rows[-1][1]) == len(top) and close(numbers(rows[-1][4])[0], sum(f["cpu_time"] for f in top), 0)
    assert sum(int(row[1]) for row in rows) == benchmark_sums([folder])[0]


def check_stage_costs(body: str, results: Path):
    total = markdown_rows(body)[-1]
    assert total[0] == "all"
    for offset, dataset in enumerate(("mnist", "fashion_mnist")):
        jobs, wall, cpu = benchmark_sums([results / f"{dataset}/benchmarks", results / "benchmarks"], LATER)
        if offset == 0:  # the jobs column counts the first dataset's
            assert int(total[1]) == jobs
        assert close(float(total[2 + 2 * offset]), wall, 1) and close(float(total[3 + 2 * offset]), cpu, 1)
