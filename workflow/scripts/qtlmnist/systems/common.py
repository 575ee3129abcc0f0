"""What every trainable system provides, and the small types they exchange (no TensorFlow, no Qiskit here).

A system module (`qtlmnist.systems.<name>`, its file name is the system's name) implements:

  SYSTEM                 its registry entry, a `System` (seed document or citation, title, the files it
                         reads, its cross-key check). The registry (`qtlmnist.systems`) finds every module of
                         the package that assigns SYSTEM at top level and imports it while the Snakefile is
                         parsed, so a system module imports nothing heavy at top level (Qiskit, TensorFlow and
                         Keras inside the functions that need them; tested)

  CLASS_NAMES            class index -> name, e.g. ("0", "1"); a task that uses some of them names its own
                         (`Task.classes`)
  CLAIMS                 tuple of `Claim`: what its source claims, and which run measures it
  LOSS                   a Keras loss name for `build`'s output against `targets(labels)`
  load_task(inputs, values, seed) -> Task
                         its data: `inputs` maps the registry's input names to files, `values` are the
                         setting's merged config values, `seed` the run's seed (for drawn subsets). For a
                         setting with model "sarkar" (only a system that registers `model_inputs["sarkar"]`):
                         the circuit-count features of the same images, with a `val` evaluation set that the
                         classifier's learning-rate schedule watches (`training.run_sarkar`)
  circuit(values) -> Circuit
                         its ONE parameterised circuit: drawn, run on Aer with shots and trained (engine)
  build(keras, values, seed, circuit) -> keras.Model   (one output column per class, or one for two classes)
                         values["model"] == "quantum": a model holding exactly one engine.CircuitLayer built
                         from `circuit` (the object `circuit(values)` returned, which the driver then sends to
                         Aer), optionally followed by training.PrecisionNoise; "control" (circuit None): the
                         classical control of the same inputs and budget
  targets(labels) -> array   what the loss compares the output with
  decide(outputs) -> array   predicted class index per row (-1 = no decision, counted wrong)

The shared training loop, the shot-based evaluation and the run driver are in `training`; the claims table
and figures in `report`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from ..data import DATASETS, SPLITS

# The documents this project was created from (shared/seeds/<file>, described in shared/seeds/README.md; not
# part of a clone): the seed documents a system may name. A system from elsewhere names "none" and a citation.
SEED_DOCUMENTS = MappingProxyType(
    {
        "000": "000_c19375c5ca6bfa55.txt",
        "001": "001_4a0738b341655e62.txt",
        "002": "002_1d185a870a7f18ab.txt",
        "003": "003_154766b4a02526c1.txt",
        "004": "004_40a2c1dfc54fc4c0.txt",
    }
)


FLOAT_TYPES = ("float64", "float32")


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
    """One system's registry entry, declared by its module as `SYSTEM = System(...)`.

    name: config section `systems.<name>`, results folder, wildcard value; the registry fills it (and
        `module`) from the module's file name.
    seed_document: the id of the seed document it comes from (SEED_DOCUMENTS), or "none" with a `citation`.
    citation: where it comes from (a URL or reference); required with seed_document "none".
    inputs: input name -> file the run job reads (the keys the module's load_task expects).
    check: cross-key checks of one setting's merged values: one line per problem, naming the key and what is
        allowed (the schema checks each key alone).
    model_inputs: model -> the files its runs read instead of `inputs` (e.g. "sarkar": the circuit counts).
    pairs: each quantum setting and its control, compared run by run in the claims table (declared here, not in
        the module's heavy part, so the config check sees them at parse time).
    floatx: the dtype of its classical layers (the circuit is always simulated in complex128): float64 by
        default, so that a seed trains in a vectorised group as it would alone to 1e-9 and chaotic trainings
        depend less on the CPU's code path; float32 for a system whose run is bound by classical compute that
        float64 makes slow (002's CNN: its convolutions cost about twice as much per step in float64 on CPU).
    """

    seed_document: str
    title: str
    inputs: Mapping[str, str]
    check: Callable[[dict], list[str]] | None = field(default=None, compare=False)
    model_inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pairs: tuple[Pair, ...] = ()
    citation: str = ""
    floatx: str = "float64"
    name: str = ""
    module: str = ""

    def __post_init__(self):
        if self.floatx not in FLOAT_TYPES:
            raise ValueError(f"floatx = {self.floatx!r}: a system's classical layers compute in one of {FLOAT_TYPES}")
        if self.seed_document == "none":
            if not self.citation:
                raise ValueError("seed_document 'none' needs a citation (a URL or reference to the source)")
        elif self.seed_document not in SEED_DOCUMENTS:
            raise ValueError(
                f"seed_document = {self.seed_document!r} is not a known seed document (known: "
                f"{', '.join(SEED_DOCUMENTS)}, SEED_DOCUMENTS in qtlmnist/systems/common.py); a system from "
                "elsewhere sets seed_document='none' and citation='<URL or reference>'"
            )


# --- the files a system may read (the workflow makes them) ---------------------------------------------------


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


def unknown_classes(dataset: str, classes: list[str] | None) -> list[str]:
    """The names in `classes` (None: all) that are not class names of the dataset (for a system's check)."""
    return [name for name in classes or () if name not in DATASETS[dataset].class_names]


# The evaluation statistics a claim can be measured by.
STATISTICS = ("final", "best_epoch", "weight_change")
# How a claim's value is compared with the measured interval over seeds (see `Claim`).
COMPARISONS = ("equal", "above", "above_chance")


@dataclass(frozen=True)
class Circuit:
    """A system's circuit with its parameters split into per-sample inputs and trained weights.

    output: "expectations" of `observables` (SparsePauliOps), or "probabilities" of the 2**n outcomes.
    encoding: where the data enters, as spans (start, stop) of `circuit.data` (instruction indices, stop
        excluded), one span per upload of the data, in circuit order: every instruction with an input parameter
        lies in one, no instruction with a weight does. The rest is the trainable (variational) part, whose
        multi-qubit gates `separable.separable` removes; None = not declared (that function then refuses).
    """

    circuit: object  # qiskit QuantumCircuit
    inputs: tuple
    weights: tuple
    output: str = "expectations"
    observables: tuple = ()
    encoding: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self):
        if self.output not in ("expectations", "probabilities"):
            raise ValueError(f"output must be 'expectations' or 'probabilities', got {self.output!r}")
        if self.output == "expectations" and not self.observables:
            raise ValueError("output 'expectations' needs observables")
        if self.encoding is not None:
            spans = [tuple(span) for span in self.encoding]
            ends = [bound for span in spans for bound in span]
            if any(len(span) != 2 or span[0] >= span[1] for span in spans) or ends != sorted(ends) or ends[:1] < [0]:
                raise ValueError(f"encoding must be ordered, disjoint, non-empty spans (start, stop), got {spans}")
            if ends and ends[-1] > (size := len(self.circuit.data)):
                raise ValueError(f"encoding span {spans[-1]} ends past the circuit's {size} instructions")
            object.__setattr__(self, "encoding", tuple(spans))


@dataclass(frozen=True)
class Task:
    """Training data and the named evaluation sets (features, class indices). `train` is also evaluated.

    classes: the names of class indices 0..k-1 when the task uses some of the system's classes (e.g. 4 of
    Fashion-MNIST's 10, remapped to 0..3); None: the system's CLASS_NAMES.
    """

    train: tuple[np.ndarray, np.ndarray]
    evaluation: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None

    def sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {"train": self.train, **self.evaluation}

    def class_names(self, system) -> tuple[str, ...]:
        return tuple(system.CLASS_NAMES if self.classes is None else self.classes)


@dataclass(frozen=True)
class Claim:
    """One row of the claims table.

    claimed: the source's number in percent; None for a control row (a reference without a claim), and for
        compare "above_chance" (the table fills in the chance level).
    setting, eval_set: the run (over every configured seed) and evaluation set that measure it.
    statistic: "final" (accuracy after the last epoch), "best_epoch" (the best per-epoch accuracy, as a source
        that reports its best epoch on the test set did) or "weight_change" (how far training moved the weights
        of the layers whose names start with `part`: the L2 norm of the change in percent of the initial
        weights' L2 norm; eval_set "train").
    compare: "equal" (the source states this number: is it inside the interval over seeds?), "above" (the
        source says the value exceeds `claimed`, e.g. a weight change above 0: "weights are trained"), or
        "above_chance" (the source says the model learns to classify: is its accuracy above chance, the share
        of the set's most frequent class?).
    source_n: how many images the source measured `claimed` on, where known (None: unknown). The claim then
        carries its own sampling error, a 95% Wilson interval around `claimed` at that n, which the verdict
        compares with ours (a claim on 20 images is a multiple of 5% known to about +-15 points).
    """

    claim: str
    source: str
    claimed: float | None
    setting: str
    eval_set: str
    statistic: str = "final"
    compare: str = "equal"
    part: str = ""
    source_n: int | None = None

    def __post_init__(self):
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS}, got {self.statistic!r}")
        if self.compare not in COMPARISONS:
            raise ValueError(f"compare must be one of {COMPARISONS}, got {self.compare!r}")
        if (self.statistic == "weight_change") != bool(self.part):
            raise ValueError("a weight_change claim names the layers it measures (part), and only it does")
        if self.compare == "above_chance" and self.claimed is not None:
            raise ValueError("an above_chance claim has no claimed value (the table fills in chance)")
        if self.compare == "above" and self.claimed is None:
            raise ValueError("an 'above' claim needs the value it claims to exceed (claimed)")
        if self.source_n is not None and (self.compare != "equal" or self.claimed is None or self.source_n < 1):
            raise ValueError("source_n (>= 1 images) belongs to a claimed value compared 'equal'")


def confusion(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> list[list[int]]:
    """counts[true][predicted]; a prediction of -1 (no decision) is counted in no column."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    decided = predicted >= 0
    np.add.at(counts, (labels[decided].astype(int), predicted[decided].astype(int)), 1)
    return counts.tolist()


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def mnist_raw(inputs) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (test images, labels)) from the four raw MNIST files named in `inputs` (the
    registry's MNIST_RAW names), each checked against the official md5 first."""
    return dataset_raw(inputs, "mnist")


def dataset_raw(inputs, dataset: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """As `mnist_raw`, for any dataset of `qtlmnist.data.DATASETS` (the registry's `raw_files(dataset)`)."""
    from pathlib import Path

    from ..data import load_raw

    raw = load_raw({Path(path).name: path for path in dict(inputs).values()}, dataset=dataset)
    return (
        (raw["train-images-idx3-ubyte"], raw["train-labels-idx1-ubyte"]),
        (raw["t10k-images-idx3-ubyte"], raw["t10k-labels-idx1-ubyte"]),
    )
