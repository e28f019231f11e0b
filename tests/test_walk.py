"""What a newcomer does, in Chromium, on a fresh server over a private copy of the shipped models: train one
epoch and save it (the save's messages stay, the sidebar learns of the model), then a walk through every page
(hover, click, switch models and views, draw, upload, export) with no console error, no page error, and no
warning or traceback in the server's log."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.browser import chromium_browser, shipped_dashboard
from tests.conftest import REPO

OUTPUT = REPO / "test-output"
# What a server log must never hold after normal use: Python's warnings and tracebacks, Streamlit's own.
TROUBLE = re.compile(r"Traceback|Warning|WARNING|Error|ERROR|was created with a default value")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("walk")
    models = folder / "models"
    shutil.copytree(REPO / "models", models)  # the save writes here, never into the shipped store
    with shipped_dashboard(folder, VAE_MODELS_DIR=str(models)) as url:
        yield url, folder / "streamlit.log", models


@pytest.fixture(scope="module")
def browser(server):
    with chromium_browser() as browser:
        yield browser


def local(url: str) -> bool:
    return url.split("/")[2].split(":")[0] in ("127.0.0.1", "localhost")


class Watched:
    """A tab whose console errors, page errors and failed local requests are kept, to be asserted empty.

    Requests to other hosts are refused here, as on a machine without a network: Streamlit asks Google for
    the favicon of a Material icon, which the page does not need (tests/test_browser_planes.py checks that).
    Refused, they are not the page's errors, so the console's report of them is left out too.
    """

    def __init__(self, browser) -> None:
        self.tab = browser.new_page(viewport={"width": 1600, "height": 1000})
        self.problems: list[str] = []
        self.refused: list[str] = []
        self.tab.route("**/*", self._route)
        self.tab.on("console", self._console)
        self.tab.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.tab.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        self.tab.on(
            "requestfailed", lambda r: local(r.url) and self.problems.append(f"request failed: {r.url} {r.failure}")
        )

    def _route(self, route) -> None:
        if local(route.request.url):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def _console(self, message) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if "Failed to load resource" in message.text and where and not local(where):
            return  # one of the refused requests above
        self.problems.append(f"console: {message.text} ({where})")

    def open(self, url: str, page: str) -> None:
        """The app's root, then the page by its menu entry, as a newcomer gets there."""
        self.tab.goto(url)
        self.menu(page)

    def menu(self, page: str) -> None:
        self.tab.locator("[data-testid=stSidebarNav]").get_by_role("link", name=page, exact=True).click()
        self.tab.wait_for_timeout(500)


def log_trouble(log) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if TROUBLE.search(line)]


def fill(tab, label: str, value: str, nth: int = 0) -> None:
    """Type into the nth Streamlit input labelled ``label`` and commit it (Enter), as a person does."""
    box = tab.get_by_label(label, exact=True).nth(nth)
    box.fill(value)
    box.press("Enter")
    tab.wait_for_timeout(400)


def sidebar_options(tab, label: str) -> list[str]:
    tab.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text=label).first.click()
    tab.get_by_role("option").first.wait_for(timeout=10_000)
    options = tab.get_by_role("option").all_inner_texts()
    tab.keyboard.press("Escape")
    return options


def test_train_one_epoch_save_and_the_messages_stay(server, browser) -> None:
    url, log, models = server
    watched = Watched(browser)
    tab = watched.tab
    watched.open(url, "Train")
    tab.get_by_role("button", name="Train both").wait_for(timeout=120_000)
    for nth in (0, 1):  # the AE's column, then the VAE's: one small epoch each
        fill(tab, "Hidden layers", "32", nth)
        fill(tab, "Epochs", "1", nth)
        fill(tab, "Batch size", "1024", nth)
    tab.get_by_role("button", name="Train both").click()
    saves = tab.get_by_role("button", name="Save to the model store")
    saves.nth(1).wait_for(timeout=240_000)

    def press_save(name: str) -> None:
        # The VAE's form (the import form's "Save as" comes after both); Enter would submit the form itself.
        tab.get_by_label("Save as", exact=True).nth(1).fill(name)
        saves.nth(1).click()

    press_save("walk-vae")
    saved = tab.get_by_text("Saved as 'walk-vae': pick it in the sidebar.")
    saved.wait_for(timeout=120_000)
    tab.wait_for_timeout(3500)  # three redraws of the every-second fragment later...
    assert saved.is_visible()  # ...still said
    assert (models / "walk-vae" / "model.json").is_file()
    assert "walk-vae" in sidebar_options(tab, "Left model")  # the sidebar learnt of it on this page
    OUTPUT.mkdir(exist_ok=True)
    tab.screenshot(path=str(OUTPUT / "issue24-item1.png"))

    press_save("walk-vae")  # again: the name is taken
    taken = tab.get_by_text("A model named 'walk-vae' exists; tick 'Replace' to overwrite it.")
    taken.wait_for(timeout=30_000)
    tab.wait_for_timeout(3500)
    assert taken.is_visible()

    press_save("../evil name")
    refused = tab.get_by_text("invalid model name '../evil name'", exact=False)
    refused.wait_for(timeout=30_000)
    tab.wait_for_timeout(3500)
    assert refused.is_visible()
    tab.screenshot(path=str(OUTPUT / "issue24-item1-refusal.png"))
    assert not (models.parent / "evil name").exists()
    assert watched.problems == [], "\n".join(watched.problems)
    assert log_trouble(log) == []


def choose(tab, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar's select box ``label``, as a person does (open it, click the option)."""
    tab.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text=label).first.click()
    tab.get_by_role("option", name=option, exact=True).click()
    tab.wait_for_timeout(500)


def explorer_ready(tab) -> None:
    tab.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=180_000)
    tab.wait_for_timeout(300)


def test_a_walk_through_every_page(server, browser) -> None:
    url, log, _ = server
    watched = Watched(browser)
    tab = watched.tab
    tab.goto(url)
    tab.get_by_role("heading", name="What does an auto-encoder learn?").wait_for(timeout=120_000)
    # Home: the model names are whole in the sidebar's boxes (the description wraps under each).
    for label, name in (("Left model", "ae-2d"), ("Right model", "vae-2d")):
        box = tab.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(has_text=label).first
        # The box shows the chosen option in a text input: its value is the name, and it fits (nothing cut).
        value, fits = box.locator("input[role=combobox]").evaluate("i => [i.value, i.scrollWidth <= i.clientWidth]")
        assert value == name and fits, (label, value, fits)
    tab.locator("[data-testid=stMetric]").first.hover()  # the kNN-5 tooltips are help icons: hovering is harmless

    # Latent explorer: hover empty space and a point, click, switch the pair and the view.
    watched.menu("Latent explorer")
    explorer_ready(tab)

    def hover_and_click(side: str) -> None:
        x, y = tab.evaluate("(s) => globalThis.latentExplorer.probe.empty(s, 0.2, 0.2)", side)
        px, py = tab.evaluate("([s, x, y]) => globalThis.latentExplorer.probe.client(s, x, y)", [side, x, y])
        tab.mouse.move(px, py, steps=4)
        tab.wait_for_timeout(300)
        tab.mouse.click(px, py)
        tab.wait_for_timeout(1500)

    hover_and_click("left")
    hover_and_click("right")
    tab.mouse.wheel(0, -300)
    choose(tab, "Left model", "ae-16d")
    choose(tab, "Right model", "vae-16d")
    explorer_ready(tab)
    hover_and_click("left")
    tab.get_by_text("Decode in the browser").click()  # the server's planes, then back
    tab.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
    tab.get_by_text("Decode in the browser").click()
    explorer_ready(tab)
    choose(tab, "Left model", "ae-2d")
    choose(tab, "Right model", "vae-2d")
    explorer_ready(tab)

    # Training timeline: play a little, then scrub.
    watched.menu("Training timeline")
    play = tab.get_by_role("button", name=re.compile("Play|Replay"))
    play.wait_for(timeout=120_000)
    play.click()
    tab.wait_for_timeout(1500)

    # Class overlap and Experiments: every tab opened.
    watched.menu("Class overlap")
    tab.get_by_text("Headline numbers").wait_for(timeout=180_000)
    watched.menu("Experiments")
    tabs = tab.get_by_role("tab")
    tabs.first.wait_for(timeout=120_000)
    for k in range(tabs.count()):
        # A tab's first opening draws its Plotly figures on the page's main thread: seconds on a busy machine.
        tabs.nth(k).click(timeout=120_000)
        tab.wait_for_timeout(400)

    # Your digit: draw a 7, zoom and pan a plane.
    watched.menu("Your digit")
    tab.wait_for_function("globalThis.yourDigit && globalThis.yourDigit.ready", timeout=120_000)
    box = tab.locator("canvas[aria-label^='drawing canvas']").bounding_box()
    tab.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.2 * box["height"])
    tab.mouse.down()
    for fx, fy in ((0.75, 0.2), (0.45, 0.85)):
        tab.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"], steps=15)
    tab.mouse.up()
    tab.get_by_text("Download it as MNIST would store it").wait_for(timeout=60_000)
    plane = tab.locator("[data-testid=digit-plane-left]").bounding_box()
    tab.mouse.move(plane["x"] + plane["width"] / 2, plane["y"] + plane["height"] / 2)
    tab.mouse.wheel(0, -300)
    with tab.expect_download() as drawn:
        tab.get_by_text("Download it as MNIST would store it").click()
    assert drawn.value.suggested_filename == "my-digit.png"

    # Exports: the embeddings as CSV.
    watched.menu("Exports")
    button = tab.get_by_role("button", name=re.compile("CSV", re.I)).first
    button.wait_for(timeout=120_000)
    with tab.expect_download() as csv:
        button.click()
    assert csv.value.suggested_filename.endswith(".csv")
    tab.wait_for_timeout(500)

    OUTPUT.mkdir(exist_ok=True)
    tab.screenshot(path=str(OUTPUT / "walk-last-page.png"))
    assert watched.problems == [], "\n".join(watched.problems)
    assert log_trouble(log) == []
