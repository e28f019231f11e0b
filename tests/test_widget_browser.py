"""The notebook widget in a real JupyterLab, in Chromium: started by the test on a free localhost port and
stopped after; every request to another host is blocked and recorded. The kernel is read and driven through
a second client of the notebook's own kernel (jupyter_client), as a person's next cell would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import numpy as np
import pytest

from benchmarks._browser import free_port
from tests.browser import block_other_hosts, chromium_browser, require_browser
from tests.conftest import REAL_RAW, REPO
from tests.test_site_browser import hover_empty, pixels

OUTPUT = REPO / "test-output"
TOKEN = "widget-test"
SETUP = 'from vae.widget import LatentPlanes\nw = LatentPlanes("ae-2d", "vae-2d")\nw'


class JupyterLab:
    """``jupyter lab`` on a free port of 127.0.0.1, its folders (root, runtime, config, workspaces) in ``home``."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime = home / "runtime"
        for sub in ("root", "runtime", "config", "data", "workspaces"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OMP_WAIT_POLICY": "PASSIVE",
            "JUPYTER_RUNTIME_DIR": str(self.runtime),
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_PLATFORM_DIRS": "1",
        }

    def start(self, timeout: float = 90) -> None:
        self.log = open(self.home / "lab.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.home / 'root'}",
                f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
                # window.jupyterapp: the test runs the notebook's cells through JupyterLab's own command.
                "--LabApp.expose_app_in_browser=True",
                "--allow-root",  # CI runs as root
            ],
            cwd=self.home / "root", env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        pytest.fail(f"JupyterLab did not start: {(self.home / 'lab.log').read_text()[-3000:]}")

    def api(self, path: str):
        request = urllib.request.Request(f"{self.url}/api/{path}", headers={"Authorization": f"token {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def wait_for_idle_kernel(self, page, timeout: float = 90) -> None:
        """Until the notebook's kernel has started and is idle (the page opened the notebook's session).

        Waits in ``page`` (not time.sleep): see :func:`tests.browser.block_other_hosts`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sessions = self.api("sessions")
            if sessions and sessions[0]["kernel"]["execution_state"] == "idle":
                return
            page.wait_for_timeout(500)
        pytest.fail(f"the notebook's kernel was not idle after {timeout} s: {self.api('sessions')}")

    def kernel_client(self):
        """A second client of the one running kernel (the notebook's)."""
        from jupyter_client import BlockingKernelClient

        (session,) = self.api("sessions")
        client = BlockingKernelClient(connection_file=str(self.runtime / f"kernel-{session['kernel']['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=30)
        return client

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def kernel_json(client, expression: str, first: str = ""):
    """``expression`` evaluated in the kernel (after the statements ``first``), as JSON."""
    printed: list[str] = []

    def output(message):
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            printed.append("\n".join(message["content"]["traceback"]))

    reply = client.execute_interactive(
        f"{first}\nimport json\nprint(json.dumps({expression}))", output_hook=output, timeout=60
    )
    assert reply["content"]["status"] == "ok", "".join(printed)
    return json.loads("".join(printed))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_browser()
    if not (REAL_RAW / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    server = JupyterLab(tmp_path_factory.mktemp("lab"))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SETUP)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, server.home / "root" / "planes.ipynb")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def notebook_page(lab):
    """The notebook open in JupyterLab, its cell run, the widget drawn; (page, kernel client, outside requests)."""
    with chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        outside = block_other_hosts(page, urlparse(lab.url).netloc)
        page.goto(f"{lab.url}/lab/tree/planes.ipynb?token={TOKEN}")
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell')", timeout=90_000)
        lab.wait_for_idle_kernel(page)
        # Not awaited: the command's promise settles when the cell has run, and the widget's page waits below.
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        page.wait_for_function("globalThis.latentExplorer && globalThis.latentExplorer.ready", timeout=180_000)
        client = lab.kernel_client()
        try:
            yield page, client, outside
        finally:
            client.stop_channels()
            page.close()


def test_the_widget_draws_both_planes_and_hovering_decodes_in_the_page(notebook_page):
    page, client, outside = notebook_page
    for side in ("left", "right"):
        assert page.evaluate(f"globalThis.latentExplorer.probe.count('{side}')") == 10_000
    # Two empty spots of each plane, two different digits: the decoders run in the page.
    for side in ("left", "right"):
        hover_empty(page, side, 0.25, 0.25)
        first = pixels(page, side)
        hover_empty(page, side, 0.75, 0.75)
        second = pixels(page, side)
        assert first.max() > 0 and second.max() > 0, side
        assert np.abs(first.astype(int) - second.astype(int)).max() > 30, side
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "widget.png"), full_page=True)
    assert outside == []


def test_a_click_sets_pinned_in_the_kernel(notebook_page):
    page, client, outside = notebook_page
    index = 7
    x, y = page.evaluate(f"globalThis.latentExplorer.probe.point('right', {index})")
    px, py = page.evaluate(f"globalThis.latentExplorer.probe.client('right', {x}, {y})")
    page.mouse.click(px, py)
    deadline = time.monotonic() + 30
    pinned = None
    while time.monotonic() < deadline:
        pinned = kernel_json(client, "w.pinned")
        if pinned and pinned.get("index") is not None:
            break
        page.wait_for_timeout(300)
    assert pinned is not None and pinned["plane"] == "right"
    # The click hit image `index` (or a neighbour drawn on top of it at this size): its code is that image's.
    hit = pinned["index"]
    code = kernel_json(client, f"w.codes('right')[{hit}].tolist()")
    assert pinned["code"] == pytest.approx(code, abs=1e-6)
    embedded = kernel_json(client, f"w.embedding('right')[{hit}].tolist()")
    assert np.hypot(*(np.asarray(embedded) - [x, y])) < 0.2
    assert outside == []


def test_setting_pinned_from_python_moves_the_pin_in_the_page(notebook_page):
    page, client, outside = notebook_page
    spot = page.evaluate("globalThis.latentExplorer.probe.empty('left', 0.3, 0.7)")
    kernel_json(client, f"(setattr(w, 'pinned', {{'plane': 'left', 'point': [{spot[0]}, {spot[1]}]}}), None)[1]")
    page.wait_for_function(
        """([x, y]) => {
            const pins = globalThis.latentExplorer.probe.pins('left');
            return pins.length === 1 && Math.abs(pins[0][0] - x) < 1e-6 && Math.abs(pins[0][1] - y) < 1e-6;
        }""",
        arg=spot,
        timeout=20_000,
    )
    # The digit shown is the decoder's at that spot (the kernel's code for it, decoded by the page's model).
    caption = page.evaluate("globalThis.latentExplorer.probe.caption('left')")
    assert "(pinned)" in caption
    assert kernel_json(client, "w.pinned['code']") == pytest.approx(spot, abs=1e-5)
    # ... and the page's pixels are the model's decode of the pinned code, as torch computes it in the kernel.
    decode = (
        "import torch\nwith torch.no_grad():\n    decoded = w.model('left').decode(torch.tensor([w.pinned['code']]))"
    )
    expected = kernel_json(client, "decoded.reshape(-1).tolist()", first=decode)
    shown = pixels(page, "left").reshape(-1).astype(float) / 255
    assert np.abs(shown - np.clip(expected, 0, 1)).max() <= 2 / 255
    assert outside == []


def test_the_grid_set_from_python_is_decoded_in_the_page(notebook_page):
    page, client, outside = notebook_page
    kernel_json(client, "None", first="w.grid = 8")
    grid = page.locator("canvas[data-testid=grid-right]")
    grid.wait_for(timeout=20_000)
    page.wait_for_function(
        "() => { const c = document.querySelector('canvas[data-testid=grid-right]');"
        " return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 0 && v > 100); }",
        timeout=20_000,
    )
    assert grid.evaluate("c => [c.width, c.height]") == [8 * 28, 8 * 28]
    kernel_json(client, "None", first="w.grid = 0")
    grid.wait_for(state="detached", timeout=20_000)
    assert outside == []


def test_the_selection_travels_both_ways(notebook_page):
    page, client, outside = notebook_page
    # As a lasso ends (the page's own selection API): the kernel's widget.selection follows.
    page.evaluate("globalThis.latentExplorer.select([40, 3, 17])")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and kernel_json(client, "w.selection") != [3, 17, 40]:
        page.wait_for_timeout(300)
    assert kernel_json(client, "w.selection") == [3, 17, 40]
    # Set in Python: both planes draw it.
    kernel_json(client, "None", first="w.selection = list(range(100, 200))")
    page.wait_for_function("globalThis.latentExplorer.selection().length === 100", timeout=20_000)
    assert page.evaluate("globalThis.latentExplorer.selection()") == list(range(100, 200))
    for side in ("left", "right"):
        assert page.evaluate(f"globalThis.latentExplorer.probe.drawnSelection('{side}')") == list(range(100, 200))
    kernel_json(client, "None", first="w.selection = []")
    page.wait_for_function("globalThis.latentExplorer.selection().length === 0", timeout=20_000)
    assert outside == []
