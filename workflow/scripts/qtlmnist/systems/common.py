"""What every trainable system provides, and the small types they exchange (no TensorFlow here).

A system module (`qtlmnist.systems.<name>`) implements:

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
  build(keras, values, seed, circuit) -> keras.Model
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

from dataclasses import dataclass, field

import numpy as np

# The evaluation statistics a claim can be measured by.
STATISTICS = ("final", "best_epoch", "weight_change")
# How a claim's value is compared with the measured interval over seeds (see `Claim`).
COMPARISONS = ("equal", "above", "above_chance")


@dataclass(frozen=True)
class Circuit:
    """A system's circuit with its parameters split into per-sample inputs and trained weights.

    output: "expectations" of `observables` (SparsePauliOps), or "probabilities" of the 2**n outcomes.
    """

    circuit: object  # qiskit QuantumCircuit
    inputs: tuple
    weights: tuple
    output: str = "expectations"
    observables: tuple = ()

    def __post_init__(self):
        if self.output not in ("expectations", "probabilities"):
            raise ValueError(f"output must be 'expectations' or 'probabilities', got {self.output!r}")
        if self.output == "expectations" and not self.observables:
            raise ValueError("output 'expectations' needs observables")


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
