"""requirements.lock as the one place for versions: its markers per platform, the generated conda envs, the
platform table and pyproject's dependencies against what the code imports. No network: `make check-platforms`
and `make lock` are the parts that ask PyPI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import imports
from tools import lockfile as L

ROOT = Path(__file__).resolve().parents[1]
LOCK = L.parse_lock((ROOT / "requirements.lock").read_text())
PYPROJECT = (ROOT / "pyproject.toml").read_text()
PACKAGE = ROOT / "workflow/scripts/qtlmnist"


def pins(*lines: str) -> list[Requirement]:
    return [Requirement(line) for line in lines]


# --- the lock and its markers -------------------------------------------------------------------------------------


def test_parse_lock_accepts_exact_pins_with_markers_and_rejects_anything_looser():
    parsed = L.parse_lock('# header\n\nnumpy==2.4.6\ncolorama==0.4.6 ; sys_platform == "win32"\n')
    assert [(p.name, L.version(p), str(p.marker or "")) for p in parsed] == [
        ("numpy", "2.4.6", ""),
        ("colorama", "0.4.6", 'sys_platform == "win32"'),
    ]
    for bad in ("numpy>=2\n", "numpy\n", "numpy==2,<3\n", "pkg[extra]==1\n", "numpy==2\nnumpy==2\n"):
        with pytest.raises(ValueError):
            L.parse_lock(bad)


@pytest.mark.parametrize(
    "platform, tensorflow",
    [
        ("linux-x86_64", "tensorflow-cpu"),
        ("windows-x86_64", "tensorflow-cpu"),
        ("macos-arm64", "tensorflow"),
        ("linux-aarch64", "tensorflow"),
    ],
)
def test_each_platform_installs_exactly_the_tensorflow_that_has_a_wheel_there(platform, tensorflow):
    chosen = L.pins_for(LOCK, L.PLATFORM[platform])
    assert [name for name in L.TENSORFLOW_MARKERS if name in chosen] == [tensorflow]
    # both builds at one version, so every platform runs the same TensorFlow
    assert len({L.version(p) for p in LOCK if canonicalize_name(p.name) in L.TENSORFLOW_MARKERS}) == 1


def test_pins_for_refuses_a_lock_that_installs_both_tensorflows():
    both = pins("tensorflow_cpu==2.21.0", 'tensorflow==2.21.0 ; sys_platform == "linux"')
    with pytest.raises(ValueError, match="both"):
        L.pins_for(both, L.PLATFORM["linux-x86_64"])
    assert "tensorflow" not in L.pins_for(both, L.PLATFORM["windows-x86_64"])


def test_linux_x86_64_installs_every_unmarked_line_and_tensorflow_cpu():
    """The marker lines change nothing on the machine the lock is made on: all plain lines, plus tensorflow_cpu."""
    linux = L.pins_for(LOCK, L.PLATFORM["linux-x86_64"])
    plain = {canonicalize_name(p.name) for p in LOCK if p.marker is None}
    assert set(linux) == plain | {"tensorflow-cpu"}


def test_the_committed_lock_is_in_the_generated_form():
    """Sorted, with the header and the TensorFlow rule: what `make lock` writes, so a hand edit shows."""
    assert L.render_lock(LOCK) == (ROOT / "requirements.lock").read_text()
    assert L.render_lock(reversed(LOCK)) == L.render_lock(LOCK)


def test_apply_tensorflow_rule_turns_the_frozen_tensorflow_into_both_marked_lines():
    rendered = L.render_lock(L.apply_tensorflow_rule(pins("tensorflow_cpu==2.21.0", "numpy==2.4.6")))
    body = [line for line in rendered.splitlines() if not line.startswith("#")]
    assert body == [
        "numpy==2.4.6",
        f"tensorflow==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow']}",
        f"tensorflow_cpu==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow-cpu']}",
    ]
    with pytest.raises(ValueError):
        L.apply_tensorflow_rule(pins("numpy==2.4.6"))


def test_make_lock_keeps_every_pin_unless_told_to_upgrade():
    old = pins("numpy==2.4.6", "NumPy-Financial==1.0", 'colorama==0.4.6 ; sys_platform == "win32"')
    assert L.kept_pins(old, None) == old  # plain `make lock`: an update tool, not an upgrade
    assert L.kept_pins(old, []) == []  # LOCK_FLAGS=--upgrade
    assert [p.name for p in L.kept_pins(old, ["numpy_financial", "colorama"])] == ["numpy"]
    parse = L.command_line().parse_args
    assert parse(["lock"]).upgrade is None
    assert parse(["lock", "--upgrade"]).upgrade == []
    assert parse(["lock", "--upgrade", "numpy", "scipy"]).upgrade == ["numpy", "scipy"]


@pytest.mark.parametrize("machine", ["x86_64", "AMD64", "arm64", "aarch64", "ppc64le"])
def test_the_two_tensorflow_markers_are_complements(machine):
    results = [Marker(m).evaluate({"platform_machine": machine}) for m in L.TENSORFLOW_MARKERS.values()]
    assert sorted(results) == [False, True]


def test_pyproject_tensorflow_markers_are_the_lock_rule():
    found = {canonicalize_name(r.name): r.marker for r in L.direct_dependencies(PYPROJECT, extras=())}
    for name, marker in L.TENSORFLOW_MARKERS.items():
        assert found[name] == Marker(marker)


# --- closures -----------------------------------------------------------------------------------------------------


REQUIRES = {
    "app": ["lib>=1", 'colorama; sys_platform == "win32"', "extra-only; extra == 'fast'"],
    "lib": ["base<2"],
    "base": [],
    "colorama": [],
}


def test_closure_follows_markers_per_platform_and_extras():
    linux = L.closure(pins("app"), REQUIRES, L.PLATFORM["linux-x86_64"].environment)
    windows = L.closure(pins("app"), REQUIRES, L.PLATFORM["windows-x86_64"].environment)
    assert set(linux) == {"app", "lib", "base"}
    assert set(windows) == {"app", "lib", "base", "colorama"}
    assert "extra-only" in L.closure(pins("app[fast]"), REQUIRES, L.PLATFORM["linux-x86_64"].environment)


def test_lock_problems_names_unpinned_and_excluded_versions():
    needed = L.closure(pins("app"), REQUIRES, L.PLATFORM["windows-x86_64"].environment)
    lock = {canonicalize_name(p.name): p for p in pins("app==1", "lib==1.5", "base==2.0")}
    problems = L.lock_problems(needed, lock)
    assert any(p.startswith("colorama is needed") for p in problems)
    assert "base==2.0 does not satisfy base<2" in problems
    assert (
        L.lock_problems(needed, {**lock, "base": Requirement("base==1.9"), "colorama": Requirement("colorama==1")})
        == []
    )


# --- conda envs ---------------------------------------------------------------------------------------------------


def test_committed_envs_are_what_make_envs_writes_now():
    """Hand edits to envs/ fail here; regenerate with `make envs` (or `make lock`)."""
    generated = L.render_envs(LOCK, L.installed_requires(LOCK))
    for file_name, text in generated.items():
        assert (ROOT / "envs" / file_name).read_text() == text, f"envs/{file_name} is stale: run `make envs`"
    assert sorted(p.name for p in (ROOT / "envs").glob("*.yaml")) == sorted(generated)


def test_every_env_pin_is_a_valid_requirement_equal_to_the_lock():
    for path in sorted((ROOT / "envs").glob("*.yaml")):
        assert L.env_pin_problems(path.read_text(), LOCK) == [], path.name


def test_env_pin_problems_catches_a_wrong_version_an_unknown_pin_and_a_bare_name():
    lock = pins("numpy==2.4.6", f"tensorflow_cpu==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow-cpu']}")
    env = yaml.safe_dump(
        {"dependencies": ["python=3.11", {"pip": ["numpy==2.4.5", "tensorflow-cpu==", "notlocked==1"]}]}
    )
    problems = L.env_pin_problems(env, lock)
    assert len(problems) == 3
    assert "differs from the lock's 2.4.6" in problems[0]
    assert "not a requirement" in problems[1] or "not an exact pin" in problems[1]
    assert "no lock line" in problems[2]


def test_render_env_pins_the_closure_with_markers_in_valid_yaml():
    lock = pins(
        "keras==3.15.1",
        "h5py==3.14.0",
        "numpy==2.4.6",
        f"tensorflow_cpu==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow-cpu']}",
        f"tensorflow==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow']}",
    )
    requires = {"tensorflow-cpu": ["keras>=3"], "tensorflow": ["keras>=3"], "keras": ["h5py", "numpy"]}
    spec = L.EnvSpec("test", ("tensorflow-cpu", "tensorflow"), conda=("nodejs=20",))
    text = L.render_env("tf", spec, L.env_pins(spec, lock, requires))
    assert "generated from requirements.lock by `make envs`; do not edit" in text.lower()
    parsed = yaml.safe_load(text)
    assert parsed["dependencies"][:3] == ["python=3.11", "pip", "nodejs=20"]
    assert parsed["dependencies"][3]["pip"] == [
        "h5py==3.14.0",
        "keras==3.15.1",
        "numpy==2.4.6",
        f"tensorflow==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow']}",
        f"tensorflow_cpu==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow-cpu']}",
    ]
    assert L.env_pin_problems(text, lock) == []
    with pytest.raises(ValueError, match="not pinned"):  # a dependency missing from the lock stops the generator
        L.env_pins(spec, [p for p in lock if p.name != "h5py"], requires)


# --- the platform table -------------------------------------------------------------------------------------------


def test_platform_table_reports_sdists_and_missing_wheels_and_fails_only_required_platforms():
    lock = pins(
        "numpy==2.4.6",
        "pylatexenc==2.10",
        f"tensorflow_cpu==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow-cpu']}",
        f"tensorflow==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow']}",
    )
    wheel, sdist = L.Probe("wheel"), L.Probe("sdist-pure")
    results = {
        "linux-x86_64": {"numpy": wheel, "pylatexenc": sdist, "tensorflow-cpu": wheel},
        "macos-arm64": {"numpy": wheel, "pylatexenc": sdist, "tensorflow": wheel},
        "macos-x86_64": {"numpy": wheel, "pylatexenc": sdist, "tensorflow-cpu": L.Probe("none")},
    }
    table = L.platform_table(lock, results, {"macos-arm64": ["colorama is needed (by x) but not pinned"]})
    assert "| `pylatexenc==2.10` | sdist only, builds anywhere | sdist only, builds anywhere | sdist only" in table
    assert "| `numpy==2.4.6` |" not in table  # a wheel everywhere: not listed
    assert f"| `tensorflow_cpu==2.21.0 ; {L.TENSORFLOW_MARKERS['tensorflow-cpu']}` | wheel | - | NO WHEEL |" in table
    assert "| macos-arm64 | yes | 3 | 2 | 1 | 0 | no, 1 (below) |" in table
    assert "- macos-arm64: colorama is needed (by x) but not pinned" in table
    # Intel macOS is informational: its missing TensorFlow does not fail the check; the missing pin on arm64 does
    assert L.failures(results, {}) == []
    assert L.failures(results, {"macos-arm64": ["colorama is needed"]}) == ["macos-arm64: colorama is needed"]
    broken = {**results, "linux-x86_64": {**results["linux-x86_64"], "numpy": L.Probe("none")}}
    assert L.failures(broken, {}) == ["linux-x86_64: numpy NO WHEEL"]


# --- what the code imports ----------------------------------------------------------------------------------------


def coverage_problems(dependencies: list[Requirement], files: list[Path]) -> list[str]:
    """Third-party modules imported by `files` that no dependency provides, per required platform."""
    problems = []
    for platform in (p for p in L.PLATFORMS if p.required):
        provided = {canonicalize_name(r.name) for r in dependencies if L.applies(r, platform.environment)}
        for path in files:
            for module in sorted(imports.file_imports(path)):
                if not provided & {canonicalize_name(d) for d in imports.distributions(module)}:
                    problems.append(f"{platform.name}: {path.name} imports {module}")
    return problems


def test_pyproject_dependencies_cover_every_import_of_the_package_and_its_scripts():
    files = sorted((ROOT / "workflow/scripts").rglob("*.py"))
    assert coverage_problems(L.direct_dependencies(PYPROJECT, extras=()), files) == []


def test_dev_extra_covers_the_tools_and_tests():
    # tools/bench_systems.py runs in .venv-bench, which adds the bench extra (the seed code's libraries)
    bench = ROOT / "tools/bench_systems.py"
    files = [f for f in sorted((ROOT / "tools").glob("*.py")) + sorted((ROOT / "tests").glob("*.py")) if f != bench]
    assert coverage_problems(L.direct_dependencies(PYPROJECT), files) == []
    assert coverage_problems(L.direct_dependencies(PYPROJECT, extras=("dev", "bench")), [bench]) == []


def test_coverage_check_catches_a_missing_dependency():
    without = [r for r in L.direct_dependencies(PYPROJECT, extras=()) if r.name != "qiskit-ibm-runtime"]
    problems = coverage_problems(without, [PACKAGE / "quantum.py"])
    assert "linux-x86_64: quantum.py imports qiskit_ibm_runtime" in problems


def env_import_problems(envs: dict[str, L.EnvSpec]) -> list[str]:
    """Third-party modules a rule's script can import that its conda env does not install."""
    requires = L.installed_requires(LOCK)
    problems = []
    for rule, env_file, script in imports.rule_envs(ROOT / "workflow/rules"):
        wanted = {canonicalize_name(name) for name in envs[env_file.stem].packages}
        roots = [pin for pin in LOCK if canonicalize_name(pin.name) in wanted]  # with their markers
        for platform in map(L.PLATFORM.get, L.ENV_PLATFORMS):
            installed = set(L.closure(roots, requires, platform.environment))
            for module in sorted(imports.script_imports(script, PACKAGE)):
                if not installed & {canonicalize_name(d) for d in imports.distributions(module)}:
                    problems.append(f"{rule} ({env_file.name}, {platform.name}) imports {module}")
    return problems


def test_every_rule_env_installs_what_its_script_imports():
    assert env_import_problems(L.ENVS) == []


def test_env_import_check_catches_a_missing_package():
    broken = {**L.ENVS, "plotting": L.EnvSpec("no seaborn", ("numpy", "scipy", "pandas", "matplotlib"))}
    assert "plot_confusion (plotting.yaml, linux-x86_64) imports seaborn" in env_import_problems(broken)


def test_script_imports_follow_only_the_functions_a_script_reaches():
    # experiment_run (TensorFlow env) imports the experiments module, whose other functions use Qiskit and scipy
    reached = imports.script_imports(ROOT / "workflow/scripts/experiment_run.py", PACKAGE)
    assert {"tensorflow", "keras", "numpy", "pandas"} <= reached
    assert not reached & {"qiskit", "qiskit_aer", "scipy"}
    assert "scipy" in imports.script_imports(ROOT / "workflow/scripts/experiment_tables.py", PACKAGE)


def test_imports_resolve_relative_imports_in_subpackages(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "import numpy\n\ndef lazy():\n    import scipy\n\ndef unused():\n    import pandas\n"
    )
    (package / "sub" / "leaf.py").write_text(
        "from ..base import lazy, unused\nfrom . import other\n\ndef go():\n    lazy()\n"
    )
    (package / "sub" / "other.py").write_text("import yaml\n")
    script = tmp_path / "script.py"
    script.write_text("from pkg.sub import leaf\n\nleaf.go()\n")
    assert imports.file_imports(package / "sub" / "leaf.py") == set()  # relative: first-party, never 'base'
    # imported and called: scipy; imported but never called: not pandas
    assert imports.script_imports(script, package) == {"numpy", "scipy", "yaml"}
    # a registry that imports modules by computed names can load any module of its package
    (package / "sub" / "__init__.py").write_text(
        "import importlib\n\ndef load(n):\n    return importlib.import_module(n)\n"
    )
    (package / "sub" / "plugin.py").write_text("import seaborn\n")
    script.write_text("from pkg.sub import load\n\nload('x')\n")
    assert imports.script_imports(script, package) == {"numpy", "seaborn", "yaml"}


def test_every_conda_rule_uses_a_generated_env():
    used = {env.name for _, env, _ in imports.rule_envs(ROOT / "workflow/rules")}
    assert used == {f"{name}.yaml" for name in L.ENVS}


def test_ci_lint_job_takes_versions_from_the_lock():
    """No hand-typed versions in the GitHub workflow: the lock is the one place."""
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    commands = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert not [c for c in commands if "==" in c]


def test_side_locks_pin_none_of_the_main_locks_packages():
    # .venv-slurm and .venv-bench install a side lock in one resolve with requirements.lock: its pins must hold
    main = {canonicalize_name(pin.name) for pin in LOCK}
    for name in ("requirements-slurm.lock", "requirements-bench.lock"):
        side = {canonicalize_name(pin.name) for pin in L.parse_lock((ROOT / name).read_text())}
        assert side and not side & main, f"{name} pins {sorted(side & main)} again"
