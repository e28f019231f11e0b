"""The page's JavaScript against the Python it mirrors: `node --test static/tests/` on fixtures made here.

The views' inverses and transforms (static/lib/views.js vs vae/projections.py), a plane's points file
(static/lib/assets.js vs app.web_planes.pack_points), the byte conversion
(vs vae.images.to_uint8_image), Pillow's LANCZOS resize and MNIST's recipe (static/lib/image.js vs
vae/digits.py): each fixture is computed by the Python code the page must agree with. The lib modules that
need no fixture (static/lib/ticks.js) run in the same `node --test`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.path import Path as PolygonPath
from PIL import Image, ImageDraw

from app.web_planes import pack_mask, pack_points, view_spec
from tests.conftest import REPO, SEED
from vae.digits import read_image, to_mnist
from vae.images import to_uint8_image
from vae.projections import NeighbourInverse, _NeighbourInterpolator, make_view


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).decode()


def view_fixture(
    view, codes: np.ndarray, points: np.ndarray, queries: np.ndarray, spec: dict, inverse, transform
) -> dict:
    return {
        "spec": spec,
        "dim": int(codes.shape[1]),
        "embedding": view.embedding_.tolist(),
        "codes": codes.tolist(),
        "points": points.tolist(),
        "inverse": inverse(points).tolist(),
        "queries": queries.tolist(),
        "transform": transform(queries).tolist(),
    }


def views() -> dict:
    rng = np.random.default_rng(SEED)
    codes = (rng.normal(size=(400, 6)) * [3, 2, 1, 1, 0.5, 0.2]).astype(np.float32)
    pca, identity = make_view("pca").fit(codes), make_view("identity").fit(codes)
    # Spots inside and far outside the points, and two exactly on points (the inverse is then exact).
    far = np.array([[40.0, -35.0], [0.0, 0.0], [1e-3, -2e-3]], dtype=np.float32)
    out = {}
    # Each spec is the one the page is sent (app.web_planes.view_spec).
    for name, view in (("pca", pca), ("identity", identity)):
        points = np.concatenate([rng.normal(size=(20, 2)) * 3, far, view.embedding_[[3, 77]]]).astype(np.float32)
        out[name] = view_fixture(
            view, codes, points, codes[:15] + 0.1, view_spec(view), view.inverse_transform, view.transform
        )
    # A non-linear layout (as UMAP's): the page has only its points, and maps both ways through neighbours.
    embedding = np.stack([np.sin(codes[:, 0]) * 5 + codes[:, 1], codes[:, 2] ** 2 - codes[:, 3]], axis=1).astype(
        np.float32
    )

    class Layout:
        name = "umap"
        embedding_ = embedding

    points = np.concatenate([rng.normal(size=(20, 2)) * 4, far, embedding[[5, 250]]]).astype(np.float32)
    queries = np.concatenate([codes[:10] + rng.normal(size=(10, 6)).astype(np.float32) * 0.3, codes[[42]]])
    spec = view_spec(Layout)
    assert spec["k"] == NeighbourInverse(embedding, codes).k  # the page averages as many neighbours as the server
    inverse, forward = NeighbourInverse(embedding, codes), _NeighbourInterpolator(codes, embedding)
    out["neighbours"] = view_fixture(Layout, codes, points, queries, spec, inverse, forward)
    # Another k, so the page is seen to take k from the spec rather than knowing it.
    inverse, forward = NeighbourInverse(embedding, codes, k=3), _NeighbourInterpolator(codes, embedding, k=3)
    out["neighbours k=3"] = view_fixture(Layout, codes, points, queries, {**spec, "k": 3}, inverse, forward)

    # Three points and k = 8: every point is a neighbour. The expected values are brute force, not the
    # server's class, so a bug shared by both sides (a neighbour too few) still fails here.
    class Few:
        name = "umap"
        embedding_ = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)

    few_codes = np.eye(3, dtype=np.float32)
    few_points = np.array([[1.0, 1.0], [0.5, 0.0], [-2.0, 3.0], [0.0, 1.0]], dtype=np.float32)
    out["neighbours, fewer points than k"] = view_fixture(
        Few,
        few_codes,
        few_points,
        few_codes * 0.5 + 0.25,
        {**spec, "k": 8},
        lambda p: brute_force_neighbours(Few.embedding_, few_codes, p, 8),
        lambda q: brute_force_neighbours(few_codes, Few.embedding_, q, 8),
    )
    # [1, 1] is 1 from two points and sqrt(2) from the third: weights [.26, .37, .37], never [0, .5, .5].
    np.testing.assert_allclose(
        out["neighbours, fewer points than k"]["inverse"][0], [0.2612, 0.3694, 0.3694], atol=1e-4
    )
    return out


def brute_force_neighbours(sources: np.ndarray, values: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Inverse-distance weights of the min(k, N) nearest sources, by a full sort: the definition, written out."""
    out = []
    for query in np.asarray(queries, dtype=np.float64):
        distances = np.linalg.norm(sources.astype(np.float64) - query, axis=1)
        nearest = np.argsort(distances, kind="stable")[:k]
        d = distances[nearest]
        weights = (d == 0).astype(np.float64) if (d == 0).any() else 1 / d
        out.append(weights @ values[nearest].astype(np.float64) / weights.sum())
    return np.array(out, dtype=np.float32)


def points_pack() -> dict:
    """A plane's points file as app/web_planes.py writes it, and the arrays it holds (lib/assets.js reads it)."""
    rng = np.random.default_rng(SEED + 2)
    n, d = 7, 3
    embedding, codes = rng.normal(size=(n, 2)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    return {
        "count": n,
        "dim": d,
        "pack": b64(np.frombuffer(pack_points(embedding, codes, labels), np.uint8)),
        "embedding": embedding.ravel().tolist(),
        "codes": codes.ravel().tolist(),
        "labels": labels.tolist(),
    }


def selection_cases() -> dict:
    """Points, a concave lasso and a box, with what matplotlib's Path finds inside them (lib/selection.js is
    checked against it), the server's packed form of those selections, and codes with their spread and
    nearest neighbours computed here in NumPy."""
    rng = np.random.default_rng(SEED + 3)
    n = 2000
    points = rng.normal(size=(n, 2)).astype(np.float32)
    # A "C" shape: concave, so a bounding-box or convex-hull test would pass points in its mouth.
    lasso = np.array([[-2, -2], [2, -2], [2, -1], [-1, -1], [-1, 1], [2, 1], [2, 2], [-2, 2]], dtype=np.float64)
    box = np.array([[-0.5, -0.3], [1.2, -0.3], [1.2, 0.9], [-0.5, 0.9]])
    cases = []
    for name, polygon in (("lasso", lasso), ("box", box)):
        inside = np.flatnonzero(PolygonPath(polygon).contains_points(points.astype(np.float64)))
        cases.append(
            {
                "name": name,
                "polygon": polygon.ravel().tolist(),
                "inside": inside.tolist(),
                "packed": pack_mask(inside, n),
            }
        )
    codes = rng.normal(size=(300, 5)).astype(np.float32)
    chosen = np.sort(rng.choice(300, size=40, replace=False))
    view = codes[:, :2]
    spread = (
        np.linalg.norm(view[chosen] - view[chosen].mean(0), axis=1).mean()
        / np.linalg.norm(view - view.mean(0), axis=1).mean()
    )
    distances = np.linalg.norm(codes.astype(np.float64) - codes[7].astype(np.float64), axis=1)
    distances[7] = np.inf
    nearest = np.argsort(distances, kind="stable")[:8]
    return {
        "count": n,
        "points": points.ravel().tolist(),
        "cases": cases,
        "codes": codes.ravel().tolist(),
        "chosen": chosen.tolist(),
        "spread": float(spread),
        "nearest": nearest.tolist(),
        "nearest_distances": distances[nearest].tolist(),
    }


def byte_cases() -> dict:
    values = [0.0, 1.0, 0.5, -0.2, 1.7, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.25, 0.999, 1e-9]
    expected = to_uint8_image(np.array(values + [np.nan] + [0.0] * (784 - len(values) - 1)).reshape(28, 28))
    return {"values": values + [None], "expected": expected.ravel()[: len(values) + 1].tolist()}


def lanczos_cases() -> list[dict]:
    rng = np.random.default_rng(SEED + 1)
    cases = []
    for (w, h), (ow, oh) in [
        ((37, 53), (14, 20)),
        ((200, 90), (20, 9)),
        ((5, 3), (20, 12)),
        ((64, 64), (20, 20)),
        ((20, 33), (12, 20)),
        ((1, 40), (1, 20)),
        ((33, 203), (3, 20)),
        ((90, 200), (9, 20)),
        ((21, 100), (4, 20)),
        ((40, 1), (20, 1)),
    ]:
        pixels = (rng.random((h, w)) ** 3 * 255).astype(np.uint8)
        resized = np.asarray(Image.fromarray(pixels).resize((ow, oh), Image.LANCZOS))
        cases.append(
            {"width": w, "height": h, "out_width": ow, "out_height": oh, "input": b64(pixels), "output": b64(resized)}
        )
    return cases


def drawing(strokes, width=280, height=280, ink=255, paper=0, line=18) -> Image.Image:
    image = Image.new("RGBA", (width, height), (paper, paper, paper, 255))
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line(stroke, fill=(ink, ink, ink, 255), width=line, joint="curve")
    return image


def mnist_cases() -> list[dict]:
    images = {
        "seven": drawing([[(70, 56), (210, 56), (126, 238)]]),
        "one": drawing([[(150, 40), (135, 240)]]),
        "wide dash": drawing([[(20, 140), (260, 150)]], line=10),
        "corner dot": drawing([[(250, 250), (262, 262)]]),
        "two": drawing([[(80, 90), (140, 50), (200, 90), (80, 230), (210, 230)]], line=22),
        "dark ink on paper": drawing([[(100, 60), (180, 60), (140, 220)]], ink=20, paper=235),
        "grey strokes": drawing([[(60, 60), (220, 220)], [(220, 60), (60, 220)]], ink=140),
        "blank": drawing([]),
    }
    cases = []
    for name, image in images.items():
        png = io.BytesIO()
        image.save(png, format="PNG")
        grey = read_image(png.getvalue())
        try:
            expected = b64(np.rint(to_mnist(grey) * 255))
        except ValueError:
            expected = None
        rgba = np.asarray(image.convert("RGBA"))
        cases.append(
            {"name": name, "width": image.width, "height": image.height, "rgba": b64(rgba), "expected": expected}
        )
    return cases


def test_the_page_modules_compute_what_the_server_computes(tmp_path) -> None:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but node is missing: the page's modules cannot be tested")
        pytest.skip("no node on PATH")
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(
        json.dumps(
            {
                "views": views(),
                "bytes": byte_cases(),
                "lanczos": lanczos_cases(),
                "mnist": mnist_cases(),
                "points": points_pack(),
                "selection": selection_cases(),
            }
        )
    )
    # The timeline player's helpers need no fixtures: tests/test_timeline_js.py runs them.
    tests = sorted(str(p) for p in (REPO / "static" / "tests").glob("*.test.js") if "timeline" not in p.name)
    assert len(tests) >= 2
    proc = subprocess.run(
        [node, "--test", *tests],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FRONTEND_FIXTURES": str(fixtures)},
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout
    assert "# skipped 0" in proc.stdout  # a test file that found no fixtures skips, which would pass unseen
