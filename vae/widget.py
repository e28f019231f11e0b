"""The AE | VAE planes in a notebook: ``LatentPlanes(left, right)``, an anywidget (Jupyter, JupyterLab, VS Code,
Colab, marimo).

The page is the static site's (``vae.site``): the dashboard's explorer run by the same stand-in
(``static/components/latent_planes/standalone.js``), its decoders in onnxruntime-web. Everything it needs
travels in the widget's own state, sent by the kernel once (bytes as binary buffers, not base64): the page's
modules, onnxruntime-web, both decoders as ONNX, the points and the images. Nothing is fetched from a server,
so the widget works where the notebook has no internet and no file server of ours.

What a person reads, observes (``widget.observe(f, "pinned")``) and sets from Python:

- ``pinned``: the last clicked point, ``{"plane": "left" | "right", "point": [x, y] (view coordinates),
  "index": the image's index or None for a spot, "code": its code (D numbers)}``, or None. Setting it moves
  the pin in the page; ``{"plane": ..., "index": i}`` pins image ``i`` where that plane shows it, and the code
  is always computed here (the image's code, or the view's inverse of the spot).
- ``selection``: the selected images' indices, ascending (a lasso, a box or Alt + click in the page; set a
  list to select from Python, ``[]`` to clear).
- ``grid``: the manifold grid, ``n`` x ``n`` digits decoded in the page over each plane's visible region
  (redone as you zoom and pan), ``n`` from 5 to 30 as in the dashboard; 0 (the default) for none.
- ``view``: the plane of a D > 2 model, ``"pca"`` or ``"umap"`` (a 2-D model's plane is its codes). Setting
  it draws the planes anew (the shipped view where there is one, else fitted) and clears ``pinned``.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets

from vae import site
from vae.models import LatentModel

WIDGET_JS = site.STATIC / "widget" / "widget.js"
VIEWS = ("pca", "umap")
# The manifold grid's n x n, as the dashboard's slider allows (app/explorer.py).
GRID_SIZES = (5, 30)
HINT = (
    "Hover anywhere: each plane's decoder runs in this page. Hover a point for its image and both "
    "reconstructions; click to pin it (widget.pinned). Shift + drag lassos a group (widget.selection)."
)


class LatentPlanes(anywidget.AnyWidget):
    """Both models' latent planes, side by side, decoding wherever the pointer is.

    ``left`` and ``right`` are model folders, store names or ``(model, stored)`` as ``vae.load_model`` and
    ``vae.import_onnx`` return; ``subset`` is one of ``vae.data.SUBSETS`` (10,000 test images by default).
    Raises ValueError as :func:`vae.site.payload` does, and for a ``view`` not of :data:`VIEWS`.
    """

    _esm = WIDGET_JS
    _css = site.STATIC / "components" / "latent_planes" / "style.css"

    _modules = traitlets.Dict(value_trait=traitlets.Unicode()).tag(sync=True)
    _assets = traitlets.Dict(value_trait=traitlets.Bytes()).tag(sync=True)
    _files = traitlets.Dict(value_trait=traitlets.Bytes()).tag(sync=True)
    _manifest = traitlets.Dict().tag(sync=True)

    pinned = traitlets.Dict(default_value=None, allow_none=True).tag(sync=True)
    selection = traitlets.List().tag(sync=True)
    view = traitlets.Unicode("pca").tag(sync=True)
    grid = traitlets.Int(0).tag(sync=True)

    def __init__(
        self,
        left: site.ModelLike,
        right: site.ModelLike,
        subset: str = "test",
        *,
        view: str = "pca",
        data_dir: str | Path | None = None,
        onnx_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {list(VIEWS)}, got {view!r}")
        self._models = (site.loaded(left), site.loaded(right))
        # The repository's datasets (where `make setup` put them) wherever the notebook runs, unless told.
        data_dir = data_dir or os.environ.get("VAE_DATA_DIR") or site.REPO / "data"
        self._options = {"subset": subset, "data_dir": data_dir, "onnx_dir": onnx_dir}
        built = self._build(view)
        images = built.files.pop("images.bin")
        self._initialised = False  # the planes above are already of `view`: setting it below builds nothing
        super().__init__(
            _modules=site.page_modules(),
            _assets={**site.runtime_files(), "images.bin": images},
            _files=built.files,
            _manifest=built.manifest,
            view=view,
            **kwargs,
        )
        self._initialised = True

    def _build(self, view: str) -> site.Payload:
        built = site.payload(*self._models, views=(view, view), **self._options)
        built.manifest["hint"] = HINT
        self._planes = built.planes
        return built

    @property
    def count(self) -> int:
        """How many images each plane shows."""
        return len(self._planes["left"].codes)

    def model(self, plane: str) -> LatentModel:
        """The model ``plane`` (``"left"`` or ``"right"``) shows, in eval mode: ``model.decode(codes)`` is what
        the page's decoder computes."""
        self._plane(plane)
        return self._models[site.SIDES.index(plane)][0]

    def codes(self, plane: str) -> np.ndarray:
        """The images' codes in ``plane`` (``"left"`` or ``"right"``): float32 ``[N, D]``, read-only."""
        codes = self._plane(plane).codes.view()
        codes.flags.writeable = False
        return codes

    def embedding(self, plane: str) -> np.ndarray:
        """Where ``plane`` draws each image: float32 ``[N, 2]``, in view coordinates."""
        return self._plane(plane).view.embedding_

    def _plane(self, plane: object) -> site.Plane:
        if plane not in site.SIDES:
            raise traitlets.TraitError(f"a plane is one of {list(site.SIDES)}, got {plane!r}")
        return self._planes[plane]

    @traitlets.validate("view")
    def _check_view(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in VIEWS:
            raise traitlets.TraitError(f"view must be one of {list(VIEWS)}, got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.observe("view")
    def _view_changed(self, change: dict[str, Any]) -> None:
        if not getattr(self, "_initialised", False) or change["old"] == change["new"]:
            return
        built = self._build(change["new"])
        built.files.pop("images.bin")
        # One message, so the page never sees the new manifest with the old files.
        with self.hold_sync():
            self.pinned = None
            self._files = built.files
            self._manifest = built.manifest

    @traitlets.validate("grid")
    def _check_grid(self, proposal: dict[str, Any]) -> int:
        n = proposal["value"]
        if n != 0 and not GRID_SIZES[0] <= n <= GRID_SIZES[1]:
            raise traitlets.TraitError(f"grid is 0 (none) or from {GRID_SIZES[0]} to {GRID_SIZES[1]}; got {n}")
        return n

    @traitlets.validate("pinned")
    def _check_pinned(self, proposal: dict[str, Any]) -> dict[str, Any] | None:
        """What the page or a person set -> ``{plane, point, index, code}``; TraitError for anything else."""
        value = proposal["value"]
        if value is None:
            return None
        plane = self._plane(value.get("plane"))
        index = value.get("index")
        if index is not None:
            if not _is_index(index) or not 0 <= index < len(plane.codes):
                raise traitlets.TraitError(
                    f"pinned index must be an image's index, 0 to {len(plane.codes) - 1}; got {index!r}"
                )
            point = value.get("point")
            if point is None:
                point = plane.view.embedding_[index]
            code = plane.codes[index]
        else:
            point = value.get("point")
            if point is None:
                raise traitlets.TraitError("pinned needs a point [x, y] in the plane, or an image's index")
        point = _point(point)
        if index is None:
            code = plane.view.inverse_transform(np.asarray([point], dtype=np.float32))[0]
        index = None if index is None else int(index)
        return {"plane": value["plane"], "point": point, "index": index, "code": [float(c) for c in code]}

    @traitlets.validate("selection")
    def _check_selection(self, proposal: dict[str, Any]) -> list[int]:
        bad = [i for i in proposal["value"] if not _is_index(i)]
        if bad:  # the first one named: a selection may hold 70,000 numbers
            raise traitlets.TraitError(f"a selection is a list of image indices (integers); got {bad[0]!r}")
        indices = sorted({int(i) for i in proposal["value"]})
        if indices and not (0 <= indices[0] and indices[-1] < self.count):
            raise traitlets.TraitError(
                f"a selection holds image indices 0 to {self.count - 1}; got {indices[0]} to {indices[-1]}"
            )
        return indices


def _point(point: object) -> list[float]:
    """``[x, y]`` as two finite floats; TraitError for anything else."""
    try:
        x, y = (float(v) for v in point)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise traitlets.TraitError(f"a point is [x, y], two numbers; got {point!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise traitlets.TraitError(f"a point's coordinates must be finite; got {point!r}")
    return [x, y]


def _is_index(value: object) -> bool:
    """An integer (Python's or numpy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
