"""The workflow used from another workflow (docs/module.md): deployed with snakedeploy from a fresh clone, imported
as a Snakemake `module` with prefixed rules and only config/ci.yaml's values, run to the end in a folder outside the
checkout, its results byte-identical to the direct run of the same config (`ci_run`, same machine); a rule
overridden with `use rule ... with:`; and planning (`snakemake -n`) from another folder with only the stated
parse-time packages importable.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from snakemake.utils import update_config

from conftest import ROOT, SNAKEMAKE
from qtlmnist.config import with_defaults
from tools.imports import DISTRIBUTIONS
from tools.repro import hash_table, result_hashes

SNAKEDEPLOY = str(Path(sys.executable).with_name("snakedeploy"))
# What planning the workflow imports besides the standard library (docs/module.md and the catalog file say so).
PARSE_TIME = ("snakemake", "numpy", "PyYAML", "jsonschema")
# The override a user appends to the deployed Snakefile: one rule under a new name, with its own output, log,
# benchmark and a changed parameter.
OVERRIDE = """

use rule plot_confusion from qtl as qtl_my_confusion with:
    output:
        "results/{dataset}/mine/confusion_{model}_{cm_split}.png",
    log:
        "results/{dataset}/mine/logs/my_confusion_{model}_{cm_split}.log",
    benchmark:
        "results/{dataset}/mine/benchmarks/my_confusion_{model}_{cm_split}.tsv"
    params:
        class_names=[f"class {i}" for i in range(10)],
        dataset_title="My MNIST",
"""
SAME_NAME_OVERRIDE = """

use rule plot_confusion from qtl as qtl_plot_confusion with:
    params:
        class_names=[f"class {i}" for i in range(10)],
        dataset_title="My MNIST",
"""


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=1800, check=False
    )


def must(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        pytest.fail(f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


# --- the defaults: the shipped config/config.yaml under whatever the workflow is given -------------------------


def test_with_defaults_merges_as_snakemake_merges_a_configfile():
    defaults = {"a": 1, "quantum": {"shots": 1024, "shards": 4}, "units": [256, 128, 64], "deep": {"x": {"y": 1}}}
    given = {"quantum": {"shots": 128}, "units": [64], "deep": {"x": {"z": 2}}, "new": {"k": None}}
    reference = copy.deepcopy(defaults)
    update_config(reference, copy.deepcopy(given))  # Snakemake's own merge of --configfile over configfile:
    before = copy.deepcopy((defaults, given))
    merged = with_defaults(given, defaults)
    assert merged == reference
    assert merged == {
        "a": 1,
        "quantum": {"shots": 128, "shards": 4},
        "units": [64],  # a list is replaced whole, never merged item by item
        "deep": {"x": {"y": 1, "z": 2}},
        "new": {"k": None},
    }
    assert (defaults, given) == before  # neither argument changed
    merged["quantum"]["shards"] = 99
    assert defaults["quantum"]["shards"] == 4  # and the result shares nothing with them


# --- planning: another folder, only the parse-time packages ---------------------------------------------------


def import_names(distribution: str) -> set[str]:
    """Top-level modules a distribution provides (tools.imports.DISTRIBUTIONS read backwards)."""
    named = {module for module, dists in DISTRIBUTIONS.items() if distribution in dists}
    return named or {distribution.replace("-", "_").lower()}


def blocked_modules() -> set[str]:
    """Every module the package's dependencies provide, but for the parse-time ones."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {Requirement(line).name for line in project["dependencies"]}
    assert set(PARSE_TIME) <= names, "a parse-time package is not a dependency in pyproject.toml"
    return set().union(*(import_names(name) for name in names - set(PARSE_TIME)))


@pytest.fixture
def parse_time_env(tmp_path) -> dict:
    """An environment in which importing any dependency but the parse-time ones fails (a sitecustomize hook)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import sys\n"
        f"BLOCKED = {sorted(blocked_modules())!r}\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is not a parse-time package')\n"
        "sys.meta_path.insert(0, Refuse())\n"
    )
    import os

    return {**os.environ, "PYTHONPATH": str(hook)}


def test_the_parse_time_hook_refuses_the_heavy_packages(parse_time_env):
    assert {"tensorflow", "qiskit", "qiskit_aer", "pandas", "matplotlib", "scipy", "keras"} <= blocked_modules()
    for module, importable in (("pandas", False), ("qiskit", False), ("numpy", True), ("jsonschema", True)):
        result = subprocess.run([sys.executable, "-c", f"import {module}"], env=parse_time_env, capture_output=True)
        assert (result.returncode == 0) == importable, module


@pytest.mark.parametrize("config_args", [[], ["--configfile", str(ROOT / "config/ci.yaml")]], ids=["defaults", "ci"])
def test_dry_run_from_another_folder_needs_only_the_parse_time_packages(parse_time_env, tmp_path, config_args):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = must(
        snakemake(
            elsewhere,
            "-s",
            str(ROOT / "Snakefile"),
            "-n",
            "--cores",
            "2",
            "all",
            "experiments",
            "systems",
            "readings",
            *config_args,
            env=parse_time_env,
        ),
        "snakemake -n from another folder",
    )
    for rule in (
        "train_autoencoder",
        "quantum_features",
        "experiment_run",
        "system_run",
        "systems_table",
        "reading_run",
    ):
        assert re.search(rf"^{rule}\s+\d+", result.stdout, re.MULTILINE), rule
    assert not (elsewhere / "results").exists()  # a dry run writes nothing, and nothing would go to the checkout


def test_docs_and_catalog_state_the_parse_time_packages():
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    assert catalog["usage"]["software-stack-deployment"]["conda"] is True
    stated = (ROOT / "docs/module.md").read_text() + yaml.safe_dump(catalog)
    for package in PARSE_TIME:
        assert package in stated, package


# --- the module, deployed and run ------------------------------------------------------------------------------


def fresh_clone(dest: Path) -> Path:
    """`git clone` of this checkout (tracked files only: no .venv, no results/), with the working tree's uncommitted
    changes and new files laid over it, so it runs the same code as `ci_run`'s copy."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    changed = subprocess.run(
        ["git", "ls-files", "--modified", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in changed:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def deployed(ci_run, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """(clone, deployment, deploy result): snakedeploy's deployment of a fresh clone, run on config/ci.yaml's
    values alone (the deployment's config/config.yaml), with the rules prefixed qtl_*."""
    base = tmp_path_factory.mktemp("module")
    clone = fresh_clone(base / "clone")
    deployment = base / "deployment"
    deploy = must(
        subprocess.run(
            [SNAKEDEPLOY, "deploy-workflow", str(clone), str(deployment), "--name", "qtl", "--branch", "main"],
            capture_output=True,
            text=True,
            check=False,
        ),
        "snakedeploy deploy-workflow",
    )
    snakefile = deployment / "workflow/Snakefile"
    text = snakefile.read_text()
    # snakedeploy's local provider names the module by its path inside the repository; from GitHub it would write
    # github("OWNER/REPO", path="workflow/Snakefile", tag=...). Point it at the clone, and prefix the rules.
    text = text.replace('"workflow/Snakefile"', f'"{clone}/workflow/Snakefile"')
    text = text.replace("use rule * from qtl\n", "use rule * from qtl as qtl_*\n")
    snakefile.write_text(text + OVERRIDE)
    # The user's config holds only what it changes (config/ci.yaml's keys); the workflow fills the rest from its own
    # config/config.yaml. Its one addition: the raw files from the folder ci_run fetched them to (md5-verified
    # again on the way in), through the workflow's own `local_dir` source rather than a second download.
    config = yaml.safe_load((clone / "config/ci.yaml").read_text())
    config["data"] = {"mnist": {"local_dir": str(ci_run / "results/mnist/raw")}}
    (deployment / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    must(snakemake(deployment, "--cores", "2"), "the deployed module on config/ci.yaml")
    return clone, deployment, deploy


@pytest.mark.ci_copy
@pytest.mark.integration
def test_snakedeploy_writes_the_module_and_copies_config_and_profiles(deployed):
    clone, deployment, deploy = deployed
    text = (deployment / "workflow/Snakefile").read_text()
    assert 'configfile: "config/config.yaml"' in text
    assert re.search(r"module qtl:\s+snakefile:\s+\"" + re.escape(str(clone)) + r"/workflow/Snakefile\"", text)
    assert re.search(r"config:\s+config", text)
    for name in ("profiles/slurm/config.yaml", "config/ci.yaml", "config/README.md", "LICENSE"):
        assert (deployment / name).read_bytes() == (clone / name).read_bytes(), name
    assert "Snakefile path not found" not in deploy.stdout + deploy.stderr  # it found workflow/Snakefile


@pytest.mark.ci_copy
@pytest.mark.integration
def test_module_results_land_in_the_callers_folder_byte_identical_to_a_direct_run(deployed, ci_run):
    clone, deployment, _ = deployed
    module = result_hashes(deployment / "results")
    module = {path: digest for path, digest in module.items() if not path.startswith("mnist/mine/")}
    direct = result_hashes(ci_run / "results")
    # ci_run may hold more targets by now (other tests run them there); compare what the default target made
    lines, differences = hash_table(module, {path: direct.get(path, "missing") for path in module})
    assert differences == 0, "\n".join(lines)
    assert len(module) >= 40 and "mnist/replication.csv" in module and "figures/quantum_circuit.png" in module
    # nothing written beside the code: the clone's results/ holds only its tracked README
    assert [p.name for p in (clone / "results").iterdir()] == ["README.md"] and not (clone / ".snakemake").exists()


@pytest.mark.ci_copy
@pytest.mark.integration
def test_module_rules_carry_the_prefix(deployed):
    _, deployment, _ = deployed
    first = sorted((deployment / ".snakemake/log").glob("*.snakemake.log"))[0]  # the full run (names sort by time)
    ran = set(re.findall(r"^(?:local)?rule (\w+):", first.read_text(), re.MULTILINE))
    assert {"qtl_train_autoencoder", "qtl_quantum_features", "qtl_train_classifier", "qtl_all"} <= ran
    assert all(name.startswith("qtl_") for name in ran), ran


@pytest.mark.ci_copy
@pytest.mark.integration
def test_use_rule_with_overrides_output_log_and_params(deployed):
    _, deployment, _ = deployed
    original = deployment / "results/mnist/figures/confusion_hybrid_test.png"
    before = original.stat().st_mtime_ns
    target = "results/mnist/mine/confusion_hybrid_test.png"
    must(snakemake(deployment, "--cores", "1", target), "the overridden rule")
    mine = deployment / target
    assert mine.stat().st_size > 0
    assert mine.read_bytes() != original.read_bytes()  # other title and class names: another figure
    assert (deployment / "results/mnist/mine/logs/my_confusion_hybrid_test.log").exists()
    assert (deployment / "results/mnist/mine/benchmarks/my_confusion_hybrid_test.tsv").exists()
    assert original.stat().st_mtime_ns == before  # the module's own rule did not run again
    # the same override under the module's own name replaces that rule: its jobs are planned again, nothing else
    deployed_snakefile = (deployment / "workflow/Snakefile").read_text().replace(OVERRIDE, "")
    (deployment / "override.smk").write_text(deployed_snakefile + SAME_NAME_OVERRIDE)
    plan = must(
        snakemake(
            deployment, "-n", "-s", "override.smk", "--cores", "1", "--rerun-triggers", "params", "--quiet", "rules"
        ),
        "planning with a same-name override",
    )
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout + plan.stderr, re.MULTILINE))
    # (and the target's provenance file, which vouches for the figures it covers)
    assert counts.pop("qtl_plot_confusion") == "4"
    assert set(counts) <= {"qtl_all", "qtl_provenance_replication", "total"}, plan.stdout


def report_calls(text: str) -> list[str]:
    """The text of every report(...) call in a rules file, its parentheses balanced."""
    calls = []
    for match in re.finditer(r"\breport\(", text):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        calls.append(text[match.start() : end + 1])
    return calls


def test_every_report_item_carries_labels():
    calls = [call for path in (ROOT / "workflow/rules").glob("*.smk") for call in report_calls(path.read_text())]
    assert len(calls) >= 10
    unlabelled = [call.splitlines()[1].strip() for call in calls if "labels=" not in call]
    assert not unlabelled, unlabelled


@pytest.mark.ci_copy
@pytest.mark.integration
def test_report_of_the_module_opens_on_the_landing_page_with_labelled_items(deployed):
    _, deployment, _ = deployed
    must(snakemake(deployment, "--report", "report.html"), "the module's report")
    html = (deployment / "report.html").read_text()
    assert "Sarkar 2024, replicated on MNIST" in html  # the generated landing page, found from the caller's folder
    for labels in ('"model": "hybrid"', '"split": "test"', '"figure": "feature circuit"'):
        assert labels in html, labels
