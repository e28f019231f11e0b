"""The session's last selection in the explorer's planes, its numbers for the page, and its exports.

The arithmetic is in ``vae/selection.py``; this module adds the session state (``ex_selection``), the caches
that make a rerun with the same selection cost nothing, and the loading of the models it names.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import streamlit as st

from app import cache
from app.views import chosen_view
from vae import selection as sel
from vae.data import DATASETS, SUBSETS, class_names
from vae.explore import decode_codes
from vae.store import StoredModel

KEY = "ex_selection"
SIDES = ("left", "right")
# The neighbourhood is measured from at most this many selected images (an even sample): 0.4 s for 70,000
# 16-D codes rather than 5 s for 20,000 selected, and a share from 2,000 images is within about 1 % of all.
NEIGHBOURHOOD_SAMPLE = 2000


def _subset_size(dataset: str, subset: str) -> int:
    _, labels = cache.dataset(dataset, subset, str(cache.data_dir()))
    return len(labels)


def remember(dataset: str, subset: str, left_name: str, right_name: str, indices: Any) -> dict[str, Any] | None:
    """Keep ``indices`` (image indices into ``subset`` of ``dataset``, as both planes of models ``left_name`` and
    ``right_name`` show them) as the session's last selection, for the Exports page; returns what was stored.

    Stored as ``{"dataset", "subset", "left", "right", "indices"}`` with the indices a sorted list of ints. They
    must be unique integers in range of the subset (ValueError otherwise); an empty selection clears it.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {dataset!r}")
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {list(SUBSETS)}, got {subset!r}")
    for side, name in (("left", left_name), ("right", right_name)):
        if not isinstance(name, str) or not name:
            raise ValueError(f"the {side} model's name must be a non-empty string, got {name!r}")
    index = sel.as_selection(indices, _subset_size(dataset, subset))
    if index.size == 0:
        clear()
        return None
    stored = {"dataset": dataset, "subset": subset, "left": left_name, "right": right_name, "indices": index.tolist()}
    st.session_state[KEY] = stored
    return stored


def last() -> dict[str, Any] | None:
    """The session's last selection (see :func:`remember`), or None when there is none."""
    value = st.session_state.get(KEY)
    return value if isinstance(value, dict) and value.get("indices") else None


def clear() -> None:
    st.session_state.pop(KEY, None)


def indices_sha256(indices: Any) -> str:
    """A selection's key for the caches: the SHA-256 of its sorted indices as int64."""
    ordered = np.sort(np.asarray(indices, dtype=np.int64))
    return hashlib.sha256(ordered.tobytes()).hexdigest()


@st.cache_data(max_entries=64, show_spinner="Measuring the selection's neighbourhood…")
def _side_stats(
    path: str, weights_sha256: str, subset: str, method: str, selection_sha256: str, _codes, _view, _labels, _indices
) -> dict[str, float]:
    """One plane's numbers; keyed on the model, subset, view and selection (the arrays, ``_``-prefixed, are not
    hashed: they are what those keys name)."""
    queries = sel.even_sample(_indices, NEIGHBOURHOOD_SAMPLE)
    found = sel.neighbourhood(_codes, _labels, _indices, k=5, queries=queries)
    return {
        "share_selected": found.share_selected,
        "share_other_class": found.share_other_class,
        "spread": sel.spread(_view, _indices),
        "measured_on": int(len(queries)),
    }


def stats(planes: dict[str, Any], indices: Any, subset: str | None = None) -> dict[str, dict[str, float]]:
    """Where the selection went in each model: ``{"left": {...}, "right": {...}}``, each
    ``{"share_selected", "share_other_class", "spread", "measured_on"}`` (see ``vae.selection.neighbourhood``
    and ``spread``; the neighbourhood is measured from an even sample of ``measured_on`` selected images).

    ``planes`` maps side to ``app.explorer.Plane`` (``.codes [N, D]``, ``.view.embedding_ [N, 2]``, ``.stored``);
    ``subset`` is the one they show (default: the explorer's choice, session key ``ex_subset``). Cached: the
    same selection again costs a hash of its indices.
    """
    subset = subset or st.session_state.get("ex_subset", "test")
    directory = str(cache.data_dir())
    out = {}
    for side, plane in planes.items():
        stored: StoredModel = plane.stored
        _, labels = cache.dataset(stored.dataset_name, subset, directory)
        labels = labels.numpy()
        if len(plane.codes) != len(labels):
            raise ValueError(f"the {side} plane has {len(plane.codes)} points but the {subset!r} subset {len(labels)}")
        index = sel.as_selection(indices, len(labels), allow_empty=False)
        out[side] = _side_stats(
            str(stored.path),
            stored.weights_sha256,
            subset,
            plane.view.name,
            indices_sha256(index),
            plane.codes,
            plane.view.embedding_,
            labels,
            index,
        )
    return out


# ---------------------------------------------------------------------------------------------
# Exports of the last selection


def models_of(selection: dict[str, Any]) -> tuple[StoredModel, StoredModel] | str:
    """The two stored models a selection was made with, or a sentence saying why they cannot be had."""
    stored = {m.name: m for m in cache.model_list(str(cache.models_dir()))}
    found = []
    for side in SIDES:
        name = selection[side]
        model = stored.get(name)
        if model is None:
            return f"model {name!r} ({side}) is no longer in the store"
        if model.dataset_name != selection["dataset"]:
            return f"model {name!r} ({side}) is now one of {DATASETS[model.dataset_name].title}'s models"
        found.append(model)
    return found[0], found[1]


def _codes_and_view(stored: StoredModel, subset: str, method: str) -> tuple[Any, np.ndarray, np.ndarray]:
    path, sha, directory = str(stored.path), stored.weights_sha256, str(cache.data_dir())
    model, _ = cache.model(path, sha)
    codes = cache.embedding(path, sha, subset, directory)
    view = cache.view(path, sha, subset, directory, chosen_view(method, codes.shape[1]))
    return model, codes, view.embedding_


def selection_csv(selection: dict[str, Any], method: str) -> str:
    """The CSV of ``selection`` (``vae.selection.selection_csv``), each D > 2 model seen through view ``method``."""
    left, right = models_of(selection)
    subset = selection["subset"]
    _, left_codes, left_view = _codes_and_view(left, subset, method)
    _, right_codes, right_view = _codes_and_view(right, subset, method)
    _, labels = cache.dataset(selection["dataset"], subset, str(cache.data_dir()))
    return sel.selection_csv(selection["indices"], labels.numpy(), left_codes, right_codes, left_view, right_view)


@st.cache_data(max_entries=16, show_spinner=False)
def _sheet(
    dataset: str, subset: str, left: tuple[str, str], right: tuple[str, str], selection_sha256: str, _indices
) -> bytes:
    directory = str(cache.data_dir())
    images, labels = cache.dataset(dataset, subset, directory)
    sample = sel.even_sample(_indices, sel.SHEET_LIMIT)
    recons = []
    for path, sha in (left, right):
        model, _ = cache.model(path, sha)
        recons.append(decode_codes(model, cache.embedding(path, sha, subset, directory)[sample]))
    names = (cache.model(*left)[1].name, cache.model(*right)[1].name)
    return sel.selection_sheet(
        images.numpy()[sample], recons[0], recons[1], labels.numpy()[sample], class_names(dataset), names, sample
    )


def selection_sheet(selection: dict[str, Any]) -> bytes:
    """The PNG sheet of ``selection``: up to 100 originals sampled evenly, each beside its decode by each model
    of that model's own code. Cached per models and selection."""
    left, right = models_of(selection)
    return _sheet(
        selection["dataset"],
        selection["subset"],
        (str(left.path), left.weights_sha256),
        (str(right.path), right.weights_sha256),
        indices_sha256(selection["indices"]),
        np.asarray(selection["indices"], dtype=np.int64),
    )
