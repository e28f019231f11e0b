"""Several browser sessions click the explorer at once while a tiny training runs: no errors, no leaks.

A short version of ``benchmarks/load.py`` (3 sessions x 4 clicks, a 1-epoch training in a 4th context):
every session gets a decoded image for every click, captioned with *its own* click's coordinates, never
another session's; no page errors, no Streamlit exception boxes, and the training finishes.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.browser import shipped_dashboard
from tests.conftest import REPO

SESSIONS, CLICKS = 3, 4


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (REPO / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip("MNIST not fetched")
    # The server path, where every click is a rerun.
    with shipped_dashboard(tmp_path_factory.mktemp("load"), OMP_WAIT_POLICY="PASSIVE", VAE_PLANES="server") as url:
        yield url


def test_concurrent_sessions_see_only_their_own_clicks_while_training(server) -> None:
    from benchmarks.load import LoadConfig, digest, drive

    cfg = LoadConfig(
        sessions=SESSIONS,
        clicks=CLICKS,
        timeout_s=60,
        load_timeout_s=120,
        train=True,
        train_hidden="16",
        train_epochs=1,
        train_batch=256,
        train_timeout_s=60,
        verbose=False,
    )
    raw = asyncio.run(drive(server, cfg))
    d = digest(raw)
    training = raw["training"]
    assert training.get("started"), f"training did not start: {training.get('error')}"
    assert d["errors"] == [], "\n".join(d["errors"])
    assert d["foreign"] == [], f"sessions showed another session's coordinates: {d['foreign']}"
    for p in d["per_session"]:
        assert p["images"] == CLICKS, f"session {p['session']} got {p['images']}/{CLICKS} images"
    assert training.get("finished"), f"training did not finish: {training.get('progress')}"
    assert training.get("ok"), f"training ended badly: {training.get('status')}"
    assert training.get("errors") == [], training.get("errors")
