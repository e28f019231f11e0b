"""notebooks/explore.ipynb runs top to bottom (nbclient, a real kernel) and shows its widgets."""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from tests.conftest import REAL_RAW, REPO

NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.mark.skipif(not (REAL_RAW / "t10k-images-idx3-ubyte").is_file(), reason="MNIST not fetched")
def test_the_notebook_runs_top_to_bottom_and_shows_two_widgets(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Committed without outputs: what a person opens is the code, not a stale run.
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    widgets = [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
    assert len(widgets) == 2
    texts = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    assert "200" in texts  # the two hundred sevens selected
    assert "['my-ae', 'my-vae']" in texts
