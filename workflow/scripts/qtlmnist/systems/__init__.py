"""The wing for trainable-circuit systems: one module per system, all standing on `engine` (a differentiable
statevector simulator that executes the same Qiskit circuit that is drawn and run on Aer), on `shots` (the
shot-based evaluation of that circuit on Aer) and on `training` (the shared training loop and evaluation).

This file is the registry. A system is a module of this package that declares its entry at top level,
`SYSTEM = common.System(...)` (seed document or citation, title, the files it reads, its cross-key check); its
file name is its name. The Snakefile imports the registry at parse time to plan jobs and check the config, so
the registry and the system modules import nothing heavy at top level (no TensorFlow, no Qiskit; tested); rule
scripts import a system's module with `load`, which its functions then use.

Adding a system (docs/adding-a-system.md walks through one): the module `qtlmnist/systems/<name>.py`
implementing the interface of `qtlmnist.systems.common`; its section `systems.<name>` in config/config.yaml
(its values and named settings) and in config/ci.yaml (a CI-sized run), with the name in `systems.run`; and
its own keys in workflow/schemas/config.schema.yaml (the shared driver keys come from `$defs/system`).
tests/test_registered_systems.py then covers it (circuit vs Statevector, gradients vs parameter shift, model
and control, shots on Aer, claims).

A setting may name its own `seeds` (else `systems.seeds`): they plan its runs and are not one of its values.
A setting with model "sarkar" is this project's own hybrid on the system's task (the Sarkar pipeline's
circuit-count features, classified by the `classifier` section's network): its run reads the files of the
system's `model_inputs["sarkar"]` and, besides its setting's values, the `classifier` section, the validation
fraction and the shots of those features.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

from .common import (  # noqa: F401 (the files systems read, re-exported for the rules, tools and tests)
    CLASS_COUNTS,
    FASHION_COUNTS,
    FASHION_LATENTS,
    FASHION_MNIST_RAW,
    MNIST_01_TEST,
    MNIST_01_TRAIN,
    MNIST_RAW,
    Pair,
    System,
    raw_files,
)

# The models a system may offer; a setting picks one with its `model` key. quantum: the system's circuit
# model; control: its classical control; sarkar: this project's hybrid on the same task (training.run_sarkar),
# only for a system that registers `model_inputs["sarkar"]`.
MODELS = ("quantum", "control", "sarkar")
# How a setting name is spelt (it becomes a folder name and a wildcard value).
SETTING_PATTERN = r"[a-z][a-z0-9_]*"
# Where systems are found, and how a module says it is one (a top-level `SYSTEM =` or `SYSTEM: System =`).
PACKAGE_DIR = Path(__file__).resolve().parent
_DECLARES = re.compile(r"^SYSTEM\s*(:[^=]*)?=", re.MULTILINE)


def _discover() -> dict[str, System]:
    """Every module of this folder that declares SYSTEM, by file name (sorted): its entry, named."""
    found = {}
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        if path.stem.startswith("_") or not _DECLARES.search(path.read_text()):
            continue  # the wing's own modules (engine, shots, training ...) are read, never imported here
        if not re.fullmatch(SETTING_PATTERN, path.stem):
            raise ValueError(f"{path}: a system's file name is its name, spelt {SETTING_PATTERN}")
        entry = importlib.import_module(f"{__name__}.{path.stem}").SYSTEM
        if not isinstance(entry, System):
            raise TypeError(f"{path}: SYSTEM must be a qtlmnist.systems.common.System, got {type(entry).__name__}")
        found[path.stem] = dataclasses.replace(entry, name=path.stem, module=path.stem)
    return found


SYSTEMS: dict[str, System] = _discover()


def get(name: str) -> System:
    try:
        return SYSTEMS[name]
    except KeyError:
        raise ValueError(
            f"unknown system {name!r} (registered: {', '.join(SYSTEMS)}; a system is a module in "
            "workflow/scripts/qtlmnist/systems/ that declares SYSTEM, see docs/adding-a-system.md)"
        ) from None


def load(name: str):
    """The system's module (imports what it needs: Qiskit, and Keras when its model is built)."""
    return importlib.import_module(f"{__name__}.{get(name).module}")


# Keys of a system's section that are not values of its runs; `seeds` (a setting's own seeds, null: the shared
# `systems.seeds`) plans runs, so changing it must not rerun the runs it keeps.
SECTION_KEYS = ("settings", "run_settings")
PLAN_KEYS = ("seeds",)


def hyperparameters(section: dict) -> dict:
    """A system's config section without `settings` and `run_settings`: the defaults every setting starts from."""
    return {key: value for key, value in section.items() if key not in SECTION_KEYS}


def settings_to_run(section: dict) -> list[str]:
    """The section's `run_settings` (null: every setting it defines), in that order."""
    chosen = section.get("run_settings")
    return list(section["settings"]) if chosen is None else list(chosen)


def _merged(config: dict, system: str, setting: str) -> dict:
    """The section's defaults with the setting's overrides (plan keys included)."""
    section = config["systems"][system]
    if setting not in section["settings"]:
        raise ValueError(f"system {system!r} has no setting {setting!r} (configured: {', '.join(section['settings'])})")
    return hyperparameters(section) | dict(section["settings"][setting])


def setting_values(config: dict, system: str, setting: str) -> dict:
    """The values one run reads: the section's defaults, the setting's overrides, and the shared shot count.
    A "sarkar" setting also reads the `classifier` section's hyperparameters (its seed is the run's),
    `preprocess.val_fraction` and the shots its features were counted with (`quantum.shots`, not
    `systems.shots`)."""
    merged = _merged(config, system, setting)
    values = {key: value for key, value in merged.items() if key not in PLAN_KEYS}
    if values.get("group_size", 0) is None:
        # the default grouping (all seeds in one) is what every run did before the key existed: leaving it out of
        # the values keeps those runs' params, so they are not rerun; any other grouping is a value and reruns
        del values["group_size"]
    if values.get("model") == "sarkar":
        from ..classifier import HYPERPARAMETERS  # numpy and pandas: only when a sarkar setting is planned

        classifier = {key: config["classifier"][key] for key in HYPERPARAMETERS}
        shared = {"classifier": classifier, "val_fraction": config["preprocess"]["val_fraction"]}
        loop = config["systems"]["sarkar_loop"]  # the schema's default where a config leaves it out
        # the Keras loop is what every sarkar run did before the key existed: left out of the values, so those
        # runs' params stay and they are not rerun; grouped is a value and reruns
        return (
            values | shared | {"shots": config["quantum"]["shots"]} | ({"sarkar_loop": loop} if loop != "keras" else {})
        )
    return values | {"shots": config["systems"]["shots"]}


def setting_seeds(config: dict, system: str, setting: str) -> list[int]:
    """The setting's own `seeds` (from it or its section), else the shared `systems.seeds`."""
    seeds = _merged(config, system, setting).get("seeds")
    return list(config["systems"]["seeds"] if seeds is None else seeds)


def run_inputs(config: dict, system: str, setting: str) -> dict[str, str]:
    """The files one setting's runs read: the system's `model_inputs` for the setting's model, else `inputs`."""
    entry = get(system)
    model = _merged(config, system, setting).get("model")
    return dict(entry.model_inputs.get(model, entry.inputs))


def runs(config: dict) -> list[tuple[str, str, int]]:
    """Every (system, setting, seed) of the systems in `systems.run`, in config order."""
    return [
        (system, setting, seed)
        for system in config["systems"]["run"]
        for setting in settings_to_run(config["systems"][system])
        for seed in setting_seeds(config, system, setting)
    ]
