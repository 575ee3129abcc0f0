"""What the rules ask a scheduler for, per attempt: the declaration on the first submission, twice it on the
retry that profiles/slurm allows (a job killed for its time limit or memory), and the plan Snakemake makes of it."""

from __future__ import annotations

import copy
import math
import re
import subprocess

import pytest
import yaml
from snakemake.utils import update_config

from conftest import ROOT, SNAKEMAKE
from qtlmnist import resources

DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())
CI = yaml.safe_load((ROOT / "config/ci.yaml").read_text())


def ci_config() -> dict:
    config = copy.deepcopy(DEFAULT)
    update_config(config, copy.deepcopy(CI))  # as Snakemake merges --configfile config/ci.yaml
    return config


@pytest.mark.parametrize("rule", ["train_autoencoder", "quantum_features", "plot", "system_run"])
def test_each_attempt_asks_for_the_declaration_times_the_attempt(rule):
    declared = resources.declared(rule, ci_config())
    scaled = resources.by_attempt(declared)
    assert set(scaled) == {"mem_mb", "runtime"}
    for attempt in (1, 2, 3):
        assert scaled["mem_mb"](None, attempt) == declared["mem_mb"] * attempt
        assert scaled["runtime"](None, attempt) == declared["runtime"] * attempt


def test_slurm_profile_retries_once_and_shows_failed_logs():
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["retries"] == 1 and profile["show-failed-logs"] is True
    makefile = (ROOT / "Makefile").read_text()
    for target in ("replicate", "experiments", "systems"):
        recipe = re.search(rf"^{target}: .*\n\t(.*)\n", makefile, re.MULTILINE).group(1)
        assert "--show-failed-logs" in recipe, target


def test_the_plan_asks_for_the_first_attempts_resources(tmp_path):
    """A dry run from another folder on config/ci.yaml: each job's mem_mb and runtime are its rule's declaration
    under that config (attempt 1)."""
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-n", "--cores", "2", "--configfile", str(ROOT / "config/ci.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    planned = {
        rule: (int(mem), int(runtime))
        for rule, runtime, mem in re.findall(
            r"^rule (\w+):\n(?:    .*\n)*?    resources: .*?runtime=(\d+), mem_mb=(\d+)", result.stdout, re.MULTILINE
        )
    }
    config = ci_config()
    for rule, model in (("train_autoencoder", "train_autoencoder"), ("quantum_features", "quantum_features")):
        declared = resources.declared(model, config)
        assert planned[rule] == (declared["mem_mb"], declared["runtime"]), rule
    assert planned["train_autoencoder"] != planned["quantum_features"]  # the pattern did not read one job twice


def write_retry_snakefile(folder, check: str) -> None:
    """A one-rule Snakefile whose job asks for resources.by_attempt({"mem_mb": 700, "runtime": 3}) and runs
    `check > asked.txt` (a shell test that fails as if the job were killed at its limit)."""
    (folder / "Snakefile").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'workflow/scripts')!r})\n"
        "from qtlmnist import resources\n\n"
        "rule job:\n"
        "    output: 'asked.txt'\n"
        "    resources: **resources.by_attempt({'mem_mb': 700, 'runtime': 3})\n"
        f"    shell: '{check} > {{output}}'\n"
    )


def test_a_failed_job_is_retried_asking_for_twice_as_much(tmp_path):
    """Snakemake itself (local executor, --retries 1, as profiles/slurm sets it) re-evaluates the callables on the
    second attempt: a job that fails while it has its first attempt's runtime succeeds with twice it."""
    # fails as if killed at its limit while it asks for the declaration; the retry finds twice as much
    write_retry_snakefile(tmp_path, "test {resources.runtime} -gt 3 && echo {resources.mem_mb} {resources.runtime}")
    result = subprocess.run(
        [SNAKEMAKE, "--cores", "1", "--retries", "1"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "asked.txt").read_text().split() == ["1400", "6"]
    assert "Trying to restart job" in result.stderr  # the first attempt did fail
    no_retry = subprocess.run(
        [SNAKEMAKE, "--cores", "1", "--forceall"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert no_retry.returncode != 0  # without the retry, the declaration alone is not enough here


def test_a_set_resources_override_keeps_the_doubling_only_as_an_expression_of_attempt(tmp_path):
    """docs/cluster.md: a runtime set with `--set-resources` replaces the rule's callable; written as an expression
    of `attempt` it still doubles on the retry, written as a plain number it asks for the same again."""
    # fails as if killed at its limit unless it is granted more than 5 minutes
    write_retry_snakefile(tmp_path, "test {resources.runtime} -gt 5 && echo {resources.runtime}")

    def run(runtime: str) -> subprocess.CompletedProcess:
        # --set-resources last: it takes every following word as a setting
        flags = ["--cores", "1", "--retries", "1", "--forceall"]
        command = [SNAKEMAKE, *flags, "--set-resources", f"job:runtime={runtime}"]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)

    scaled = run("4*attempt")
    assert scaled.returncode == 0, scaled.stderr[-3000:]
    assert (tmp_path / "asked.txt").read_text().split() == ["8"]  # attempt 2: 4 x 2, not the rule's 3 x 2
    assert run("4").returncode != 0  # a plain number: 4 minutes on both attempts


def test_a_system_run_costs_its_measured_job_scaled_by_members_and_images_x_epochs():
    """Each measured (system, model): its setting runs that model; the job as measured costs the measured
    seconds; half the members at a third of the work cost the start plus a sixth of the rest (by hand)."""
    from qtlmnist.systems import setting_values

    assert resources.SYSTEM_RUNS, "no measured system_run costs"
    start = resources.JOB_START_S
    for (system, model), measured in resources.SYSTEM_RUNS.items():
        values = setting_values(DEFAULT, system, measured.setting)
        assert values["model"] == model, (system, measured.setting)
        # the values it was measured at: images x epochs = work (004 has no train_images: its work is its epochs)
        as_measured = values | ({"train_images": measured.work, "epochs": 1} if "train_images" in values else {})
        assert resources.work(as_measured) == measured.work
        assert resources.system_run_seconds(system, as_measured, measured.members) == pytest.approx(measured.seconds)
        key = "train_images" if "train_images" in values else "epochs"
        smaller = as_measured | {key: as_measured[key] / 3}
        expected = start + (measured.seconds - start) / 6
        assert resources.system_run_seconds(system, smaller, measured.members / 2) == pytest.approx(expected)
        declared = resources.system_run_declared(system, as_measured, measured.members)
        assert declared["runtime"] == math.ceil(resources.RUNTIME_HEADROOM * measured.seconds / 60 + 10)
        assert declared["mem_mb"] >= resources.MEMORY_HEADROOM * measured.peak_mb


def test_an_unmeasured_system_gets_the_flat_figure_per_seed():
    values = {"model": "quantum", "epochs": 3, "train_images": 100}
    assert resources.system_run_seconds("not_measured", values, 4) == 4 * resources.MEASURED["system_run"].seconds
