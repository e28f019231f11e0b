"""Train: configure an AE and a VAE side by side, watch them train, save them to the model store; or import an
encoder and decoder of your own, exported to ONNX."""

from __future__ import annotations

import dataclasses

import streamlit as st

from app import cache, state, timeline
from vae.data import DATASETS
from vae.jobs import JobSnapshot, TrainingJob
from vae.judge import JudgeError
from vae.models import PIXEL_LAYOUTS, ModelConfig
from vae.onnx.importer import MAX_BYTES, ImportRefused, import_onnx, summary
from vae.plots.charts import loss_curves
from vae.store import StoreError, check_name, model_path
from vae.training.saving import measure_and_save
from vae.training.timeline import TimelineSettings
from vae.training.trainer import TrainSettings

KINDS = {"ae": "Auto-encoder", "vae": "Variational auto-encoder"}


def config_form(kind: str) -> tuple[ModelConfig, TrainSettings] | None:
    """The widgets for one model; returns None (after showing why) when a value is out of range."""
    st.subheader(KINDS[kind])
    arch = st.radio("Architecture", ["dense", "conv"], horizontal=True, key=f"{kind}_arch")
    latent_dim = st.number_input("Latent dimension", 2, 128, 2, key=f"{kind}_latent")
    hidden_text = st.text_input("Hidden layers", "512,256", key=f"{kind}_hidden", help="comma-separated sizes")
    recon_loss = st.selectbox("Reconstruction loss", ["bce", "mse"], key=f"{kind}_recon")
    beta = sparsity = 0.0
    tied = False
    if kind == "vae":
        beta = st.number_input("β (KL weight)", 0.0, 100.0, 1.0, step=0.1, key=f"{kind}_beta")
    else:
        sparsity = st.number_input("L1 sparsity on z", 0.0, 10.0, 0.0, step=0.01, key=f"{kind}_sparsity")
        tied = st.checkbox("Tied decoder weights (dense only)", key=f"{kind}_tied", disabled=arch != "dense")
    class_weight = st.number_input(
        "Class-aware weight (uses the labels)",
        0.0,
        1000.0,
        0.0,
        step=10.0,
        key=f"{kind}_class",
        help="Adds the soft nearest-neighbour loss of the codes (Frosst et al., 2019) times this weight: it pulls "
        "each class together and away from the others. Supervised: it trains on the labels. See Experiments.",
    )
    left, right = st.columns(2)
    epochs = left.number_input("Epochs", 1, 500, 10, key=f"{kind}_epochs")
    batch_size = right.number_input("Batch size", 8, 4096, 128, key=f"{kind}_batch")
    learning_rate = left.number_input("Learning rate", 1e-5, 1.0, 1e-3, format="%.5f", key=f"{kind}_lr")
    seed = right.number_input("Seed", 0, 2**31 - 1, 0, key=f"{kind}_seed")
    try:
        hidden = tuple(int(part) for part in hidden_text.split(",") if part.strip())
        config = ModelConfig(
            kind=kind,
            arch=arch,
            latent_dim=int(latent_dim),
            hidden=hidden,
            recon_loss=recon_loss,
            beta=float(beta) if kind == "vae" else 1.0,
            sparsity=float(sparsity),
            tied=bool(tied and arch == "dense"),
            class_weight=float(class_weight),
        )
        settings = TrainSettings(
            epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate), seed=int(seed)
        )
    except ValueError as error:
        st.error(f"Not a valid setting: {error}")
        return None
    st.caption(config.describe())
    return config, settings


def show_job(job: TrainingJob, kind: str) -> None:
    snapshot: JobSnapshot = job.snapshot()
    position = cache.training_queue().position(job)
    if snapshot.status == "queued":
        st.progress(0.0, text=f"Queued (position {position}): waits for the training ahead of it")
    else:
        terms = "  ".join(f"{k} {v:.2f}" for k, v in snapshot.batch_terms.items())
        st.progress(
            snapshot.fraction,
            text=f"{snapshot.status} · epoch {snapshot.epoch}/{snapshot.epochs} · batch {snapshot.batch}/"
            f"{snapshot.batches_per_epoch} · {snapshot.elapsed:.0f} s on the clock (training, test scoring and "
            f"recording) · {terms}",
        )
    if snapshot.status == "diverged":
        st.error(f"Training diverged: {snapshot.message}")
    elif snapshot.status == "failed":
        st.error(f"Training failed: {snapshot.message}")
    elif snapshot.finished:
        st.success(f"{snapshot.status}: {snapshot.message or 'all epochs done'}")
    curves, live = st.columns(2)
    curves.plotly_chart(loss_curves(snapshot.history), key=f"{kind}_curves")
    figure = timeline.live_map(snapshot, job.dataset, f"{kind}_live_map")
    if figure is None:
        live.caption("The map of 2,000 test images appears here at the first recorded frame.")
    else:
        live.plotly_chart(figure, key=f"{kind}_map", theme=None)
        live.caption(
            f"{len(snapshot.frame_labels):,} test images, coloured by class as on every page; redrawn at "
            "0, 1, 2, 4, … batches and at every epoch's end."
        )
    if snapshot.finished and job.result is not None and job.result.history:
        save_form(job, kind)


def save_form(job: TrainingJob, kind: str) -> None:
    """The name to save under, and what the last press said.

    The form sits in the fragment that redraws every second, so what a press says is kept in the session
    and drawn again at every redraw, until the next press replaces it.
    """
    said = f"{kind}_saved_{job.job_id}"
    with st.form(f"{kind}_save_{job.job_id}"):
        name = st.text_input("Save as", value=f"my-{kind}-{job.config.latent_dim}d", key=f"{kind}_name_{job.job_id}")
        overwrite = st.checkbox("Replace a model of the same name", key=f"{kind}_overwrite_{job.job_id}")
        if st.form_submit_button("Save to the model store"):
            st.session_state[said] = save(job, name, overwrite)
            if st.session_state[said][0] == "success":
                # The sidebar was drawn before this fragment: a rerun of the whole app lists the new model.
                st.rerun(scope="app")
    if said in st.session_state:
        level, text = st.session_state[said]
        getattr(st, level)(text)


def save(job: TrainingJob, name: str, overwrite: bool) -> tuple[str, str]:
    """Save the finished job's model under ``name``; returns ("success" or "error", what to tell the user)."""
    try:
        path = model_path(cache.models_dir(), check_name(name))
    except StoreError as error:
        return "error", str(error)
    if path.exists() and not overwrite:
        return "error", f"A model named {name!r} exists; tick 'Replace' to overwrite it."
    data = cache.training_data(job.dataset, str(cache.data_dir()))
    try:
        with st.spinner("Measuring test loss, kNN accuracy and what the judge calls its samples…"):
            measure_and_save(
                job.result.model,
                path,
                data,
                dataset=job.dataset,
                data_dir=cache.data_dir(),
                recorded={"train_seconds": sum(h["seconds"] for h in job.snapshot().history)},
                history=job.snapshot().history,
                timeline=job.result.timeline,
                extra={
                    "settings": dataclasses.asdict(job.settings),
                    "status": job.result.status,
                    "source": "dashboard",
                },
            )
    except (OSError, StoreError, JudgeError) as error:
        return "error", f"Could not save: {error}"
    cache.model_list.clear()
    return "success", f"Saved as {name!r}: pick it in the sidebar."


@st.fragment(run_every=1.0)
def live_progress() -> None:
    """Re-rendered every second, alone: the rest of the page (and other sessions) stay as they are."""
    columns = st.columns(2)
    for column, kind in zip(columns, KINDS):
        job: TrainingJob | None = st.session_state.get(f"{kind}_job")
        with column:
            if job is None:
                st.caption("Not started.")
            else:
                show_job(job, kind)


IMPORTED = "import_said"


def import_form() -> None:
    """Two uploads, a name and the options of ``python -m vae.onnx import``; the checks are the import's own."""
    st.subheader("Or import your own encoder and decoder (ONNX)")
    st.caption(
        f"Any pair exported to ONNX (see the README: `torch.onnx.export`, Keras via `tf2onnx`), one file each, up to "
        f"{MAX_BYTES // 2**20} MB. The encoder takes images in [0, 1] ([B, 1, 28, 28], [B, 28, 28, 1] or [B, 784]) and "
        "gives [B, D] (an AE) or a mean and a log-variance (a VAE); the decoder takes [B, D] and gives the image. The "
        f"pair is checked, measured on the {DATASETS[state.dataset()].title} test set and saved to the store."
    )
    with st.form("onnx_import"):
        left, right = st.columns(2)
        uploads = [
            column.file_uploader(
                f"{what.capitalize()} (.onnx)", type=["onnx"], key=f"import_{what}", max_upload_size=MAX_BYTES // 2**20
            )
            for column, what in zip((left, right), ("encoder", "decoder"))
        ]
        name = left.text_input("Save as", "my-onnx-model", key="import_name")
        logits = right.checkbox("The decoder gives logits (append a sigmoid)", key="import_logits")
        replace = right.checkbox("Replace a model of the same name", key="import_replace")
        with st.expander("Names and layout, when the graphs leave them open"):
            outputs = st.text_input(
                "Encoder outputs: mean[, log-variance]",
                key="import_outputs",
                help="e.g. z_mean,z_log_var for the Keras example (whose third output is a sample)",
            )
            output = st.text_input("Decoder output", key="import_output")
            layout = st.selectbox("Encoder input layout", ["from the graph", *PIXEL_LAYOUTS], key="import_layout")
        submitted = st.form_submit_button("Import")
    if not submitted:
        if IMPORTED in st.session_state:  # said once, after the rerun that put the model in the sidebar
            st.success(st.session_state.pop(IMPORTED))
        return
    if any(upload is None for upload in uploads):
        st.error("Choose both files: an encoder and a decoder.")
        return
    try:
        path = model_path(cache.models_dir(), name)
        with st.spinner("Checking both graphs and measuring the model on the test set…"):
            _, stored = import_onnx(
                uploads[0].getvalue(),
                uploads[1].getvalue(),
                path,
                dataset=state.dataset(),
                data_dir=cache.data_dir(),
                logits=logits,
                encoder_outputs=[n.strip() for n in outputs.split(",")] if outputs.strip() else None,
                decoder_output=output.strip() or None,
                input_layout=None if layout == "from the graph" else layout,
                replace=replace,
                names=[u.name for u in uploads],
                origin="dashboard",
            )
    except (ImportRefused, StoreError) as refusal:
        st.error(f"Not imported: {refusal}")
        return
    except OSError as error:
        st.error(f"Could not save: {error}")
        return
    cache.model_list.clear()
    st.session_state[IMPORTED] = f"{summary(stored)}. Pick it in the sidebar."
    st.rerun()  # the sidebar, drawn before this form, lists the new model on the next run


def render() -> None:
    state.page_frame()
    st.title("Train an AE and a VAE")
    st.caption(
        f"Both models train on the 60,000 {DATASETS[state.dataset()].title} training images (the dataset chosen in "
        "the sidebar) and are scored on the 10,000 test images after every epoch. Each records its timeline (the "
        "map beside its curves; watch it again on the **Training timeline** page once saved). Jobs from every open "
        "session take turns on the CPU, so exploring stays responsive."
    )
    columns = st.columns(2)
    forms = {}
    for column, kind in zip(columns, KINDS):
        with column:
            forms[kind] = config_form(kind)
    start, stop = st.columns(2)
    if start.button("Train both", type="primary", disabled=any(f is None for f in forms.values())):
        train_images, train_labels, test_images, test_labels = cache.training_data(
            state.dataset(), str(cache.data_dir())
        )
        for kind, (config, settings) in forms.items():
            try:
                st.session_state[f"{kind}_job"] = cache.training_queue().submit(
                    config,
                    settings,
                    train_images,
                    test_images,
                    train_labels=train_labels,
                    test_labels=test_labels,
                    dataset=state.dataset(),
                    timeline=TimelineSettings(),
                )
            except ValueError as error:
                st.error(str(error))
    if stop.button("Stop"):
        for kind in KINDS:
            job = st.session_state.get(f"{kind}_job")
            if job is not None:
                job.stop()
    live_progress()
    import_form()


with state.guard():
    render()
