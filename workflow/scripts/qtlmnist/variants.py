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

A *run* is (variant, seed): the train/val re-split and the classifier's initialisation both use the seed.

This module imports nothing heavy: the Snakefile reads it at parse time to plan jobs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# The grammar: each kind and the numbers its name carries, in the order they are written.
KINDS: dict[str, tuple[str, ...]] = {
    "latents": (),
    "inputs": (),
    "exact": (),
    "random": (),
    "aer": ("shots", "seed"),
    "noisy": ("seed",),
    "first": ("seed",),
    "chunks": ("seed",),
}
# Kinds whose features are Aer shot counts (they read the shot count and a shot seed).
COUNT_KINDS = ("aer", "noisy", "first", "chunks")


def _kind_pattern(kind: str, named: bool = True) -> str:
    fields = KINDS[kind]
    number = (lambda name: rf"(?P<{name}>\d+)") if named else (lambda name: r"\d+")
    shots = number("shots") if "shots" in fields else ""
    seed = "_seed" + number("seed") if "seed" in fields else ""
    return f"{kind}{shots}{seed}"


# A regular expression for every variant name (no named groups: it is also the Snakefile's wildcard constraint).
PATTERN = "|".join(f"(?:{_kind_pattern(kind, named=False)})" for kind in KINDS)
_MATCHERS = {kind: re.compile(f"^{_kind_pattern(kind)}$") for kind in KINDS}


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

    def __post_init__(self):
        needed = KINDS.get(self.kind)
        if needed is None:
            raise ValueError(f"unknown variant kind '{self.kind}' (allowed: {', '.join(KINDS)})")
        for field in ("shots", "seed"):
            if (getattr(self, field) is not None) != (field in needed):
                raise ValueError(f"variant kind '{self.kind}' takes {needed or 'no numbers'}, got {field}")

    @property
    def name(self) -> str:
        shots = "" if self.shots is None else str(self.shots)
        seed = "" if self.seed is None else f"_seed{self.seed}"
        return f"{self.kind}{shots}{seed}"

    @classmethod
    def parse(cls, name: str) -> Variant:
        for kind, matcher in _MATCHERS.items():
            match = matcher.match(name)
            if match:
                numbers = {key: int(value) for key, value in match.groupdict().items()}
                return cls(kind, **numbers)
        raise ValueError(f"unknown experiment variant '{name}' (names match: {PATTERN})")

    def n_features(self, dims: Dims) -> int:
        return {
            "latents": dims.latent_dim,
            "inputs": dims.n_qubits,
            "chunks": dims.chunk_circuits * dims.circuit_outcomes,
        }.get(self.kind, dims.circuit_outcomes)

    def label(self, dims: Dims) -> str:
        """Plain words for tables and figures, with the numbers taken from the config."""
        n, latent = dims.n_qubits, dims.latent_dim
        return {
            "latents": f"{latent}-d latents (classical baseline)",
            "inputs": f"the circuit's {n} inputs, no circuit",
            "exact": "circuit, exact probabilities (no shot noise)",
            "random": f"classical random features of the {n} inputs ({dims.circuit_outcomes})",
            "aer": f"hybrid: circuit counts (Aer, {self.shots} shots)",
            "noisy": "circuit counts under fake-device noise",
            "first": f"circuit counts on the first {n} latent dims",
            "chunks": f"circuit counts on all {latent} dims ({dims.chunk_circuits} circuits, {self.n_features(dims)})",
        }[self.kind]

    def settings(self, shots: int, noise_backend: str, random_seed: int, n_qubits: int) -> dict:
        """Exactly the config values this variant's features read (the rule's params: a change in any other key
        must not rerun it)."""
        if self.kind == "noisy":
            return {"shots": shots, "noise_backend": noise_backend}
        if self.kind in ("first", "chunks"):
            return {"shots": shots, "n_qubits": n_qubits}
        if self.kind == "random":
            return {"random_seed": random_seed, "width": 2**n_qubits}
        return {}  # latents, inputs, exact: nothing; aer: its shots and seed are in its name


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
        "controls": [
            (main, first),
            ("inputs", first),
            ("exact", first),
            ("random", first),
            ("latents", first),
            (Variant("first", seed=first).name, first),
            (Variant("chunks", seed=first).name, first),
        ],
    }


def all_runs(seeds: list[int], shots_list: list[int], shots: int) -> list[tuple[str, int]]:
    """Every run of `plan`, each once, in first-seen order."""
    runs = [run for group in plan(seeds, shots_list, shots).values() for run in group]
    return list(dict.fromkeys(runs))
