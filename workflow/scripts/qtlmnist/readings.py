"""Readings of Sarkar 2024: each choice the paper leaves open is a factor, each value one a careful reader could
pick; a reading is one value of every factor, and a strength-2 covering array of readings (qtlmnist.covering) is
run, each through the paper's circuit with 1024-shot Aer counts, next to a classical control on the same inputs.

The factors (why a reader would pick each value: config/config.yaml, `readings.factors`; the first value of each
here is our pipeline's, `OURS`):

  reduction  64 -> n_qubits: pca (top principal components of the train latents), first (the first n_qubits
             latent dims), bottleneck (the code of a 64 -> hidden -> n_qubits -> hidden -> 64 autoencoder trained
             on the train latents, rule readings_bottleneck), random (a Gaussian random projection, seeded)
  scaling    into [0, 1], fitted on train: minmax (train's min/max, val/test clipped), squash (standardise with
             train's mean/std, then the logistic function), rank (train's empirical quantile)
  angle      the Ry angle t of input x: arccos (t = 2 arccos x, the paper's section 3.4), pi (t = pi x),
             half_pi (t = pi x / 2), two_pi (t = 2 pi x: refused, its angles leave the circuit's domain)
  input      what the classifier reads of the counts: frequencies (through the classifier's Normalization
             layer), unnormalised (the same, no Normalization layer), log (log(f + 1 / (2 shots)), through
             Normalization: the half count keeps a zero count finite)
  width      the classifier's dense widths: ours (config `classifier.units`), narrower (halved), wider (doubled)
  augment    what the autoencoder trained on: on (train + its augmented copies), off (train only)

The circuit's domain. After Ry(t) and H a qubit reads 0 with probability (1 + sin t) / 2. The paper's map sends
its [0, 1] inputs to t in [0, pi]; our circuit code takes its angle as that map's input x' = cos(t / 2), one to
one on [0, pi] (`paper_inputs`), so a reading's angles must stay in [0, pi]. A map whose angles cross pi / 2
folds: two inputs on either side give one probability (arccos at x = 1/sqrt(2), pi at x = 1/2); half_pi
(t <= pi / 2) does not fold.

Light at import (no numpy): the Snakefile builds the design and checks the config at parse time.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

from .covering import covering_array, lower_bound, uncovered

# Every value the code knows, per factor, in the order tables list them; the first is our pipeline's reading.
FACTORS: dict[str, tuple[str, ...]] = {
    "reduction": ("pca", "first", "bottleneck", "random"),
    "scaling": ("minmax", "squash", "rank"),
    "angle": ("arccos", "pi", "half_pi", "two_pi"),
    "input": ("frequencies", "unnormalised", "log"),
    "width": ("ours", "narrower", "wider"),
    "augment": ("on", "off"),
}
OURS = {factor: values[0] for factor, values in FACTORS.items()}

# What each scaling's output can reach (closed interval; squash's open ends are inside it).
SCALING_RANGE = {"minmax": (0.0, 1.0), "squash": (0.0, 1.0), "rank": (0.0, 1.0)}
# Each angle map, t(x) for x in [0, 1]; all are monotone, so an input interval maps to its ends' angles.
ANGLE = {
    "arccos": lambda x: 2.0 * math.acos(x),
    "pi": lambda x: math.pi * x,
    "half_pi": lambda x: math.pi * x / 2.0,
    "two_pi": lambda x: 2.0 * math.pi * x,
}
DOMAIN = (0.0, math.pi)  # the angles the paper's map reaches on its [0, 1] inputs
WIDTH_FACTOR = {"ours": 1.0, "narrower": 0.5, "wider": 2.0}


def angle_range(scaling: str, angle: str) -> tuple[float, float]:
    low, high = SCALING_RANGE[scaling]
    ends = (ANGLE[angle](low), ANGLE[angle](high))
    return min(ends), max(ends)


def folds(scaling: str, angle: str) -> bool:
    """Whether the reading's angles cross pi / 2, where (1 + sin t) / 2 turns back."""
    low, high = angle_range(scaling, angle)
    return low < math.pi / 2 < high


def in_domain(scaling: str, angle: str) -> bool:
    low, high = angle_range(scaling, angle)
    return DOMAIN[0] - 1e-12 <= low and high <= DOMAIN[1] + 1e-12


# --- the design ----------------------------------------------------------------------------------------------


def levels(section: dict) -> dict[str, list[str]]:
    """The values each factor takes in the design, ours first (the main effects' reference): `vary` names the
    factors that vary and their values (the others stay at OURS); null = every factor, every value listed in
    `factors`."""
    vary = section.get("vary")
    given = {f: (vary[f] if f in vary else [OURS[f]]) if vary is not None else section["factors"][f] for f in FACTORS}
    return {f: [OURS[f], *(v for v in given[f] if v != OURS[f])] for f in FACTORS}


def parameters(levels_: dict[str, list]) -> int:
    """Coefficients of the additive model: an intercept and one per value that is not the factor's first."""
    return 1 + sum(len(values) - 1 for values in levels_.values())


def _augment_rows(rows: list[dict], levels_: dict[str, list], target: int) -> list[dict]:
    """`rows` plus rows of the full factorial, each the one that adds most information to the additive model
    (D-optimal: the largest x' (X'X + d I)^-1 x, the determinant's growth), until there are `target` rows or none
    is left. The fit of the main effects needs more rows than coefficients; the covering array alone may not."""
    import itertools

    import numpy as np

    factors = list(levels_)
    candidates = [dict(zip(factors, combo)) for combo in itertools.product(*(levels_[f] for f in factors))]
    candidates = [row for row in candidates if row not in rows]
    rows = list(rows)
    while len(rows) < target and candidates:
        x = dummies(rows, levels_)
        information = x.T @ x + 1e-6 * np.eye(x.shape[1])
        c = dummies(candidates, levels_)
        gain = np.einsum("ij,jk,ik->i", c, np.linalg.inv(information), c)
        # relative rounding: near-ties go to the first candidate on every machine, whatever its BLAS's last bits
        rows.append(candidates.pop(int(np.argmax(np.round(gain / gain.max(), 6)))))
    return rows


def dummies(rows: list[dict], levels_: dict[str, list]):
    """The additive model's design matrix: a column of ones, then per factor one 0/1 column for each value
    but its first (the reference: our reading's value, which `levels` puts first)."""
    import numpy as np

    columns = [np.ones(len(rows))]
    for factor, values in levels_.items():
        for value in values[1:]:
            columns.append(np.array([row[factor] == value for row in rows], dtype=float))
    return np.stack(columns, axis=1)


@lru_cache(maxsize=8)
def _design(section_json: str) -> tuple[tuple[tuple[tuple[str, str], ...], ...], int]:
    section = json.loads(section_json)
    levels_ = levels(section)
    if section.get("design") is not None:
        rows = [OURS | row for row in section["design"]]
        covering = len(rows)
    else:
        rows = covering_array(levels_, first=OURS, seed=section["search_seed"])
        covering = len(rows)
        rows = _augment_rows(rows, levels_, parameters(levels_) + section["residual_df"])
    return tuple(tuple((f, row[f]) for f in FACTORS) for row in rows), covering


def design(config: dict) -> list[dict[str, str]]:
    """The readings, in order (reading i is row i - 1): `readings.design` if given, else a covering array of
    strength 2 over `levels` whose first row is OURS, plus D-optimal rows until the additive model keeps
    `readings.residual_df` degrees of freedom. Assumes `config_errors` found nothing."""
    rows, _ = _design(json.dumps(config["readings"]))  # key order kept: the values in config order
    return [dict(row) for row in rows]


def design_size(config: dict) -> dict[str, int]:
    """How the design came to its size: readings, of which the covering array (or the given design), the lower
    bound no covering array beats, the additive model's coefficients, and the full factorial."""
    rows, covering = _design(json.dumps(config["readings"]))
    levels_ = levels(config["readings"])
    return {
        "readings": len(rows),
        "covering_array": covering,
        "lower_bound": lower_bound(levels_),
        "coefficients": parameters(levels_),
        "full_factorial": math.prod(len(v) for v in levels_.values()),
    }


def describe(row: dict) -> str:
    """A reading in words, its values in factor order, e.g. 'pca, minmax, arccos, frequencies, ours, on'."""
    return ", ".join(row[f] for f in FACTORS)


# --- bad input: before any job ----------------------------------------------------------------------------


def config_errors(config: dict) -> list[str]:
    """Every problem of the `readings` section, each naming its key and what is allowed: an unknown factor or
    value, a value our reading needs left out, a given design that misses a pair or a factor's value, and a
    reading whose angles leave the circuit's domain [0, pi]."""
    section = config.get("readings")
    if not section:
        return []
    problems = []
    factors = section.get("factors", {})
    for factor in factors:
        if factor not in FACTORS:
            problems.append(f"readings.factors.{factor}: unknown factor (allowed: {', '.join(FACTORS)})")
    for factor, known in FACTORS.items():
        given = factors.get(factor)
        if given is None:
            problems.append(f"readings.factors.{factor}: missing (each factor lists its values with a reason)")
            continue
        for value in given:
            if value not in known:
                problems.append(f"readings.factors.{factor}.{value}: unknown value (allowed: {', '.join(known)})")
        if OURS[factor] not in given:
            problems.append(
                f"readings.factors.{factor}: must keep {OURS[factor]!r}, our pipeline's reading (the design's first "
                f"row and the main effects' reference)"
            )
    if problems:
        return problems
    for factor, values in (section.get("vary") or {}).items():
        if factor not in FACTORS:
            problems.append(f"readings.vary.{factor}: unknown factor (allowed: {', '.join(FACTORS)})")
            continue
        for value in values:
            if value not in factors[factor]:
                problems.append(
                    f"readings.vary.{factor}: {value!r} is not a value of readings.factors.{factor} "
                    f"(allowed: {', '.join(factors[factor])})"
                )
        if OURS[factor] not in values:
            problems.append(
                f"readings.vary.{factor}: must include {OURS[factor]!r}, our pipeline's reading (the design's first "
                f"row; allowed: {', '.join(factors[factor])})"
            )
    if problems:
        return problems
    levels_ = levels(section)
    rows = section.get("design")
    if rows is not None:
        for i, row in enumerate(rows, start=1):
            for factor, value in row.items():
                if factor not in FACTORS:
                    problems.append(f"readings.design[{i}].{factor}: unknown factor (allowed: {', '.join(FACTORS)})")
                elif value not in levels_[factor]:
                    problems.append(
                        f"readings.design[{i}].{factor} = {value!r}: not a value of the design "
                        f"(allowed: {', '.join(levels_[factor])})"
                    )
        if problems:
            return problems
        full = [OURS | row for row in rows]
        if full[0] != OURS:
            problems.append(f"readings.design[1]: must be our reading {OURS} (written as {{}})")
        # pairs of the factors that vary say it all once two vary (each value then pairs with another's)
        varied = {f: values for f, values in levels_.items() if len(values) > 1}
        missing = (len(varied) > 1 and uncovered(full, varied)) or uncovered(full, levels_)
        if missing:
            shown = "; ".join(f"{f}={a} with {g}={b}" for (f, a), (g, b) in missing[:8])
            more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            problems.append(
                f"readings.design: its {len(full)} readings do not cover every pair of values of two factors: "
                f"missing {shown}{more} (allowed: a covering array of strength 2 over {varied}, the other factors "
                "ours; readings.design: null generates one)"
            )
        import numpy as np

        rank = int(np.linalg.matrix_rank(dummies(full, levels_)))
        if rank < parameters(levels_):
            problems.append(
                f"readings.design: its {len(full)} readings cannot separate the additive model's "
                f"{parameters(levels_)} coefficients (rank {rank}; allowed: more readings, or null to generate them)"
            )
    for scaling in levels_["scaling"]:
        for angle in levels_["angle"]:
            if not in_domain(scaling, angle):
                low, high = angle_range(scaling, angle)
                fine = [a for a in FACTORS["angle"] if in_domain(scaling, a)]
                problems.append(
                    f"readings.factors.angle.{angle}: with scaling {scaling!r} it maps the inputs to angles "
                    f"[{low:.4g}, {high:.4g}], outside the circuit's domain [0, pi] (the paper's 2 arccos x on "
                    f"[0, 1]; allowed angle values: {', '.join(fine)})"
                )
    return problems


# --- what each reading's jobs read ------------------------------------------------------------------------


def reading(config: dict, index: int) -> dict[str, str]:
    rows = design(config)
    if not 1 <= index <= len(rows):
        raise ValueError(f"reading {index} is not in the design (readings 1..{len(rows)})")
    return rows[index - 1]


def input_settings(config: dict, index: int) -> dict:
    """What reading `index`'s circuit inputs read of the config (reduction, scaling, sizes), exactly."""
    row = reading(config, index)
    settings = {"reduction": row["reduction"], "scaling": row["scaling"], "n_qubits": config["quantum"]["n_qubits"]}
    if row["reduction"] == "random":
        settings["projection_seed"] = config["readings"]["projection_seed"]
    return settings


def feature_settings(config: dict, index: int) -> dict:
    """What reading `index`'s circuit counts read: its inputs' settings, the angle map, the classifier input
    transform and the shot count (the shot seed is in the variant's name)."""
    row = reading(config, index)
    return input_settings(config, index) | {
        "angle": row["angle"],
        "input": row["input"],
        "shots": config["quantum"]["shots"],
    }


def units(config: dict, width: str) -> list[int]:
    return [max(1, round(u * WIDTH_FACTOR[width])) for u in config["classifier"]["units"]]


def classifier_settings(config: dict, index: int) -> dict:
    """The classifier reading `index` trains (its control too): dense widths and the Normalization layer."""
    row = reading(config, index)
    return {"units": units(config, row["width"]), "normalize": row["input"] != "unnormalised"}


def control_key(row: dict) -> tuple:
    """What a reading's classical control depends on: its inputs (reduction, scaling, augmentation) and its
    classifier (width, Normalization); not the angle map, nor the log of counts it never sees."""
    return row["reduction"], row["scaling"], row["augment"], row["width"], row["input"] == "unnormalised"


def control_index(rows: list[dict], index: int) -> int:
    """The reading whose control reading `index` shares: the first with the same control key."""
    key = control_key(rows[index - 1])
    return next(i for i, row in enumerate(rows, start=1) if control_key(row) == key)


# --- the numbers: reduction, scaling, angle, classifier input ------------------------------------------------


def reduce(latents: dict, settings: dict) -> dict:
    """{split: (N, n_qubits)} before scaling, fitted on train. For `bottleneck`, `latents` already are the codes
    (rule readings_bottleneck) and pass through."""
    import numpy as np

    from . import quantum

    method, n = settings["reduction"], settings["n_qubits"]
    if method == "bottleneck":
        if latents["train"].shape[1] != n:
            raise ValueError(f"bottleneck reduction: expected {n}-d codes, got {latents['train'].shape[1]}-d inputs")
        return {split: np.asarray(x, dtype=np.float64) for split, x in latents.items()}
    train = np.asarray(latents["train"], dtype=np.float64)
    if method in ("pca", "first"):
        fitted = quantum.fit_reduction(train, method, n)
        mean, components = fitted["mean"], fitted["components"]
    elif method == "random":
        # Gaussian entries of variance 1/n (Johnson-Lindenstrauss), on the centred latents
        rng = np.random.default_rng(settings["projection_seed"])
        mean, components = train.mean(axis=0), rng.normal(0.0, 1.0 / math.sqrt(n), (n, train.shape[1]))
    else:
        raise ValueError(f"unknown reduction {method!r} (allowed: {', '.join(FACTORS['reduction'])})")
    return {split: (np.asarray(x, dtype=np.float64) - mean) @ components.T for split, x in latents.items()}


def scale(projected: dict, method: str) -> dict:
    """{split: (N, n)} in [0, 1], fitted on train; a constant column maps to 0."""
    import numpy as np

    train = projected["train"]
    if method == "minmax":
        # as quantum.apply_reduction: the pipeline's own inputs, to the bit (tested)
        low, high = train.min(axis=0), train.max(axis=0)
        span = high - low
        safe = np.where(span > 0, span, 1.0)
        return {s: np.clip(np.where(span > 0, (x - low) / safe, 0.0), 0.0, 1.0) for s, x in projected.items()}
    if method == "squash":
        mean, std = train.mean(axis=0), train.std(axis=0)
        safe = np.where(std > 0, std, 1.0)
        return {s: np.where(std > 0, 1.0 / (1.0 + np.exp(-(x - mean) / safe)), 0.0) for s, x in projected.items()}
    if method == "rank":
        return {s: _quantiles(train, x) for s, x in projected.items()}
    raise ValueError(f"unknown scaling {method!r} (allowed: {', '.join(FACTORS['scaling'])})")


def _quantiles(train, x):
    """Per column, the mid-rank of x among train's values, as a fraction in [0, 1]: train's i-th smallest of n
    distinct values maps to i / (n - 1), tied values share their mean rank, values between interpolate, values
    beyond train's range clip to its ends."""
    import numpy as np

    out = np.zeros_like(x, dtype=np.float64)
    n = len(train)
    for j in range(train.shape[1]):
        values, counts = np.unique(train[:, j], return_counts=True)
        if len(values) == 1:
            continue  # a constant column carries nothing: 0, as minmax does
        mid_rank = np.cumsum(counts) - (counts + 1) / 2.0  # 0-based mean rank of each distinct value
        out[:, j] = np.interp(x[:, j], values, mid_rank / (n - 1))
    return out


def circuit_inputs(latents: dict, settings: dict) -> dict:
    """The reading's n_qubits inputs in [0, 1] of every split (what its classical control reads)."""
    return scale(reduce(latents, settings), settings["scaling"])


def angles(x, angle: str):
    """t of every input (numpy), for the docs and tests; `paper_inputs` is what the circuit is given."""
    import numpy as np

    return np.vectorize(ANGLE[angle], otypes=[float])(x)


def paper_inputs(x, angle: str):
    """The input x' of the paper's map that gives the reading's angle t: 2 arccos x' = t, x' = cos(t / 2), in
    [0, 1] for t in [0, pi]. The paper's own map passes x through unchanged (no rounding on the way)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if angle == "arccos":
        return x
    if angle == "pi":
        return np.cos(np.pi * x / 2.0)
    if angle == "half_pi":
        return np.cos(np.pi * x / 4.0)
    fine = [a for a in FACTORS["angle"] if in_domain("minmax", a)]
    raise ValueError(f"angle {angle!r}: no input of the paper's map gives its angles (allowed: {', '.join(fine)})")


def classifier_input(frequencies, input_: str, shots: int):
    """What the classifier reads of the counts (N, 2**n): frequencies as they are, or their logarithm with half
    a count added (a count of zero stays finite)."""
    import numpy as np

    if input_ in ("frequencies", "unnormalised"):
        return frequencies
    if input_ == "log":
        return np.log(frequencies + 0.5 / shots)
    raise ValueError(f"unknown classifier input {input_!r} (allowed: {', '.join(FACTORS['input'])})")


def circuit_counts(latents: dict, settings: dict, seed: int, threads: int) -> dict:
    """The reading's features of every split: its inputs through its angle map into the paper's circuit, Aer
    counts with `shots` shots and shot seed `seed` (each split its own range, as every variant), then the
    classifier's input transform."""
    from . import quantum

    x = circuit_inputs(latents, settings)
    features = {}
    for split, values in x.items():
        given = paper_inputs(values, settings["angle"])[:, None, :]
        frequencies = quantum.circuit_features(
            given, settings["shots"], quantum.split_seed(seed, split), threads=threads
        )
        features[split] = classifier_input(frequencies, settings["input"], settings["shots"])
    return features


# --- the bottleneck autoencoder -------------------------------------------------------------------------------


def train_bottleneck(
    keras, latents: dict, n_qubits: int, hidden: int, epochs: int, batch_size: int, learning_rate: float, seed: int
):
    """A small autoencoder on the (standardised) train latents, 64 -> hidden (ReLU) -> n_qubits (linear) ->
    hidden (ReLU) -> 64, MSE and Adam; returns ({split: (N, n_qubits) codes}, history DataFrame). The caller
    seeds TensorFlow (runtime.seed_tensorflow)."""
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from .tfdata import batches

    train = np.asarray(latents["train"], dtype=np.float32)
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    standard = {split: ((np.asarray(x, dtype=np.float32) - mean) / std) for split, x in latents.items()}
    width = train.shape[1]
    inputs = keras.Input(shape=(width,), name="latents")
    h = keras.layers.Dense(hidden, activation="relu", name="enc_hidden")(inputs)
    code = keras.layers.Dense(n_qubits, name="code")(h)
    d = keras.layers.Dense(hidden, activation="relu", name="dec_hidden")(code)
    outputs = keras.layers.Dense(width, name="reconstruction")(d)
    model, encoder = keras.Model(inputs, outputs), keras.Model(inputs, code)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    history = model.fit(
        batches(tf, standard["train"], None, batch_size, seed),
        validation_data=batches(tf, standard["val"], None, 2048, None),
        epochs=epochs,
        verbose=2,
    )
    frame = pd.DataFrame(history.history)
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    codes = {split: encoder.predict(x, batch_size=2048, verbose=0).astype(np.float64) for split, x in standard.items()}
    return codes, frame


# --- the runs ---------------------------------------------------------------------------------------------


def first_runs(config: dict) -> list[tuple[str, int]]:
    """(variant, seed) of every reading's hybrid at the first seed, in reading order."""
    seed = config["readings"]["seeds"][0]
    return [(f"reading{i}_seed{seed}", seed) for i in range(1, len(design(config)) + 1)]


def control_runs(config: dict) -> list[tuple[str, int]]:
    """(variant, seed) of every distinct control at the first seed (readings sharing a control share the run)."""
    rows, seed = design(config), config["readings"]["seeds"][0]
    indices = dict.fromkeys(control_index(rows, i) for i in range(1, len(rows) + 1))
    return [(f"readinginputs{i}", seed) for i in indices]


def interval_runs(config: dict, best: list[int]) -> list[tuple[str, int]]:
    """(variant, seed) of the best readings at the other seeds."""
    return [(f"reading{i}_seed{s}", s) for i in best for s in config["readings"]["seeds"][1:]]


def select(first_seed_runs: dict[int, dict], n_best: int) -> list[int]:
    """The `n_best` readings of highest VALIDATION accuracy at the first seed (ties: the lower index). The test
    split plays no part in the choice."""
    ranked = sorted(first_seed_runs, key=lambda i: (-first_seed_runs[i]["val_accuracy"], i))
    return ranked[:n_best]
