"""The Experiments page's building blocks: a study's result loaded (shipped or recomputed), its charts,
tables and image strips, and the recompute controls that queue a study on the server's training queue.

``app_pages/experiments.py`` lays out one tab per study from these.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import cache, state
from vae.data import DATASETS, class_names
from vae.images import strip, upscale
from vae.jobs import StudyJob
from vae.metrics import latent_dimensions
from vae.plots.studies import maps_grid
from vae.store import StoredModel
from vae.studies import runner
from vae.studies.registry import get_study
from vae.studies.runner import ExperimentFileError, StudyResult

TABLE_COLUMNS = {
    "label": "model",
    "test_mse_per_pixel": "MSE / pixel",
    "test_recon": "recon (loss units)",
    "test_kl": "KL (nats)",
    "knn5_accuracy": "kNN-5",
    "silhouette": "silhouette",
    "overlap": "overlap",
    "active_units": "active units",
    "parameters": "parameters",
    "inverse_error": "|E(D(z)) - z|² (test codes)",
    "inverse_error_random": "|E(D(z)) - z|² (random codes)",
    "train_seconds": "train s",
}
MAPS_HELP = "2,000 test images; each panel has its own scale. Click a class in the legend to hide it everywhere."


def load(study: str) -> StudyResult | None:
    """The study's result: this machine's recompute if there is one (the user picks), else the shipped copy."""
    found = {}
    for source, directory in cache.experiment_dirs(state.dataset()).items():
        path = directory / f"{study}.json"
        if path.is_file():
            found[source] = (directory, path.stat().st_mtime_ns)
    if not found:
        st.info(
            f"No result for this study on {DATASETS[state.dataset()].title} yet: none is shipped with the project and "
            f"none has been recomputed here. Recompute it below, or run "
            f"`python -m vae.experiments run --study {study} --dataset {state.dataset()}`."
        )
        return None
    source = next(iter(found))
    if len(found) > 1:
        source = st.radio(
            "Result",
            list(found),
            horizontal=True,
            key=f"{study}_source",
            format_func={"shipped": "shipped with the project", "recomputed": "your recompute"}.get,
        )
    directory, stamp = found[source]
    try:
        result = cache.experiment(str(directory), study, stamp)
    except ExperimentFileError as error:
        st.error(f"The {source} result cannot be used: {error}")
        return None
    took = f"{result.seconds / 60:.0f} min" if result.seconds >= 60 else f"{result.seconds:.0f} s"
    st.caption(
        f"{source.capitalize()} result: {DATASETS[result.settings.dataset].title}, "
        f"{get_study(study).describe_training(result.settings)}; measured on the 10,000 test images; computed "
        f"{result.created} in {took}."
    )
    return result


def maps(result: StudyResult, keys: list[str], titles: dict[str, str], **options) -> go.Figure:
    """Small multiples of the study's 2-D maps ``keys``, classes named as the study's dataset names them."""
    return maps_grid(
        {k: result.maps[k] for k in keys},
        result.labels,
        titles,
        class_names=class_names(result.settings.dataset),
        **options,
    )


def chart(figure: go.Figure, key: str) -> None:
    st.plotly_chart(figure, key=key, theme=None, width="stretch")


# The shipped 20-D VAE (beta = 1, 60 s of training): beside the 2-D beta sweep, what beta = 1 keeps of 20.
YARDSTICK = "vae-20d-60s"


@st.cache_data(max_entries=4, show_spinner="Measuring the 20-D yardstick's dimensions on the test images…")
def _dimensions(path: str, weights_sha256: str, directory: str) -> pd.DataFrame:
    model, _ = cache.model(path, weights_sha256)
    images, _ = cache.model_data(path, weights_sha256, "test", directory)
    return latent_dimensions(model, images).sort_values("kl", ascending=False, kind="stable").reset_index(drop=True)


def yardstick_dimensions(dataset: str) -> tuple[StoredModel, pd.DataFrame] | None:
    """The yardstick of ``dataset`` in the store and its dimensions over the test images (``latent_dimensions``,
    by KL, largest first); None when the store has no such model (it is trained on MNIST only)."""
    stored = next(
        (m for m in cache.model_list(str(cache.models_dir())) if m.name == YARDSTICK and m.dataset_name == dataset),
        None,
    )
    if stored is None:
        return None
    return stored, _dimensions(str(stored.path), stored.weights_sha256, str(cache.data_dir()))


def answer(lines: list[str]) -> None:
    st.success("\n".join(f"- {line}" for line in lines))


# What a dash in a table means, by column: said under the table when the column has one.
MISSING = {
    "test_kl": "an AE has no KL term (only a VAE's loss has one)",
    "active_units": "this result was recorded before the study counted them over the test set (the active units "
    "chart above counts them from its map's test images)",
}


def table_frame(rows: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """The rows as the page shows them: rounded, named columns, a dash where a model has no such number
    (never "None"); and the sentences that say why, one per column with a dash."""
    frame = pd.DataFrame(rows)
    columns = [c for c in TABLE_COLUMNS if c in frame]
    frame = frame[columns].round(4)
    notes = []
    for column in columns:
        missing = frame[column].isna()
        if missing.any():
            frame[column] = [("—" if gap else f"{value:g}") for value, gap in zip(frame[column], missing)]
            notes.append(f"A dash under {TABLE_COLUMNS[column]}: {MISSING.get(column, 'not measured for that model')}.")
    return frame.rename(columns=TABLE_COLUMNS), notes


def table(rows: list[dict]) -> None:
    frame, notes = table_frame(rows)
    st.dataframe(frame, hide_index=True, width="stretch")
    if notes:
        st.caption(" ".join(notes))


def reconstructions(result: StudyResult, keys: list[str], titles: dict[str, str]) -> None:
    """The same ten test images (one per class), then each model's redraw of them, one strip per model."""
    st.image(upscale(strip(result.images["originals"]), 2), caption="test images", output_format="PNG")
    for key in keys:
        st.image(upscale(strip(result.images[f"recon/{key}"]), 2), caption=titles.get(key, key), output_format="PNG")


@st.fragment(run_every=1.0)
def follow(job: StudyJob) -> None:
    """Progress of a running recompute, refreshed every second until it ends; then the page reloads."""
    snapshot = job.snapshot()
    if snapshot.finished:
        st.rerun(scope="app")
    st.progress(snapshot.fraction, text=f"{snapshot.status}: {snapshot.message} ({snapshot.elapsed:.0f} s)")
    if st.button("Stop", key=f"{job.study}_stop"):
        job.stop()


def recompute(study: str) -> None:
    """An expander to start or follow a recompute; it runs on the server's one training queue."""
    with st.expander("Recompute this study"):
        recompute_controls(study)


def recompute_controls(study: str) -> None:
    jobs = cache.study_jobs()
    job = jobs.get((study, state.dataset()))
    if job is not None and not job.snapshot().finished:
        follow(job)
        return
    if job is not None:
        snapshot = job.snapshot()
        st.caption(f"Last recompute: {snapshot.status}, {snapshot.message}.")
    size = st.radio(
        "Size",
        ["quick", "full"],
        horizontal=True,
        key=f"{study}_size",
        captions=[
            "2 epochs on 10,000 images, fewer sizes: a few minutes",
            "the shipped settings: 10 epochs on 60,000 images (the encoder-without-decoder study: 50,000 "
            "images, 30 epochs and 240 passes over the graph's edges), 10-60 minutes",
        ],
    )
    if st.button("Recompute", key=f"{study}_go", help="Runs in the background; other pages stay usable."):
        settings = runner.QUICK if size == "quick" else runner.StudySettings()
        settings = dataclasses.replace(settings, dataset=state.dataset())
        job = StudyJob(
            study, settings, str(cache.experiment_dirs(state.dataset())["recomputed"]), str(cache.data_dir())
        )
        jobs[(study, state.dataset())] = job
        cache.training_queue().enqueue(job)
        st.rerun()
