"""Files between stages: .npz arrays (never pickled), JSON metrics and CSV tables, written atomically.

A rule killed mid-write must leave nothing that looks complete, so every writer goes through a temporary
name in the same folder and an atomic rename. Loaders check what a hand-edited file could get wrong
(missing arrays, shapes, NaNs) and name the file in the error.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


class ArrayFileError(Exception):
    """An intermediate file is missing an array, has the wrong shape or holds non-finite values."""


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp{suffix or path.suffix}"):
        stale.unlink(missing_ok=True)  # left by a writer that was killed; its job is being rerun now
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix or path.suffix}")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should read like any other file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **{name: np.asarray(value) for name, value in arrays.items()})


def load_npz(
    path: str | Path,
    required: dict[str, tuple[int | None, ...] | None],
    finite: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Load named arrays, checking each one's shape pattern (None = any size) and that `finite` ones are finite.

    Every array given a shape pattern must also have the same number of rows (first dimension) as the others.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise ArrayFileError(f"{path}: cannot be read as an .npz of plain arrays ({error})") from error
    rows = set()
    for name, shape in required.items():
        if name not in arrays:
            raise ArrayFileError(f"{path}: missing array '{name}' (has {sorted(arrays)}); rerun the rule that makes it")
        array = arrays[name]
        if shape is not None:
            ok = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
            if not ok:
                want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
                raise ArrayFileError(f"{path}: array '{name}' has shape {array.shape}, expected {want}")
            rows.add(array.shape[0])
    if len(rows) > 1:
        raise ArrayFileError(f"{path}: arrays {sorted(required)} disagree on the number of rows: {sorted(rows)}")
    for name in finite:
        bad = ~np.isfinite(arrays[name])
        if bad.any():
            raise ArrayFileError(
                f"{path}: array '{name}' holds {int(bad.sum())} NaN/inf value(s) "
                f"(first at flat index {int(np.flatnonzero(bad)[0])}); rerun the rule that makes it"
            )
    return arrays


def load_dataset(path: str | Path, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A dataset file: `features` (N, width) finite floats and integer `labels` 0-9 (N,)."""
    arrays = load_npz(path, {"features": (None, width), "labels": (None,)}, finite=("features",))
    labels = arrays["labels"]
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ArrayFileError(f"{path}: labels must be 0-9, found {labels.min()}..{labels.max()}")
    return arrays["features"], labels


def load_circuit_inputs(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A circuit-inputs file: finite `inputs` (N, n_circuits, n_qubits) in [0, 1] and `labels` (N,)."""
    arrays = load_npz(path, {"inputs": (None, None, None), "labels": (None,)}, finite=("inputs",))
    inputs = arrays["inputs"]
    if inputs.size and (inputs.min() < 0 or inputs.max() > 1):  # arccos needs them in [-1, 1]; ours are [0, 1]
        raise ArrayFileError(
            f"{path}: circuit inputs must lie in [0, 1], found {inputs.min():.6g}..{inputs.max():.6g}; "
            "rerun the rule that makes it"
        )
    return inputs, arrays["labels"]


def save_dataset(path: str | Path, features: np.ndarray, labels: np.ndarray) -> None:
    save_npz(path, features=features, labels=labels.astype(np.uint8))


def save_json(path: str | Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def load_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def save_csv(path: str | Path, frame) -> None:
    """pandas DataFrame to CSV with a fixed float format, so reruns give the same bytes."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
