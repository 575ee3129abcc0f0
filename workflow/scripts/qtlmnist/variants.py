"""The experiments' feature variants: one grammar for their names, their plain-words labels and the plan of
runs each experiment needs.

A *variant* names one feature set of every image (train/val/test), made from the main pipeline's autoencoder
latents and circuit inputs:

  latents            the autoencoder's latents (the classical baseline)
  inputs             the circuit's scaled PCA inputs, fed directly (no circuit)
  exact              the circuit's exact outcome probabilities (infinite shots)
  random             a classical random Fourier map of the same inputs, as wide as the circuit's output
  aer{S}_seed{K}     Aer counts with S shots, shot seed K (aer1024_seed1 = the paper's hybrid)
  noisy_seed{K}      Aer counts under the noise model of a fake IBM device
  first_seed{K}      Aer counts on the first n_qubits latent dimensions (reduction `first`)
  chunks_seed{K}     Aer counts on all latent dimensions, n_qubits per circuit (reduction `chunks`)
  reading{I}_seed{K} Aer counts of reading I of the readings' design (qtlmnist.readings), shot seed K
  readinginputs{I}   reading I's n_qubits circuit inputs, no circuit (its classical control)

A *run* is (variant, seed): the train/val re-split and the classifier's initialisation both use the seed.
Each kind is one `Kind` entry of KINDS (its name's numbers, width, label, features, the config it reads, and
whether the controls experiment runs it): adding a feature set is adding an entry.

This module imports nothing heavy: the Snakefile reads it at parse time to plan jobs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass


def _kind_pattern(kind: str, named: bool = True) -> str:
    fields = KINDS[kind].fields
    number = (lambda name: rf"(?P<{name}>\d+)") if named else (lambda name: r"\d+")
    # the number right after the kind: a shot count or a reading's index (no kind has both)
    first = "".join(number(name) for name in ("shots", "index") if name in fields)
    seed = "_seed" + number("seed") if "seed" in fields else ""
    return f"{kind}{first}{seed}"


@dataclass(frozen=True)
class Dims:
    """The config numbers that labels and widths derive from."""

    latent_dim: int
    n_qubits: int

    @property
    def circuit_outcomes(self) -> int:
        return 2**self.n_qubits

    @property
    def chunk_circuits(self) -> int:
        return math.ceil(self.latent_dim / self.n_qubits)


@dataclass(frozen=True)
class Variant:
    kind: str
    shots: int | None = None
    seed: int | None = None
    index: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown variant kind '{self.kind}' (allowed: {', '.join(KINDS)})")
        needed = KINDS[self.kind].fields
        for field in ("shots", "index", "seed"):
            if (getattr(self, field) is not None) != (field in needed):
                raise ValueError(f"variant kind '{self.kind}' takes {needed or 'no numbers'}, got {field}")

    @property
    def name(self) -> str:
        first = "".join(str(number) for number in (self.shots, self.index) if number is not None)
        seed = "" if self.seed is None else f"_seed{self.seed}"
        return f"{self.kind}{first}{seed}"

    @classmethod
    def parse(cls, name: str) -> Variant:
        for kind, matcher in _MATCHERS.items():
            match = matcher.match(name)
            if match:
                numbers = {key: int(value) for key, value in match.groupdict().items()}
                return cls(kind, **numbers)
        raise ValueError(f"unknown experiment variant '{name}' (names match: {PATTERN})")

    def n_features(self, dims: Dims) -> int:
        return KINDS[self.kind].width(self, dims)

    def label(self, dims: Dims) -> str:
        """Plain words for tables and figures, with the numbers taken from the config."""
        return KINDS[self.kind].label(self, dims)

    def settings(self, config: dict) -> dict:
        """Exactly the config values this variant's features read (the rule's params: a change in any other key
        must not rerun it)."""
        return KINDS[self.kind].settings(self, config)

    def classifier(self, config: dict) -> dict:
        """What its runs change of the config's `classifier` section (e.g. a reading's widths); {}: nothing."""
        return KINDS[self.kind].classifier(self, config)

    def features(self, latents: dict, inputs: dict, settings: dict, threads: int) -> dict:
        """Features of every split (`settings`: what `settings(config)` gave); imports Qiskit where it counts."""
        # the builder by its name (Kind.features): code that only plans or labels variants (the classifier's
        # and the tables' jobs, whose envs have no Qiskit) then reaches no builder (tools/imports.py)
        return globals()[KINDS[self.kind].features](self, latents, inputs, settings, threads)


# --- the kinds: each feature set in one entry -------------------------------------------------------------


def _nothing(variant: Variant, config: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Kind:
    """One kind of feature set, all of it here: a new feature set for the classifier is one more entry of
    KINDS (and, if its features read config values, those keys in `experiments` of config/config.yaml and the
    schema). tests/test_experiments.py covers every entry (name grammar, width and label against the
    features it builds).

    fields: the numbers its name carries, in the order written ("shots" or "index", then "seed"; e.g.
        aer1024_seed1, reading3_seed1).
    width(variant, dims), label(variant, dims): features per image, and plain words for tables and figures.
    features: the name of this module's function (variant, latents, inputs, settings, threads) -> {split:
        (N, width) array}: from the main pipeline's autoencoder latents and circuit inputs of every split;
        imports what is heavy inside. A name, not the function: see Variant.features.
    settings(variant, config) -> the config values its features read, exactly (the rule's params).
    control: a row of the controls experiment, run with the first seed (and that seed in its name, if any).
    classifier(variant, config) -> the values of the config's `classifier` section its runs replace ({}: none).
    """

    fields: tuple[str, ...]
    width: Callable[[Variant, Dims], int]
    label: Callable[[Variant, Dims], str]
    features: str
    settings: Callable[[Variant, dict], dict] = _nothing
    control: bool = False
    classifier: Callable[[Variant, dict], dict] = _nothing


def _flat(inputs: dict) -> dict:
    return {split: inputs[split].reshape(len(inputs[split]), -1) for split in inputs}


def _inputs(variant, latents, inputs, settings, threads):
    return _flat(inputs)


def _latents(variant, latents, inputs, settings, threads):
    return dict(latents)


def _exact(variant, latents, inputs, settings, threads):
    from . import quantum

    return {split: quantum.exact_probabilities(x) for split, x in _flat(inputs).items()}


def _random(variant, latents, inputs, settings, threads):
    from .experiments import random_features

    return {split: random_features(x, settings["random_seed"], settings["width"]) for split, x in _flat(inputs).items()}


def _counts(variant, latents, inputs, settings, threads):
    """Aer counts of the paper's circuit: on the pipeline's inputs (aer, noisy) or on a reduction of the
    latents fitted on train (first, chunks); each split with its own seed range."""
    from . import quantum

    circuit_inputs, shots, noise = inputs, variant.shots, None
    if variant.kind in ("first", "chunks"):
        reduction = quantum.fit_reduction(latents["train"], variant.kind, settings["n_qubits"])
        circuit_inputs = {
            split: quantum.apply_reduction(x, reduction, settings["n_qubits"]) for split, x in latents.items()
        }
        shots = settings["shots"]
    elif variant.kind == "noisy":
        shots, noise = settings["shots"], settings["noise_backend"]
    return {
        split: quantum.circuit_features(
            x, shots, quantum.split_seed(variant.seed, split), threads=threads, noise_backend=noise
        )
        for split, x in circuit_inputs.items()
    }


def _reading(variant, latents, inputs, settings, threads):
    """Aer counts of one reading: its reduction of `latents` (for `bottleneck`, the codes), scaling, angle map and
    classifier input (qtlmnist.readings)."""
    from . import readings

    return readings.circuit_counts(latents, settings, variant.seed, threads)


def _reading_inputs(variant, latents, inputs, settings, threads):
    from . import readings

    return readings.circuit_inputs(latents, settings)


def _reading_settings(variant: Variant, config: dict) -> dict:
    from . import readings

    return readings.feature_settings(config, variant.index)


def _reading_input_settings(variant: Variant, config: dict) -> dict:
    from . import readings

    return readings.input_settings(config, variant.index)


def _reading_classifier(variant: Variant, config: dict) -> dict:
    from . import readings

    return readings.classifier_settings(config, variant.index)


def _outcomes(variant: Variant, dims: Dims) -> int:
    return dims.circuit_outcomes


def _shots_and(key: str, source: tuple[str, str]):
    """settings: the pipeline's shot count and one more config value."""

    def settings(variant: Variant, config: dict) -> dict:
        return {"shots": config["quantum"]["shots"], key: config[source[0]][source[1]]}

    return settings


# In this order the controls experiment lists its rows (after the paper's hybrid).
KINDS: dict[str, Kind] = {
    "inputs": Kind(
        (),
        lambda v, d: d.n_qubits,
        lambda v, d: f"the circuit's {d.n_qubits} inputs, no circuit",
        "_inputs",
        control=True,
    ),
    "exact": Kind((), _outcomes, lambda v, d: "circuit, exact probabilities (no shot noise)", "_exact", control=True),
    "random": Kind(
        (),
        _outcomes,
        lambda v, d: f"classical random features of the {d.n_qubits} inputs ({d.circuit_outcomes})",
        "_random",
        lambda v, config: {
            "random_seed": config["experiments"]["random_features_seed"],
            "width": 2 ** config["quantum"]["n_qubits"],
        },
        control=True,
    ),
    "latents": Kind(
        (),
        lambda v, d: d.latent_dim,
        lambda v, d: f"{d.latent_dim}-d latents (classical baseline)",
        "_latents",
        control=True,
    ),
    # aer1024_seed1 is the paper's hybrid; its shots and seed are in its name
    "aer": Kind(("shots", "seed"), _outcomes, lambda v, d: f"hybrid: circuit counts (Aer, {v.shots} shots)", "_counts"),
    "noisy": Kind(
        ("seed",),
        _outcomes,
        lambda v, d: "circuit counts under fake-device noise",
        "_counts",
        _shots_and("noise_backend", ("experiments", "noise_backend")),
    ),
    "first": Kind(
        ("seed",),
        _outcomes,
        lambda v, d: f"circuit counts on the first {d.n_qubits} latent dims",
        "_counts",
        _shots_and("n_qubits", ("quantum", "n_qubits")),
        control=True,
    ),
    "chunks": Kind(
        ("seed",),
        lambda v, d: d.chunk_circuits * d.circuit_outcomes,
        lambda v, d: f"circuit counts on all {d.latent_dim} dims ({d.chunk_circuits} circuits, {v.n_features(d)})",
        "_counts",
        _shots_and("n_qubits", ("quantum", "n_qubits")),
        control=True,
    ),
    # make readings (qtlmnist.readings): one reading of the paper's unstated choices, and its classical control
    "reading": Kind(
        ("index", "seed"),
        _outcomes,
        lambda v, d: f"hybrid: circuit counts of reading {v.index}",
        "_reading",
        _reading_settings,
        classifier=_reading_classifier,
    ),
    "readinginputs": Kind(
        ("index",),
        lambda v, d: d.n_qubits,
        lambda v, d: f"the {d.n_qubits} circuit inputs of reading {v.index}, no circuit",
        "_reading_inputs",
        _reading_input_settings,
        classifier=_reading_classifier,
    ),
}

# A regular expression for every variant name (no named groups: it is also the Snakefile's wildcard constraint).
PATTERN = "|".join(f"(?:{_kind_pattern(kind, named=False)})" for kind in KINDS)
_MATCHERS = {kind: re.compile(f"^{_kind_pattern(kind)}$") for kind in KINDS}


def hybrid(shots: int, seed: int) -> Variant:
    """The paper's hybrid: the circuit's Aer counts at the configured shots."""
    return Variant("aer", shots=shots, seed=seed)


def plan(seeds: list[int], shots_list: list[int], shots: int) -> dict[str, list[tuple[str, int]]]:
    """The runs (variant name, seed) each experiment needs; runs shared between experiments are trained once.

    The first seed also runs the sweeps (shots, noise, controls)."""
    first = seeds[0]
    main = hybrid(shots, first).name
    return {
        "seeds": [(v, s) for s in seeds for v in ("latents", hybrid(shots, s).name)],
        "shots": [(hybrid(n, first).name, first) for n in shots_list] + [("exact", first)],
        "noise": [(main, first), (Variant("noisy", seed=first).name, first)],
        "controls": [(main, first)]
        + [
            (Variant(kind, seed=first if "seed" in entry.fields else None).name, first)
            for kind, entry in KINDS.items()
            if entry.control
        ],
    }


def all_runs(seeds: list[int], shots_list: list[int], shots: int) -> list[tuple[str, int]]:
    """Every run of `plan`, each once, in first-seen order."""
    runs = [run for group in plan(seeds, shots_list, shots).values() for run in group]
    return list(dict.fromkeys(runs))
