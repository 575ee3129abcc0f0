"""Beyond the paper: what does the circuit add? Feature variants of the same images, each classified by the
same classifier with the same budget, over seeds, shot counts, device noise and classical controls.

A *variant* names one feature set of every image (train/val/test), computed from the main pipeline's
autoencoder latents and circuit inputs:
  latent64              the 64-d latents (the classical baseline)
  pca5                  the 5 scaled PCA inputs of the circuit, fed directly (no circuit)
  exact                 the circuit's exact 32 outcome probabilities (infinite shots)
  random32              a classical random Fourier map of the same 5 inputs to 32 dims
  aer{S}_seed{K}        Aer counts with S shots, shot seed K (aer1024 = the paper's hybrid)
  noisy_seed{K}         Aer counts under the noise model of a fake 5-qubit IBM device
  first_seed{K}         Aer counts on the first 5 latent dimensions (reduction `first`)
  chunks_seed{K}        Aer counts on all 64 dims, 5 per circuit (reduction `chunks`, 416 features)
A *run* is (variant, seed): train/val re-split of the 60k training images and classifier seed both = seed.
The autoencoder is trained once (seed in config), so seeds measure the classifier, split and shot noise.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import quantum
from .data import SPLITS, stratified_split

VARIANT = re.compile(
    r"^(?P<plain>latent64|pca5|exact|random32)$"
    r"|^aer(?P<shots>\d+)_seed(?P<aer_seed>\d+)$"
    r"|^noisy_seed(?P<noise_seed>\d+)$"
    r"|^(?P<reduction>first|chunks)_seed(?P<reduction_seed>\d+)$"
)
def random_features(x: np.ndarray, seed: int, width: int = 32) -> np.ndarray:
    """cos(x W + b) with W ~ N(0, pi^2) and b ~ U(0, 2 pi), fixed by seed: a classical 5 -> 32 feature map."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, np.pi, (x.shape[1], width))
    offsets = rng.uniform(0.0, 2 * np.pi, width)
    return np.cos(x @ weights + offsets)


def variant_features(
    variant: str,
    latents: dict[str, np.ndarray],
    inputs: dict[str, np.ndarray],
    shots: int,
    noise_backend: str,
    random_seed: int,
    n_qubits: int,
    threads: int,
) -> dict[str, np.ndarray]:
    """Features of every split for one variant (see the module docstring)."""
    match = VARIANT.match(variant)
    if match is None:
        raise ValueError(f"unknown experiment variant '{variant}'")
    g = match.groupdict()
    if g["plain"] == "latent64":
        return dict(latents)
    flat = {split: inputs[split].reshape(len(inputs[split]), -1) for split in SPLITS}
    if g["plain"] == "pca5":
        return flat
    if g["plain"] == "exact":
        return {split: quantum.exact_probabilities(flat[split]) for split in SPLITS}
    if g["plain"] == "random32":
        return {split: random_features(flat[split], random_seed) for split in SPLITS}
    if g["reduction"]:
        reduction = quantum.fit_reduction(latents["train"], g["reduction"], n_qubits)
        circuit_inputs = {split: quantum.apply_reduction(latents[split], reduction, n_qubits) for split in SPLITS}
        seed, noise, shots_here = int(g["reduction_seed"]), None, shots
    else:
        circuit_inputs = inputs
        noisy = g["noise_seed"] is not None
        seed = int(g["noise_seed"] if noisy else g["aer_seed"])
        noise = noise_backend if noisy else None
        shots_here = shots if noisy else int(g["shots"])
    return {
        split: quantum.circuit_features(
            circuit_inputs[split],
            shots_here,
            quantum.split_seed(seed, split),
            threads=threads,
            noise_backend=noise,
        )
        for split in SPLITS
    }


def resplit(train, val, val_fraction: float, seed: int):
    """Pool train and val and split them again (stratified) with `seed`: ((x, y) train, (x, y) val)."""
    x = np.concatenate([train[0], val[0]])
    y = np.concatenate([train[1], val[1]])
    kept, held = stratified_split(y, val_fraction, seed)
    return (x[kept], y[kept]), (x[held], y[held])


def plan(seeds: list[int], shots_list: list[int], shots: int) -> dict[str, list[tuple[str, int]]]:
    """The runs (variant, seed) each experiment needs; runs shared between experiments are trained once."""
    first = seeds[0]
    hybrid = f"aer{shots}_seed{first}"
    return {
        "seeds": [(v, s) for s in seeds for v in ("latent64", f"aer{shots}_seed{s}")],
        "shots": [(f"aer{n}_seed{first}", first) for n in shots_list] + [("exact", first)],
        "noise": [(hybrid, first), (f"noisy_seed{first}", first)],
        "controls": [
            (hybrid, first),
            ("pca5", first),
            ("exact", first),
            ("random32", first),
            ("latent64", first),
            (f"first_seed{first}", first),
            (f"chunks_seed{first}", first),
        ],
    }


def all_runs(seeds: list[int], shots_list: list[int], shots: int) -> list[tuple[str, int]]:
    runs = [run for group in plan(seeds, shots_list, shots).values() for run in group]
    return list(dict.fromkeys(runs))


# --- summaries -------------------------------------------------------------------------------------------


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) of a Student-t interval for the mean; low = high = mean for one value."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, 0.0, mean, mean
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * std / np.sqrt(len(values)))
    return mean, std, mean - half, mean + half


def wilson_interval(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson interval of a proportion measured on n test images (the test set's own sampling error)."""
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


CONTROL_LABELS = {
    "aer": "hybrid: circuit counts (Aer, {shots} shots)",
    "pca5": "the circuit's 5 inputs, no circuit",
    "exact": "circuit, exact probabilities (no shot noise)",
    "random32": "classical random features of the 5 inputs (32)",
    "latent64": "64-d latents (classical baseline)",
    "first": "circuit counts on the first 5 latent dims",
    "chunks": "circuit counts on all 64 dims (13 circuits, 416)",
    "noisy": "circuit counts under fake-device noise",
}


def label(variant: str) -> str:
    """Plain-words description of a variant, for tables and figures."""
    prefix = re.match(r"[a-z]+", variant).group(0)
    text = CONTROL_LABELS.get(variant) or CONTROL_LABELS.get(prefix, variant)
    shots = re.match(r"aer(\d+)", variant)
    return text.format(shots=shots.group(1)) if shots else text


def tables(runs: dict[tuple[str, int], dict], seeds: list[int], shots_list: list[int], shots: int) -> dict[str, pd.DataFrame]:
    """The experiments' CSV tables from the runs' metrics (keyed by (variant, seed))."""
    p = plan(seeds, shots_list, shots)
    rows = []
    for variant, seed in p["seeds"]:
        m = runs[(variant, seed)]
        model = "baseline" if variant == "latent64" else "hybrid"
        rows.append({"model": model, "seed": seed, **{k: m[k] for k in ("train_accuracy", "val_accuracy", "test_accuracy")}})
    seed_runs = pd.DataFrame(rows)
    summary = []
    for model, group in seed_runs.groupby("model", sort=False):
        for metric in ("train_accuracy", "val_accuracy", "test_accuracy"):
            mean, std, low, high = t_interval(group[metric].to_numpy())
            low, high = max(low, 0.0), min(high, 1.0)  # an accuracy lies in [0, 1]
            summary.append({"model": model, "metric": metric, "n_seeds": len(group), "mean": mean, "std": std, "ci95_low": low, "ci95_high": high})

    def single(variant, seed, **extra):
        m = runs[(variant, seed)]
        low, high = wilson_interval(m["test_accuracy"], m["test_n"])
        return {**extra, "variant": variant, "n_features": m["n_features"], "test_accuracy": m["test_accuracy"], "ci95_low": low, "ci95_high": high}

    shots_rows = [
        single(v, s, shots=("exact" if v == "exact" else int(re.match(r"aer(\d+)", v).group(1)))) for v, s in p["shots"]
    ]
    noise_rows = [single(v, s, setting="noiseless" if v.startswith("aer") else "device noise") for v, s in p["noise"]]
    control_rows = [single(v, s, control=label(v)) for v, s in p["controls"]]
    return {
        "seeds": seed_runs,
        "seeds_summary": pd.DataFrame(summary),
        "shots": pd.DataFrame(shots_rows),
        "noise": pd.DataFrame(noise_rows),
        "controls": pd.DataFrame(control_rows),
    }


def seed_intervals(summary: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float, float, int]]:
    """{(model, metric): (mean, low, high, n)} for the replication table's interval column."""
    return {
        (r.model, r.metric): (r.mean, r.ci95_low, r.ci95_high, r.n_seeds) for r in summary.itertuples(index=False)
    }
