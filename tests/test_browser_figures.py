"""Figures drawn by plotly.js in Chromium (the copy the plotly package ships, so no server and no network):
nothing a reader needs falls outside the figure (issue 24: the Dense vs conv legend cut below class 8, the
difference heatmap's colour-scale title)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser import launch_chromium, require_browser
from tests.conftest import SEED
from vae.plots.charts import delta_heatmap
from vae.plots.studies import maps_grid


@pytest.fixture(scope="module")
def page():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser.new_page(viewport={"width": 1400, "height": 900})
        browser.close()


def draw(page, fig, tmp_path, width: int, height: int | None = None) -> None:
    path = tmp_path / "figure.html"
    size = {"default_width": f"{width}px"} | ({"default_height": f"{height}px"} if height else {})
    fig.write_html(path, include_plotlyjs=True, full_html=True, **size)
    page.goto(path.as_uri())
    page.wait_for_selector(".main-svg")


def inside(page, selector: str) -> list[bool]:
    """For each element matching ``selector``: whether its box lies within the figure's."""
    return page.evaluate(
        """(selector) => { const f = document.querySelector('.main-svg').getBoundingClientRect();
        return [...document.querySelectorAll(selector)].map((e) => { const r = e.getBoundingClientRect();
          return r.left >= f.left - 0.5 && r.right <= f.right + 0.5 && r.top >= f.top - 0.5 && r.bottom <= f.bottom + 0.5; }); }""",
        selector,
    )


def test_a_single_row_of_maps_shows_every_class_in_its_legend(page, tmp_path) -> None:
    rng = np.random.default_rng(SEED)
    labels = np.repeat(np.arange(10), 20)
    maps = {name: rng.normal(size=(200, 2)) for name in ("AE dense", "VAE dense", "AE conv", "VAE conv")}
    draw(page, maps_grid(maps, labels, columns=4), tmp_path, 1200)  # as the Dense vs conv tab draws it
    entries = inside(page, ".legend .traces")
    assert len(entries) == 10 and all(entries), entries


@pytest.mark.parametrize("width", [300, 380, 600])
def test_the_difference_heatmap_keeps_its_colour_scale_title(page, tmp_path, width) -> None:
    rng = np.random.default_rng(SEED)
    fig = delta_heatmap(rng.random((10, 10)), rng.random((10, 10)), names=("ae-2d (AE)", "vae-2d-conv (VAE)"))
    draw(page, fig, tmp_path, width, 450)  # a third of the Class overlap page, and wider
    assert inside(page, ".colorbar .cbtitle text") == [True]
    assert all(inside(page, ".gtitle"))
