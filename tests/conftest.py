"""Shared fixtures: small seeded data, so every test runs in seconds on two CPU cores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vae.studies.runner import StudySettings

SEED = 189212
REPO = Path(__file__).resolve().parents[1]
REAL_RAW = REPO / "data" / "MNIST" / "raw"

# Under CI (REQUIRE_BROWSER=1, or CI=true as the CI machine sets it) nothing may skip: a skip there means a
# missing install step (Chromium, Playwright, Node, a dataset, the shipped models' timelines) that a green
# run would hide. The skips CI allows, by test id and why; none today (the one platform skip, FIFOs on
# Windows, never fires on the CI's Linux).
ALLOWED_CI_SKIPS: dict[str, str] = {}


def under_ci() -> bool:
    import os

    return os.environ.get("REQUIRE_BROWSER") == "1" or os.environ.get("CI", "").lower() in ("1", "true")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under CI, a skipped test is reported as failed, with the skip's reason (xfail is left alone)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and under_ci() and item.nodeid not in ALLOWED_CI_SKIPS:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where nothing may skip (tests/conftest.py, ALLOWED_CI_SKIPS): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Under CI, a module that skips itself at import (pytest.importorskip at the top) fails instead."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and under_ci():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid} skipped under CI, where nothing may skip: {reason}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the module's UMAP fit (the ``fitted_umap`` fixture) are marked ``fits_umap``: numba
    compiles umap-learn's kernels anew in each process (10-25 s), so a run may leave them out with
    ``-m "not fits_umap"`` (as scripts/mutants.py does for every mutant)."""
    for item in items:
        if "fitted_umap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fits_umap)


@contextlib.contextmanager
def torch_threads(count: int = 1) -> Iterator[None]:
    """Torch on ``count`` threads inside the block. On two shared cores one thread per op avoids the
    oversubscription stalls (10x slower under load) of training or measuring beside other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """A module's tests on one torch thread (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_onnx_exports() -> None:
    """The repository's ONNX export cache for the whole run (servers started by tests inherit it), which
    ``scripts/setup.sh`` fills for the shipped models: exports are keyed by the weights' SHA-256 and every
    graph is checked against the SHA-256 in its manifest when read, so sharing them cannot serve one model's
    graphs for another, and the tests that open the explorer need not export the same models again. Tests of
    the cache itself use folders of their own."""
    import os

    os.environ.setdefault("VAE_ONNX_DIR", str(REPO / ".cache" / "onnx"))


@pytest.fixture(scope="session", autouse=True)
def fewer_judged_samples() -> Iterator[None]:
    """Every save measures the judge's verdict on :data:`vae.training.saving.SAMPLES` decoded samples (10,000:
    some 10-20 s on two cores); the suite's many small saves read 500, enough to check that the figures are
    recorded. tests/test_shipped_models.py checks the shipped models' 10,000-sample figures, and
    tests/test_judge.py the measure itself at the sizes it names."""
    from vae.training import saving

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(saving, "SAMPLES", 500)
        # The processes the suite starts (the fenced import's workers, servers) read it from the environment.
        patch.setenv(saving.JUDGED_IMAGES_ENV, "500")
        yield


@pytest.fixture
def images() -> torch.Tensor:
    """Eight random images, float ``[8, 1, 28, 28]`` in [0, 1], with an all-black and an all-white one
    on purpose: the corners of the input range are where log(0) and saturation bugs hide."""
    generator = torch.Generator().manual_seed(SEED)
    x = torch.rand(8, 1, 28, 28, generator=generator)
    x[0] = 0.0
    x[1] = 1.0
    return x


@pytest.fixture(scope="session")
def mnist_subset() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """2,000 real training and 500 real test images (uint8 ``[N, 28, 28]``) with labels.

    Real digits, not noise, so "training reduces the loss" and the metric thresholds mean something.
    Skips when the data has not been fetched (``python -m vae.data fetch``; CI always fetches first).
    """
    if not all((REAL_RAW / name).is_file() for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")):
        pytest.skip("MNIST not fetched: run `python -m vae.data fetch`")
    from vae.data import load_mnist

    train_images, train_labels = load_mnist("train", REPO / "data")
    test_images, test_labels = load_mnist("test", REPO / "data")
    return train_images[:2000], train_labels[:2000], test_images[:500], test_labels[:500]


def open_dashboard(page: str | None = None, timeout: float = 180):
    """An AppTest of dashboard.py that has run once (Home) and, if ``page`` is given, switched to it.

    The environment (VAE_MODELS_DIR, VAE_CACHE_DIR) is the caller's to set.
    """
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=timeout)
    at.run()
    assert not at.exception
    if page is not None:
        at.switch_page(page)
        at.run()
        assert not at.exception
    return at


def chart_titles(at) -> list[str]:
    """The titles of the Plotly charts an AppTest shows, in page order."""
    import json

    return [json.loads(chart.proto.spec)["layout"]["title"]["text"] for chart in at.get("plotly_chart")]


def planes_data(at) -> dict | None:
    """The data the explorer's in-page planes (the latent_planes component) were given, or None."""
    import json

    for element in at.main:
        if getattr(element, "type", None) == "bidi_component" and element.proto.component_name == "latent_planes":
            return json.loads(element.proto.json)
    return None


def plane_titles(at) -> list[str]:
    """The explorer's plane titles, whether the page draws the planes (the component) or the server (Plotly)."""
    data = planes_data(at)
    return [plane["title"] for plane in data["planes"]] if data else chart_titles(at)


def image_captions(at) -> list[str]:
    """The captions of every image an AppTest shows, in page order."""
    return [img.caption for image in at.image for img in image.proto.imgs]


# The smallest settings every study runs with in the tests: one epoch, two sizes, two betas, two weights.
TINY_STUDY = StudySettings(
    epochs=1,
    batch_size=64,
    dims=(2, 4),
    betas=(0.0, 2.0),
    class_weights=(0.0, 50.0),
    map_points=200,
    seed=SEED,
    graph_hidden=(32,),
    graph_epochs=1,
    graph_batch_size=64,
    long_epochs=1,
    long_batch_size=64,
)


@pytest.fixture
def shown_media(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The bytes of every image and download an AppTest run hands Streamlit, by file id (which ends each
    element's URL): AppTest drops its media store after each run, so they are recorded as they are stored."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    recorded: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        recorded[file_id] = path_or_data if isinstance(path_or_data, bytes) else Path(path_or_data).read_bytes()
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return recorded


def media_pixels(recorded: dict[str, bytes], url: str):
    """The uint8 pixels ``[H, W]`` of the PNG behind an element's ``url`` (see :func:`shown_media`)."""
    import io

    import numpy as np
    from PIL import Image

    (data,) = [blob for file_id, blob in recorded.items() if file_id in url]
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def image_by_caption(at, recorded: dict[str, bytes], caption: str):
    """The pixels of the image an AppTest shows under a caption starting with ``caption``."""
    (url,) = [img.url for image in at.image for img in image.proto.imgs if img.caption.startswith(caption)]
    return media_pixels(recorded, url)
