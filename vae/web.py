"""What the in-page planes read, as plain data: no Streamlit here, so the dashboard (app/web_planes.py) and
the static site (vae/site.py) hand the page the same bytes and the same view spec."""

from __future__ import annotations

from typing import Any

import numpy as np

from vae.models import IMPORTED_ARCH
from vae.projections import NEIGHBOUR_K, LatentView
from vae.store import StoredModel


def view_spec(view: LatentView) -> dict[str, Any]:
    """How the page maps the plane back to codes (static/lib/views.js), as the view does here.

    A view known by its points only (UMAP) is mapped both ways through the ``k`` nearest points, the same
    ``k`` as ``vae.projections.NeighbourInverse``'s, sent here so the page never restates it.
    """
    if view.name == "identity":
        return {"kind": "identity", "mean": view.mean_.astype(float).tolist()}
    if view.name == "pca":
        return {"kind": "pca", "mean": view.mean_.tolist(), "components": view.components_.tolist()}
    return {"kind": "neighbours", "k": NEIGHBOUR_K}


def pack_points(embedding, codes, labels) -> bytes:
    """One plane's points for the page, in the layout ``static/lib/assets.js``'s ``unpackPoints`` reads.

    ``embedding`` float32 ``[N, 2]``, then ``codes`` float32 ``[N, D]``, then ``labels`` uint8 ``[N]``, each
    row-major with no header (N and D travel in the JSON): ``N * (8 + 4 * D + 1)`` bytes. The float blocks
    come first so each starts at a multiple of 4 bytes, as a JS ``Float32Array`` view needs.
    """
    embedding = np.ascontiguousarray(embedding, dtype=np.float32)
    codes = np.ascontiguousarray(codes, dtype=np.float32)
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    n = len(codes)
    if embedding.shape != (n, 2) or codes.ndim != 2 or labels.shape != (n,):
        raise ValueError(
            f"points of one plane must be [N, 2], [N, D] and [N]; got {embedding.shape}, "
            f"{codes.shape} and {labels.shape}"
        )
    return embedding.tobytes() + codes.tobytes() + labels.tobytes()


def fence_spec(stored: StoredModel) -> dict[str, bool]:
    """``{"fenced": True}`` for an imported model, whose graphs the page runs in a worker with a watchdog
    (``static/lib/fence.js``); ``{}`` for the project's own exports, which run on the page's thread."""
    return {"fenced": True} if stored.config.arch == IMPORTED_ARCH else {}
