"""The page's own front end: plain JS and CSS files under ``static/``, served by Streamlit's static route.

Layout of ``static/`` (served at ``<base>/app/static/``, ``server.enableStaticServing`` in
``.streamlit/config.toml``):

- ``components/<name>/``: one Streamlit custom component (components v2) each: ``index.js`` (the module
  Streamlit runs), optional ``style.css`` and ``index.html``. Registered by :func:`component`.
- ``lib/``: ES modules shared by the components, split by job and tested with ``node --test``; a
  component's ``index.js`` imports its real module by URL (:func:`module_url`), which imports the rest.
- ``vendor/``: third-party files fetched and checked by ``python -m app.vendor fetch`` (not committed).
- ``cache/``: what the running app publishes for the page (:func:`publish`): ONNX models and data packs,
  gzip-compressed and named by the SHA-256 of their content, so a URL never changes meaning and the browser
  may keep it (not committed).

Nothing here imports Streamlit at module level beyond what registration needs, and nothing runs at import.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from pathlib import Path

import streamlit as st

from vae.files import atomic_file

REPO = Path(__file__).resolve().parents[1]
STATIC_DIR = REPO / "static"
COMPONENTS_DIR = STATIC_DIR / "components"
LIB_DIR = STATIC_DIR / "lib"
PUBLISHED_DIR = STATIC_DIR / "cache"
# Streamlit serves the app's static folder under this path (below server.baseUrlPath).
STATIC_ROUTE = "app/static"


def static_url(relative: str) -> str:
    """The URL path (from the server's root) of ``static/<relative>``, honouring ``server.baseUrlPath``."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    prefix = f"/{base}" if base else ""
    return f"{prefix}/{STATIC_ROUTE}/{relative.lstrip('/')}"


@functools.cache
def code_version() -> str:
    """A short hash of every file under ``components/`` and ``lib/``.

    Module URLs carry it as a query (``?v=``), so a browser that cached last release's modules fetches the
    new ones, while reruns of the same release hit its cache.
    """
    digest = hashlib.sha256()
    for folder in (COMPONENTS_DIR, LIB_DIR):
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(STATIC_DIR)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def module_url(relative: str) -> str:
    """URL of an ES module under ``static/`` (e.g. ``"components/latent_planes/explorer.js"``) for this release.

    The URL goes through ``cache/code-<code_version>/``, a link to ``static/`` itself, so the module's own
    relative imports (``../../lib/views.js``) resolve inside the same versioned folder: a browser never mixes
    a module of this release with a cached one of the last. Where links cannot be made, a ``?v=`` query
    versions the entry module alone.
    """
    version = code_version()
    link = PUBLISHED_DIR / f"code-{version}"
    if not link.is_dir():
        try:
            PUBLISHED_DIR.mkdir(parents=True, exist_ok=True)
            os.symlink("..", link, target_is_directory=True)  # inside static/: the server follows it
        except FileExistsError:
            pass
        except OSError:
            return f"{static_url(relative)}?v={version}"
    return static_url(f"cache/code-{version}/{relative.lstrip('/')}")


def _read_optional(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


@functools.cache
def component(name: str):
    """The components-v2 renderer of ``static/components/<name>/``; registered on first use, not at import.

    The files are read once per process: a component is trusted code of this repository, never user input.
    """
    folder = COMPONENTS_DIR / name
    js = _read_optional(folder / "index.js")
    if js is None:
        raise FileNotFoundError(f"no component {name!r}: {folder / 'index.js'} is missing")
    return st.components.v2.component(
        name, js=js, css=_read_optional(folder / "style.css"), html=_read_optional(folder / "index.html")
    )


def publish(data: bytes, suffix: str) -> tuple[str, Path]:
    """Put ``data`` where the page can fetch it -> (its URL, ``.../cache/<sha256>.<suffix>.gz``, and its path).

    Stored gzip-compressed (level 6, no timestamp, so the same bytes always give the same file) and served
    as ``application/gzip``, which the server passes through as it is: the page inflates it with the
    browser's ``DecompressionStream``, and the server spends no CPU compressing it again per request. The
    name is the SHA-256 of the uncompressed bytes, so publishing the same content twice writes nothing.
    """
    if not suffix.isascii() or not suffix.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"suffix must be short and alphanumeric, got {suffix!r}")
    directory = PUBLISHED_DIR
    name = f"{hashlib.sha256(data).hexdigest()}.{suffix}.gz"
    target = directory / name
    if not target.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        # Another process publishing the same bytes at once writes the same file: either rename wins.
        with atomic_file(target) as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
            out.write(data)
    return static_url(f"{directory.relative_to(STATIC_DIR).as_posix()}/{name}"), target
