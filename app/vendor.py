"""Third-party front-end files, fetched from the npm registry, checked by SHA-256, served from ``static/vendor``.

Nothing is loaded from a CDN at run time: the page imports these files from the app's own server. Each file
is pinned twice: the package tarball's SHA-256 (what ``npm pack NAME@VERSION`` must download) and the file's
own SHA-256 (what is served, before any compression). A file whose content does not match is never
written; an existing file is re-checked on every run and replaced when it does not match.

``python -m app.vendor fetch`` (run by ``scripts/setup.sh``); ``--check`` only verifies.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vae.files import atomic_file

REPO = Path(__file__).resolve().parents[1]
VENDOR_DIR = REPO / "static" / "vendor"
# A vendored file larger than this is not one of ours (the biggest, ORT's WebAssembly, is 14.2 MB).
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    tarball_sha256: str  # of the .tgz that `npm pack name@version` writes
    license: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class VendoredFile:
    package: NpmPackage
    member: str  # path inside the tarball
    sha256: str  # of the file itself, uncompressed
    dest: str  # path under static/vendor/
    # Stored gzip-compressed (dest ends in .gz): the page inflates it itself (DecompressionStream), and the
    # server sends application/gzip as it is instead of compressing 14 MB again for every new browser.
    compress: bool = False


ONNXRUNTIME_WEB = NpmPackage(
    "onnxruntime-web", "1.30.0", "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71", "MIT"
)
FILES: tuple[VendoredFile, ...] = (
    # The CPU (WebAssembly) build with its Emscripten glue bundled in: one module, then only the .wasm.
    VendoredFile(
        ONNXRUNTIME_WEB,
        "package/dist/ort.wasm.bundle.min.mjs",
        "11e64bd8ffe11bd1a2a2f0d6275fdfbbba7262f0b76b99b53d228a8a22ef3d90",
        "onnxruntime-web-1.30.0/ort.wasm.bundle.min.mjs",
    ),
    # SIMD build; it runs single-threaded without cross-origin isolation, which Streamlit does not send.
    VendoredFile(
        ONNXRUNTIME_WEB,
        "package/dist/ort-wasm-simd-threaded.wasm",
        "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
        "onnxruntime-web-1.30.0/ort-wasm-simd-threaded.wasm.gz",
        compress=True,
    ),
)


class VendorError(RuntimeError):
    """A vendored file could not be fetched, or what was fetched is not what is pinned."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_content(path: Path, item: VendoredFile) -> bytes | None:
    """The file's content as served before compression, or None when it is missing or unreadable."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        raw = path.read_bytes()
        if not item.compress:
            return raw
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            return stream.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def is_current(item: VendoredFile, root: Path = VENDOR_DIR) -> bool:
    content = stored_content(root / item.dest, item)
    return content is not None and _sha256(content) == item.sha256


def npm_pack(package: NpmPackage, workdir: Path, command: Sequence[str] = ("npm",), timeout: float = 300.0) -> Path:
    """``npm pack name@version`` into ``workdir`` -> the tarball, checked against its pinned SHA-256."""
    cmd = [*command, "pack", package.spec, "--pack-destination", str(workdir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    except FileNotFoundError:
        raise VendorError(f"{command[0]!r} not found on PATH (install Node.js and npm)") from None
    except subprocess.TimeoutExpired:
        raise VendorError(f"`npm pack {package.spec}` timed out after {timeout:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise VendorError(f"`npm pack {package.spec}` exited {proc.returncode}: {' | '.join(tail)}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise VendorError(f"expected one .tgz from `npm pack {package.spec}`, found {[t.name for t in tarballs]}")
    digest = _sha256(tarballs[0].read_bytes())
    if digest != package.tarball_sha256:
        raise VendorError(f"{tarballs[0].name}: sha256 {digest[:12]}… is not the pinned {package.tarball_sha256[:12]}…")
    return tarballs[0]


def _members(tarball: Path, wanted: dict[str, VendoredFile]) -> dict[str, bytes]:
    """The wanted members' bytes, read by exact name; links and oversized members are refused."""
    found: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            if member.name not in wanted:
                continue
            if not member.isreg():
                raise VendorError(f"{member.name} in {tarball.name} is not a regular file")
            if member.size > MAX_FILE_BYTES:
                raise VendorError(f"{member.name} in {tarball.name} is {member.size:,} bytes, over the cap")
            stream = tar.extractfile(member)
            assert stream is not None  # regular members always have data
            found[member.name] = stream.read()
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise VendorError(f"{tarball.name} lacks {', '.join(missing)}")
    return found


def _write(item: VendoredFile, content: bytes, root: Path) -> None:
    digest = _sha256(content)
    if digest != item.sha256:
        raise VendorError(f"{item.member}: sha256 {digest[:12]}… is not the pinned {item.sha256[:12]}…")
    dest = root / item.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(dest) as raw:
        if item.compress:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:
                out.write(content)
        else:
            raw.write(content)


def fetch(
    files: Sequence[VendoredFile] = FILES, root: Path = VENDOR_DIR, command: Sequence[str] = ("npm",), log=print
) -> list[str]:
    """Make every file in ``files`` present and matching its pin -> the destinations (re)written."""
    stale = [item for item in files if not is_current(item, root)]
    written: list[str] = []
    for package in dict.fromkeys(item.package for item in stale):
        items = {item.member: item for item in stale if item.package == package}
        log(f"vendor: npm pack {package.spec} ({package.license})")
        with tempfile.TemporaryDirectory() as tmp:
            contents = _members(npm_pack(package, Path(tmp), command), items)
        for member, item in items.items():
            _write(item, contents[member], root)
            written.append(item.dest)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.vendor", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["fetch"])
    parser.add_argument("--check", action="store_true", help="only verify; exit 1 when a file is missing or wrong")
    args = parser.parse_args(argv)
    if args.check:
        bad = [item.dest for item in FILES if not is_current(item)]
        for dest in bad:
            print(f"vendor: {dest} is missing or does not match its pin", file=sys.stderr)
        raise SystemExit(1 if bad else 0)
    try:
        written = fetch()
    except VendorError as error:
        print(f"vendor: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print(
        f"vendor: {len(FILES)} files checked in {VENDOR_DIR.relative_to(REPO)}"
        + (f", {len(written)} fetched" if written else "")
    )


if __name__ == "__main__":
    main()
