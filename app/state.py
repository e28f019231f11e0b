"""Session state shared by the pages: which two models are compared. Initialised once per session."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import streamlit as st

from app import cache
from vae.data import DATASETS, DatasetUnavailableError
from vae.projections import available_views, view_label
from vae.store import StoredModel, StoreError

DEFAULT_PAIR = ("ae-2d", "vae-2d")


@dataclass(frozen=True)
class Pair:
    """The two models shown side by side (left, right) and the PCA baseline of the same latent size."""

    left: StoredModel
    right: StoredModel
    baseline: StoredModel | None


def _default_names(models: list[StoredModel]) -> tuple[str, str]:
    """An AE and a VAE of the same size, the 2-D ones first: the comparison the dashboard is for."""
    names = [m.name for m in models]
    if all(name in names for name in DEFAULT_PAIR):
        return DEFAULT_PAIR
    for dim in sorted({m.config.latent_dim for m in models}):
        ae = next((m.name for m in models if m.config.kind == "ae" and m.config.latent_dim == dim), None)
        vae = next((m.name for m in models if m.config.kind == "vae" and m.config.latent_dim == dim), None)
        if ae and vae:
            return ae, vae
    return names[0], names[min(1, len(names) - 1)]


def dataset() -> str:
    """The dataset chosen in the sidebar (MNIST until the user picks another)."""
    return st.session_state.get("dataset", "mnist")


def _store() -> list[StoredModel]:
    return cache.model_list(str(cache.models_dir()))


def _comparable(models: list[StoredModel]) -> list[StoredModel]:
    """The trained (non-PCA) models of the chosen dataset: what the pair picker offers."""
    return [m for m in models if m.config.kind != "pca" and m.dataset_name == dataset()]


def init() -> None:
    """Set the session's defaults; later runs keep what the user chose."""
    everything = _store()
    models = _comparable(everything)
    if not models:
        return
    names = [m.name for m in models]
    defaults = dict(zip(("left_model", "right_model"), _default_names(models)))
    for key, default in defaults.items():
        chosen = st.session_state.get(key)
        if chosen is not None and chosen not in {m.name for m in everything}:
            # Deleted or broken on disk since it was picked: say so once, then carry on with a default.
            st.session_state["store_notice"] = f"Model {chosen!r} is no longer in the store; showing {default!r}."
        if chosen not in names:  # also after a switch of dataset
            st.session_state[key] = default


def pair() -> Pair | None:
    """The chosen pair, or None when the store holds no trained model (the page then says so)."""
    init()
    stored = {m.name: m for m in _store() if m.dataset_name == dataset()}
    left, right = stored.get(st.session_state.get("left_model")), stored.get(st.session_state.get("right_model"))
    if left is None or right is None:
        return None
    dim = left.config.latent_dim
    baseline = next(
        (
            m
            for m in sorted(stored.values(), key=lambda m: m.name)
            if m.config.kind == "pca" and m.config.latent_dim == dim
        ),
        None,
    )
    return Pair(left, right, baseline)


def pair_or_explain(nothing: str = "No models to show") -> Pair | None:
    """:func:`pair`, and when there is none, a warning that starts with ``nothing`` and says how to get one."""
    chosen = pair()
    if chosen is None:
        st.warning(f"{nothing}: train a pair on the **Train** page (or run `make models`).")
    return chosen


FRAME_DRAWN = "_frame_drawn_by_entry"
# Values for the sidebar's widgets decided by a page after they were drawn (a link's dataset and models, read
# by ``app.links.restore``): applied at the start of the next run, before the widgets exist.
PENDING_CHOICES = "_pending_sidebar_choices"


def draw_frame() -> None:
    """In the sidebar, the pair being compared.

    Drawn by ``dashboard.py`` before the page, so the pair picker is one widget shared by every page
    (a widget drawn inside a page would be a new widget, reset, on each page switch).
    """
    for key, value in st.session_state.pop(PENDING_CHOICES, {}).items():
        st.session_state[key] = value
    with st.sidebar:
        st.subheader("Models compared")
        dataset_picker()
        pair_picker()
    st.session_state[FRAME_DRAWN] = True


def page_frame() -> None:
    """Called first by every page; the entry file has normally drawn the frame already in this run.

    If not, the page file was run as the main script (``streamlit run app_pages/explorer.py``, or an
    AppTest of the file). Declaring the navigation here and rerunning hands the run to the navigation, so
    the page still gets its frame and the app its menu. (The folder is not called ``pages/``: Streamlit
    would list that folder's files in the sidebar, as old pages-directory apps did, until the first run's
    ``st.navigation`` replaced them.)
    """
    if not st.session_state.pop(FRAME_DRAWN, False):
        from app import navigation

        st.navigation(navigation.pages())
        st.rerun()


def dataset_picker(container=st.sidebar) -> None:
    """The dataset whose models are compared, and which the Train page trains on."""
    if dataset() not in DATASETS:
        st.session_state["dataset"] = "mnist"
    container.selectbox(
        "Dataset",
        list(DATASETS),
        format_func=lambda name: DATASETS[name].title,
        key="dataset",
        help="Models remember the dataset they were trained on; the pickers below list that dataset's models, "
        "and the Train page trains on it.",
    )


def pair_picker(container=st.sidebar) -> None:
    """Two select boxes bound to the session's pair; shown in the sidebar of every page."""
    init()
    notice = st.session_state.pop("store_notice", None)
    if notice:
        container.warning(notice)
    models = _comparable(_store())
    if not models:
        container.warning(
            f"No trained {DATASETS[dataset()].title} models in the store yet: train a pair on the Train page."
        )
        return
    # The sidebar is narrow: a box shows the name alone (whole, never cut), the chosen model's description
    # wraps under it, and the tooltip lists every model's.
    described = {m.name: m.config.describe() for m in models}
    listing = "\n".join(f"- **{name}**: {text}" for name, text in described.items())
    for side in ("Left", "Right"):
        chosen = container.selectbox(
            f"{side} model",
            list(described),
            key=f"{side.lower()}_model",
            help=f"The models of this dataset:\n\n{listing}",
        )
        container.caption(described.get(chosen, ""))


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Turn what the world can do to a running app into a message instead of a traceback.

    A model folder deleted or replaced between listing and loading (``StoreError``), or dataset files that
    vanished and cannot be fetched again (``DatasetUnavailableError``): the page says what happened and the
    next run starts from a fresh listing.
    """
    try:
        yield
    except StoreError as error:
        cache.model_list.clear()
        st.error(
            f"A model could not be loaded: {error}. It may have been deleted or replaced on disk; the list of models "
            "has been refreshed, so pick a pair in the sidebar or rerun the page."
        )
    except DatasetUnavailableError as error:
        st.error(f"The images are not available: {error}")


SHARED_CHOICES = ("ex_view", "ex_subset", "ex_browser")  # widgets of the same key on several pages


def keep_shared_choices() -> None:
    """Widget state is kept per page; re-assigning the shared choices carries them across page switches."""
    for key in SHARED_CHOICES:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def view_picker(container, high_dim: bool, help: str) -> str:
    """The 2-D view for models with D > 2, one choice (session key "ex_view") shared by every page."""
    return container.selectbox(
        "2-D view (D > 2)", available_views(3), format_func=view_label, key="ex_view", disabled=not high_dim, help=help
    )
