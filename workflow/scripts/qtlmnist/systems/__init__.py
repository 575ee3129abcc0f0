"""The wing for trainable-circuit systems: one module per system, all standing on `engine` (a differentiable
statevector simulator that executes the same Qiskit circuit that is drawn and run on Aer), on `shots` (the
shot-based evaluation of that circuit on Aer) and on `training` (the shared training loop and evaluation).

This file is the registry: system name -> its module, seed document, title and the files it reads. The
Snakefile imports it at parse time to plan jobs and check the config, so it imports nothing heavy (no
TensorFlow, no Qiskit); rule scripts import a system's module with `load`.

Adding a system (see README, "Adding a trainable system"):
  1. `qtlmnist/systems/<name>.py` implementing the interface of `qtlmnist.systems.common` (CLASS_NAMES, CLAIMS,
     load_task, circuit, build, targets, decide, LOSS);
  2. a `systems.<name>` section in config/config.yaml (its hyperparameters and its named settings) and the
     same keys in workflow/schemas/config.schema.yaml;
  3. an entry in SYSTEMS below, and the name in `systems.run`.

A setting may name its own `seeds` (else `systems.seeds`): they plan its runs and are not one of its values.
A setting with model "sarkar" is this project's own hybrid on the system's task (the Sarkar pipeline's
circuit-count features, classified by the `classifier` section's network): its run reads the files of the
system's `model_inputs["sarkar"]` and, besides its setting's values, the `classifier` section, the validation
fraction and the shots of those features.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..data import DATASETS, SPLITS

# The models a system may offer; a setting picks one with its `model` key (its schema lists those it offers).
# quantum: the system's circuit model; control: its classical control; sarkar: this project's hybrid on the
# same task (training.run_sarkar).
MODELS = ("quantum", "control", "sarkar")
# How a setting name is spelt (it becomes a folder name and a wildcard value).
SETTING_PATTERN = r"[a-z][a-z0-9_]*"


def raw_files(dataset: str) -> Mapping[str, str]:
    """The four raw idx files of a dataset of `qtlmnist.data.DATASETS` as the workflow's fetch_data writes them
    (results/<dataset>/raw/<file>), named train_images, train_labels, test_images, test_labels."""
    names = {}
    for file in DATASETS[dataset].files:  # e.g. t10k-images-idx3-ubyte -> test_images
        split, kind = file.split("-")[:2]
        names[f"{'test' if split == 't10k' else split}_{kind}"] = f"results/{dataset}/raw/{file}"
    return MappingProxyType(names)


MNIST_RAW = raw_files("mnist")
FASHION_MNIST_RAW = raw_files("fashion_mnist")
# MNIST's digits 0 and 1: how many images of them each raw file holds (fixed by the files' md5, tested).
MNIST_01_TRAIN = 12665
MNIST_01_TEST = 2115
# The main workflow's Fashion-MNIST outputs, by split: the autoencoder's 64-d latents, and the Sarkar
# pipeline's circuit-count features of the same images (requesting them runs that pipeline up to there).
FASHION_LATENTS = MappingProxyType(
    {split: f"results/fashion_mnist/autoencoder/latents_{split}.npz" for split in SPLITS}
)
FASHION_COUNTS = MappingProxyType({split: f"results/fashion_mnist/quantum/{split}.npz" for split in SPLITS})
# Images per class (label 0..9) in each dataset's training and test file (fixed by the files' md5, tested).
CLASS_COUNTS = MappingProxyType(
    {
        "mnist": {
            "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
            "test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
        },
        "fashion_mnist": {"train": (6000,) * 10, "test": (1000,) * 10},
    }
)


@dataclass(frozen=True)
class Pair:
    """A quantum setting and its classical control of the same inputs and budget, compared run by run: the
    same seeds, the same images of `eval_set` (per-image predictions, McNemar per seed; per-seed accuracy
    differences across seeds; see `qtlmnist.systems.report.comparisons_table`)."""

    quantum: str
    control: str
    eval_set: str = "test"


@dataclass(frozen=True)
class System:
    """One registered system."""

    name: str  # config section `systems.<name>`, results folder, wildcard value
    module: str  # module name in qtlmnist.systems
    seed_document: str  # the seed document it comes from (shared/seeds/<id>_*.txt)
    title: str  # as a person reads it
    inputs: Mapping[str, str]  # name -> file the run job reads (the keys the module's load_task expects)
    check: Callable[[dict], list[str]] | None = field(default=None, compare=False)  # cross-key checks of one
    # setting's merged values: one line per problem, naming the key and what is allowed
    model_inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # model -> the files its runs
    # read instead of `inputs` (e.g. "sarkar": the circuit-count features)
    pairs: tuple[Pair, ...] = ()  # quantum vs control comparisons; declared here so the config check sees them


def _check_paradoxical7(values: dict) -> list[str]:
    problems = []
    if values["data"] == "notebook":
        first = 2 * values["first_per_class"]
        if not 0 < values["train_images"] < first:
            problems.append(
                f"train_images = {values['train_images']}: with data 'notebook' the first {first} images "
                f"(first_per_class = {values['first_per_class']} of each digit) are split into train and test "
                f"(allowed: 1 to {first - 1})"
            )
    elif values["train_images"] > MNIST_01_TRAIN:
        problems.append(
            f"train_images = {values['train_images']}: the MNIST training file holds {MNIST_01_TRAIN} images of "
            f"digits 0 and 1 (allowed: <= {MNIST_01_TRAIN})"
        )
    return problems


def _check_quantum_mnist(values: dict) -> list[str]:
    if values["train_images"] > MNIST_01_TRAIN:
        return [
            (
                f"train_images = {values['train_images']}: the MNIST training file holds {MNIST_01_TRAIN} images "
                f"of digits 0 and 1 (allowed: <= {MNIST_01_TRAIN})"
            )
        ]
    return []


def _unknown_classes(dataset: str, classes: list[str] | None) -> list[str]:
    """The names in `classes` (None: all) that are not class names of the dataset."""
    return [name for name in classes or () if name not in DATASETS[dataset].class_names]


def _check_reuploading(values: dict) -> list[str]:
    classes, names = values["classes"], DATASETS["fashion_mnist"].class_names
    if unknown := _unknown_classes("fashion_mnist", classes):
        return [f"classes = {classes}: {unknown} not Fashion-MNIST class names (allowed: {', '.join(names)})"]
    return []


def _check_cnn_circuit(values: dict) -> list[str]:
    dataset, classes = values["dataset"], values["classes"]
    names = DATASETS[dataset].class_names
    if unknown := _unknown_classes(dataset, classes):
        return [f"classes = {classes}: {unknown} are not {dataset} class names (allowed: {', '.join(names)})"]
    labels = range(len(names)) if classes is None else [names.index(name) for name in classes]
    problems = []
    for key, split in (("train_images", "train"), ("test_images", "test")):
        available = sum(CLASS_COUNTS[dataset][split][label] for label in labels)
        if values[key] is not None and values[key] > available:
            problems.append(
                f"{key} = {values[key]}: the {dataset} {split} file holds {available} images of classes "
                f"{classes or 'all'} (allowed: <= {available}, or null for all)"
            )
    return problems


SYSTEMS: dict[str, System] = {
    system.name: system
    for system in (
        System(
            name="paradoxical7_qnn",
            module="paradoxical7_qnn",
            seed_document="001",
            title="Paradoxical7/QNN: 11-qubit, 24-parameter QNN, MNIST 0 vs 1",
            inputs=MNIST_RAW,
            check=_check_paradoxical7,
            # the control has more_data's images and budget; as_published and exact (80 images) have none
            pairs=(Pair("more_data", "control"),),
        ),
        System(
            name="quantum_mnist",
            module="quantum_mnist",
            seed_document="000",
            title="Quantum-MNIST: MLP encoder + ZZFeatureMap/RealAmplitudes sampler, MNIST 0 vs 1",
            inputs=MNIST_RAW,
            check=_check_quantum_mnist,
            pairs=(Pair("hybrid", "control"),),
        ),
        System(
            name="cnn_circuit",
            module="cnn_circuit",
            seed_document="002",
            title="zindaouinihed/Hybrid-Quantum-Classifier: CNN -> weightless 2-qubit circuit -> Linear(1, k)",
            # a setting reads one of the two datasets (its `dataset`); the names say which
            inputs=MappingProxyType(
                {f"{dataset}_{name}": path for dataset in DATASETS for name, path in raw_files(dataset).items()}
            ),
            check=_check_cnn_circuit,
            pairs=tuple(
                Pair(f"{task}_{variant}", f"{task}_control")
                for task, variants in (
                    ("mnist_3v5", ("as_shipped", "fixed", "fixed_lr1e_3")),
                    ("fashion_shirts", ("as_shipped", "fixed", "fixed_lr1e_3")),
                    ("mnist_all", ("as_shipped", "fixed")),
                    ("fashion_all", ("as_shipped", "fixed")),
                )
                for variant in variants
            ),
        ),
        System(
            name="reuploading",
            module="reuploading",
            seed_document="004",
            title="Re-uploading QNN: 6 qubits, loading + strongly entangling layers, Fashion-MNIST latents",
            inputs=FASHION_LATENTS,
            check=_check_reuploading,
            model_inputs=MappingProxyType({"sarkar": FASHION_COUNTS}),
            # longer_4 (3 epochs) has no control of its budget
            pairs=tuple(
                Pair(f"posted_{k}", f"{control}_{k}")
                for k in (4, 10)
                for control in ("control", "bottleneck", "sarkar")
            ),
        ),
    )
}


def get(name: str) -> System:
    try:
        return SYSTEMS[name]
    except KeyError:
        raise ValueError(f"unknown system {name!r} (registered: {', '.join(SYSTEMS)})") from None


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
    if values.get("model") == "sarkar":
        from ..classifier import HYPERPARAMETERS  # numpy and pandas: only when a sarkar setting is planned

        classifier = {key: config["classifier"][key] for key in HYPERPARAMETERS}
        shared = {"classifier": classifier, "val_fraction": config["preprocess"]["val_fraction"]}
        return values | shared | {"shots": config["quantum"]["shots"]}
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
