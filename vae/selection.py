"""A selection of images (a set of indices into the points a plane shows) and what it says about each model.

The page lassoes or boxes points in either latent plane; the selection is a set of image indices shared by
both planes. This module is the reference for what the page computes and the server's side of the rest:

- which points a lasso encloses (:func:`points_in_polygon`, even-odd rule; a box is a 4-point polygon);
- per-class counts (:func:`class_counts`), how spread the selection is in a plane (:func:`spread`) and how
  mixed its neighbourhood is in the full latent space (:func:`neighbourhood`);
- one image's nearest neighbours (:func:`nearest`), an even sample for a grid (:func:`even_sample`);
- the two exports: the CSV (:func:`selection_csv`, the one description of its format) and a PNG sheet of
  originals beside both models' reconstructions (:func:`selection_sheet`).

NumPy (and scikit-learn for the neighbour search) only: no Streamlit, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from vae import images as image_tools


def _array(values: Any) -> np.ndarray:
    return np.asarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values)


def _points(values: Any, name: str, dim: int | None = None) -> np.ndarray:
    """``values`` as finite float64 ``[N, dim]`` (any positive width when ``dim`` is None)."""
    array = _array(values)
    if array.ndim != 2 or (dim is not None and array.shape[1] != dim) or array.shape[1] < 1:
        width = dim if dim is not None else "D"
        raise ValueError(f"{name} must have shape [N, {width}], got {list(array.shape)}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite (no NaN or infinity)")
    return array


def _integers(values: Any, name: str) -> np.ndarray:
    array = _array(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of integers, got shape {list(array.shape)}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def as_selection(indices: Any, n_points: int, allow_empty: bool = True) -> np.ndarray:
    """A selection ``[S]`` of indices into ``n_points`` points -> int64 ``[S]``, sorted ascending.

    A selection is a set: every index must be an integer in ``[0, n_points)`` and appear once.
    """
    index = _integers(indices, "indices")
    if not allow_empty and index.size == 0:
        raise ValueError("the selection is empty: select at least one point")
    if index.size and (index.min() < 0 or index.max() >= n_points):
        bad = index[(index < 0) | (index >= n_points)][0]
        raise ValueError(f"indices must be in [0, {n_points}) for {n_points} points, got {int(bad)}")
    ordered = np.sort(index)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size:
        raise ValueError(f"indices must be unique (a selection is a set), got {int(repeated[0])} more than once")
    return ordered


def points_in_polygon(points: Any, polygon: Any) -> np.ndarray:
    """Which of ``points [N, 2]`` lie inside ``polygon [M, 2]`` (M >= 3 vertices, in order) -> bool ``[N]``.

    The even-odd rule, as a canvas's ``isPointInPath(..., "evenodd")``: a point is inside when a ray from it
    to +x crosses the polygon's edges an odd number of times, so a self-crossing lasso's doubly enclosed
    loops count as outside. The polygon closes itself (last vertex back to the first; repeating the first
    vertex at the end changes nothing). Points exactly on an edge may fall either way. A box is the 4-point
    polygon of its corners.

    Vectorised over the points: one pass over the M edges, each over all N points at once.
    """
    xy = _points(points, "points", 2)
    vertices = _points(polygon, "polygon", 2)
    if len(vertices) < 3:
        raise ValueError(f"polygon needs at least 3 vertices, got {len(vertices)}")
    px, py = xy[:, 0], xy[:, 1]
    inside = np.zeros(len(xy), dtype=bool)
    x_from, y_from = vertices[-1]
    for x_to, y_to in vertices:
        # The edge straddles the ray's height (half-open, so a vertex on the ray counts once) ...
        straddles = (y_from > py) != (y_to > py)
        if y_to != y_from:  # a horizontal edge never straddles
            # ... and crosses it to the right of the point.
            crossing_x = x_from + (py - y_from) * (x_to - x_from) / (y_to - y_from)
            inside ^= straddles & (px < crossing_x)
        x_from, y_from = x_to, y_to
    return inside


def class_counts(labels: Any, indices: Any, n_classes: int) -> np.ndarray:
    """How many of the selected images are of each class: labels ``[N]``, indices ``[S]`` -> int64 ``[n_classes]``."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    label = _integers(labels, "labels")
    if label.size and (label.min() < 0 or label.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got {int(label[(label < 0) | (label >= n_classes)][0])}")
    index = as_selection(indices, len(label))
    return np.bincount(label[index], minlength=int(n_classes)).astype(np.int64)


def spread(view: Any, indices: Any) -> float:
    """How spread the selection is in a plane, in units of the whole plane's spread: view ``[N, 2]``, indices ``[S]``.

    Mean distance of the selected points to their own centroid, divided by the mean distance of all N points to
    the overall centroid: 1.0 is as spread as the whole plane, near 0 a tight clump (one point gives 0).
    """
    xy = _points(view, "view", 2)
    index = as_selection(indices, len(xy), allow_empty=False)
    overall = np.linalg.norm(xy - xy.mean(axis=0), axis=1).mean()
    if overall == 0:
        raise ValueError("all points of the view coincide: their spread is 0, so no ratio can be formed")
    chosen = xy[index]
    return float(np.linalg.norm(chosen - chosen.mean(axis=0), axis=1).mean() / overall)


class Neighbourhood(NamedTuple):
    """Shares over all (selected image, one of its k nearest neighbours) pairs, each in [0, 1]."""

    share_selected: float  # neighbours that are selected too: 1 when the selection is a closed group
    share_other_class: float  # neighbours whose label differs from the selected image's


def neighbourhood(codes: Any, labels: Any, indices: Any, k: int = 5, queries: Any = None) -> Neighbourhood:
    """How mixed the selection's neighbourhood is in the full latent space: codes ``[N, D]``, labels ``[N]``,
    indices ``[S]``.

    For each selected image, its ``k`` nearest images among all N by Euclidean distance in all D dimensions
    (itself excluded), then over the S * k neighbours: the share that are selected too and the share whose
    label differs from the selected image's. ``queries`` (a subset of ``indices``, e.g. an even sample)
    measures from those images only: the same shares, estimated, at a cost linear in their number. Exact: scikit-learn's ``NearestNeighbors`` by brute force in
    float64 (its chunked, multi-threaded search; a k-d tree is 3 to 4 times slower in 16 dimensions); among
    neighbours at exactly equal distance the search's order decides. Linear in S: for 20,000 selected of
    70,000 16-D codes, 4-5 s on two busy cores (``benchmarks/selection_neighbourhood.py``), so callers cache it.
    """
    from sklearn.neighbors import NearestNeighbors

    z = _points(codes, "codes")
    label = _integers(labels, "labels")
    if len(label) != len(z):
        raise ValueError(f"need one label per code: {len(z)} codes, {len(label)} labels")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k >= len(z):
        raise ValueError(f"k must be less than the number of points ({len(z)}), got {k}")
    index = as_selection(indices, len(z), allow_empty=False)
    selected = np.zeros(len(z), dtype=bool)
    selected[index] = True
    if queries is not None:
        asked = as_selection(queries, len(z), allow_empty=False)
        if not selected[asked].all():
            raise ValueError("queries must be selected images (a subset of indices)")
        index = asked
    search = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(z)
    _, found = search.kneighbors(z[index])  # [S, k + 1], nearest first; each image finds itself at distance 0
    neighbours = _drop_self(found, index, k)  # [S, k]
    return Neighbourhood(
        share_selected=float(selected[neighbours].mean()),
        share_other_class=float((label[neighbours] != label[index][:, None]).mean()),
    )


def _drop_self(found: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """``[S, k + 1]`` neighbour lists -> ``[S, k]`` without the query image itself.

    Usually it is first; among exact duplicates of its code it may come later, or (with more than k
    duplicates) not at all, in which case the farthest of the k + 1 goes instead.
    """
    is_self = found == index[:, None]
    is_self[~is_self.any(axis=1), k] = True
    return found[~is_self].reshape(len(found), k)


def nearest(codes: Any, index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` images nearest image ``index`` in the full latent space: codes ``[N, D]`` -> (indices int64 ``[k]``,
    Euclidean distances float64 ``[k]``), nearest first.

    The image itself is excluded (its duplicates, at distance 0, are not); equal distances are ordered by index.
    """
    z = _points(codes, "codes")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(z):
        raise ValueError(f"index must be an integer in [0, {len(z)}), got {index!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if k >= len(z):
        raise ValueError(f"k must be less than the number of points ({len(z)}), got {k}")
    distances = np.linalg.norm(z - z[index], axis=1)
    distances[index] = np.inf
    # lexsort's last key is the primary one: by distance, then by index.
    order = np.lexsort((np.arange(len(z)), distances))[:k]
    return order.astype(np.int64), distances[order]


def even_sample(indices: Any, limit: int = 100) -> np.ndarray:
    """At most ``limit`` of the selection ``[S]``, spread evenly over it sorted ascending -> int64 ``[min(S, limit)]``.

    All of it when S <= limit; otherwise positions ``p_i = floor(i * (S - 1) / (limit - 1) + 1/2)`` for
    i = 0 .. limit - 1 (in integers, so any language gets the same picks): the first and the last are kept.
    """
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    index = _integers(indices, "indices")
    ordered = np.sort(index)
    if len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any():
        raise ValueError("indices must be unique (a selection is a set)")
    count = len(ordered)
    if count <= limit:
        return ordered
    if limit == 1:
        return ordered[:1]
    i = np.arange(limit, dtype=np.int64)
    positions = (2 * i * (count - 1) + (limit - 1)) // (2 * (limit - 1))
    return ordered[positions]


def selection_csv(indices: Any, labels: Any, left_codes: Any, right_codes: Any, left_view: Any, right_view: Any) -> str:
    """The selection as CSV text: one row per selected image, ascending by index.

    Inputs: indices ``[S]`` into the N points shown, labels ``[N]``, each model's codes ``[N, D]`` and
    ``[N, E]`` and each plane's view coordinates ``[N, 2]`` (for a 2-D latent shown as it is, the codes
    again).

    The format, which the page's in-browser export writes too:

    - header ``index,label,left_z1,...,left_zD,right_z1,...,right_zE,left_x,left_y,right_x,right_y``;
    - ``index`` is the image's index into the subset shown (for all 70,000: 0-9,999 test, then train in file
      order), ``label`` its class number, both as plain integers;
    - every other cell is the float32 value written as C's ``printf("%.7g")``: 7 significant digits, trailing
      zeros (and a trailing point) dropped, exponent form ``1.5e-05`` / ``1.234568e+07`` when the decimal
      exponent is below -4 or at least 7 (two exponent digits at least), ``-0`` for negative zero, ``nan``,
      ``inf``, ``-inf``;
    - lines end with ``\\n``, the last one too; no quoting (no cell can hold a comma).
    """
    label = _integers(labels, "labels")
    n = len(label)
    blocks = []
    for name, values, width in (
        ("left_codes", left_codes, None),
        ("right_codes", right_codes, None),
        ("left_view", left_view, 2),
        ("right_view", right_view, 2),
    ):
        array = _array(values)
        if array.ndim != 2 or array.shape[1] < 1 or (width is not None and array.shape[1] != width):
            raise ValueError(f"{name} must have shape [N, {width or 'D'}], got {list(array.shape)}")
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
        if len(array) != n:
            raise ValueError(f"{name} has {len(array)} rows but there are {n} labels: need one row per point")
        blocks.append(array)
    index = as_selection(indices, n)
    left_dim, right_dim = blocks[0].shape[1], blocks[1].shape[1]
    header = [
        "index",
        "label",
        *(f"left_z{i + 1}" for i in range(left_dim)),
        *(f"right_z{i + 1}" for i in range(right_dim)),
        "left_x",
        "left_y",
        "right_x",
        "right_y",
    ]
    # float32 first (what the page holds), then exactly widened: the same digits in Python and in JS.
    values = np.concatenate([b[index].astype(np.float32).astype(np.float64) for b in blocks], axis=1)
    row = "%d,%d," + ",".join(["%.7g"] * values.shape[1])
    lines = [",".join(header)]
    lines += [row % (i, c, *v) for i, c, v in zip(index.tolist(), label[index].tolist(), values.tolist())]
    return "\n".join(lines) + "\n"


SHEET_LIMIT = 100  # originals on one sheet: the page's grid shows as many
SHEET_COLUMNS = 10
SHEET_SCALE = 2  # pixels per MNIST pixel: the digits stay crisp and the labels fit above them
_CELL_GAP = 8
_LABEL_BAND = 14  # px above each triple for its index and class name
_HEADER_BAND = 18


def selection_sheet(
    images: Any,
    left_recon: Any,
    right_recon: Any,
    labels: Any,
    class_names: Sequence[str],
    model_names: tuple[str, str] | None = None,
    indices: Any = None,
) -> bytes:
    """A PNG sheet of selected originals, each beside both models' reconstructions.

    images uint8 ``[K, 28, 28]`` (1 <= K <= 100; :func:`even_sample` picks them), left_recon and right_recon
    ``[K, 28, 28]`` (uint8, or float in [0, 1]), labels ``[K]`` indexing ``class_names``. Each cell is the strip
    original | left | right (``vae.images.strip``) enlarged 2 times, under a line with its label's class name;
    10 cells a row, in the order given. ``model_names`` (left, right), when given, heads the sheet; ``indices``
    ``[K]``, when given, prefixes each label with the image's index (``#123 4``), the CSV's ``index`` column.
    Greyscale PNG bytes.
    """
    originals = _array(images)
    if originals.ndim != 3 or originals.shape[0] < 1 or originals.shape[1:] != (28, 28):
        raise ValueError(f"images must have shape [K, 28, 28] with K >= 1, got {list(originals.shape)}")
    if originals.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (the dataset's own pixels), got {originals.dtype}")
    count = len(originals)
    if count > SHEET_LIMIT:
        raise ValueError(f"a sheet holds at most {SHEET_LIMIT} images, got {count} (use even_sample first)")
    for name, recon in (("left_recon", left_recon), ("right_recon", right_recon)):
        shape = list(_array(recon).shape)
        if shape != list(originals.shape) and shape != [count, 1, *originals.shape[1:]]:
            raise ValueError(f"{name} must have the images' shape {list(originals.shape)}, got {shape}")
    label = _integers(labels, "labels")
    names = list(class_names)
    if len(label) != count:
        raise ValueError(f"need one label per image: {count} images, {len(label)} labels")
    if label.size and (label.min() < 0 or label.max() >= len(names)):
        raise ValueError(f"labels must index class_names (0..{len(names) - 1})")
    texts = [names[c] for c in label]
    if indices is not None:
        numbers = _integers(indices, "indices")
        if len(numbers) != count:
            raise ValueError(f"need one index per image: {count} images, {len(numbers)} indices")
        texts = [f"#{i} {text}" for i, text in zip(numbers.tolist(), texts)]
    left, right = ([image_tools.to_uint8_image(r) for r in _array(recon)] for recon in (left_recon, right_recon))
    cells = [
        image_tools.upscale(image_tools.strip([originals[i], left[i], right[i]]), SHEET_SCALE) for i in range(count)
    ]
    cell_h, cell_w = cells[0].shape
    columns = min(count, SHEET_COLUMNS)
    rows = -(-count // columns)
    top = _HEADER_BAND if model_names else 0
    pitch_x, pitch_y = cell_w + _CELL_GAP, _LABEL_BAND + cell_h + _CELL_GAP
    sheet = np.full((top + rows * pitch_y + _CELL_GAP, columns * pitch_x + _CELL_GAP), 255, dtype=np.uint8)
    origins = []
    for i, cell in enumerate(cells):
        x = _CELL_GAP + (i % columns) * pitch_x
        y = top + _CELL_GAP + (i // columns) * pitch_y
        sheet[y + _LABEL_BAND : y + _LABEL_BAND + cell_h, x : x + cell_w] = cell
        origins.append((x, y))
    return image_tools.to_png_bytes(_write_labels(sheet, origins, texts, model_names))


def sheet_cell_box(i: int, count: int, model_names: bool = False) -> tuple[int, int, int, int]:
    """Where cell ``i`` of a :func:`selection_sheet` of ``count`` images sits: (top, left, height, width) of its
    strip in pixels. For tests and for anyone cutting a sheet back into its images."""
    columns = min(count, SHEET_COLUMNS)
    cell_h, cell_w = 28 * SHEET_SCALE, (3 * 28 + 2 * 2) * SHEET_SCALE
    top = (_HEADER_BAND if model_names else 0) + _CELL_GAP + (i // columns) * (_LABEL_BAND + cell_h + _CELL_GAP)
    left = _CELL_GAP + (i % columns) * (cell_w + _CELL_GAP)
    return top + _LABEL_BAND, left, cell_h, cell_w


def _write_labels(
    sheet: np.ndarray, origins: list[tuple[int, int]], texts: list[str], model_names: tuple[str, str] | None
) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.fromarray(sheet)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    if model_names:
        draw.text((_CELL_GAP, 4), f"each: original | {model_names[0]} | {model_names[1]}", fill=0, font=font)
    for (x, y), text in zip(origins, texts):
        draw.text((x, y + 2), text, fill=0, font=font)
    return np.asarray(canvas, dtype=np.uint8)
