"""The Latent explorer's state in its URL, so a link reopens what was on screen.

The parameters (``st.query_params``), each optional:

- ``dataset``: ``mnist`` or ``fashion-mnist``; ``left``, ``right``: the two models' names in the store;
- ``view``: ``pca``, ``umap`` or ``identity`` (how D > 2 models are drawn); ``subset``: ``test`` or ``all``;
- ``pin_left``, ``pin_right``: what each plane has pinned, an image index (``123``, pinned in both planes,
  as a click on an image pins it) or a spot ``x,y`` in that plane;
- ``from``, ``to``: the interpolation's ends, ``centroid:C`` (class C's centroid) or ``image:I``.

Each plane's zoom is in the URL's fragment (``#zoom_left=cx,cy,half``), read and written by the page alone
(``static/components/latent_planes/zoom_link.js``): Streamlit rewrites the query from what the server set, so
a query parameter the page added would not survive a rerun, and a zoom should cost none.

:func:`restore` runs at the top of the explorer page and applies a link once per session (after that the
widgets are the truth; a URL read on every rerun would fight them); :func:`remember` runs at its end and writes
the current state back, so the address bar is always a link to what is shown.
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from app import cache, explorer, state
from vae.data import DATASETS, SUBSETS, class_names
from vae.projections import VIEWS

OWNED = ("dataset", "left", "right", "view", "subset", "pin_left", "pin_right", "from", "to")
RESTORED = "links_restored"  # set once the session's link was read
IGNORED = "links_ignored"  # what a restore that needed a rerun ignored, for the run after it to show
SIDEBAR = {"dataset": "dataset", "left": "left_model", "right": "right_model"}  # drawn before the page


# ---------------------------------------------------------------------------------------------
# Parsing: plain functions, ValueError with the reason


def parse_pin(text: str, n_points: int) -> dict[str, Any]:
    """``"123"`` -> ``{"kind": "image", "index": 123}``; ``"0.5,-1.25"`` -> ``{"kind": "spot", "point": [0.5, -1.25]}``
    (the explorer's pin format, ``st.session_state["ex_pins"][side]``)."""
    text = text.strip()
    if text.isdigit():
        index = int(text)
        if index >= n_points:
            raise ValueError(f"image #{index} is beyond the {n_points:,} images shown")
        return {"kind": "image", "index": index}
    parts = text.split(",")
    try:
        point = [float(p) for p in parts]
    except ValueError:
        point = []
    if len(point) != 2 or not all(math.isfinite(v) for v in point):
        raise ValueError(f"{text!r} is neither an image index nor a point x,y")
    return {"kind": "spot", "point": point}


def format_pin(pin: dict[str, Any] | None) -> str | None:
    if not isinstance(pin, dict):
        return None
    if pin.get("kind") == "image":
        return str(int(pin["index"]))
    if pin.get("kind") == "spot":
        x, y = pin["point"]
        return f"{float(x)!r},{float(y)!r}"  # the shortest text that reads back to the same float
    return None


def parse_end(text: str, n_points: int, n_classes: int) -> tuple[str, int]:
    """``"centroid:3"`` -> ``("centroid", 3)``, ``"image:12"`` -> ``("image", 12)``: an interpolation end."""
    kind, _, number = text.strip().partition(":")
    if kind not in ("centroid", "image") or not number.isdigit():
        raise ValueError(f"{text!r} is neither centroid:C nor image:I")
    value = int(number)
    if kind == "centroid" and value >= n_classes:
        raise ValueError(f"there is no class {value} (classes 0-{n_classes - 1})")
    if kind == "image" and value >= n_points:
        raise ValueError(f"image #{value} is beyond the {n_points:,} images shown")
    return kind, value


# ---------------------------------------------------------------------------------------------
# Restore and remember


def _end_option(kind: str, value: int, dataset: str) -> str:
    if kind == "image":
        return explorer.image_option(value)
    return f"centroid of {class_names(dataset)[value]}"


def _check_model(name: str, dataset: str, models: dict) -> str | None:
    """Why model ``name`` cannot be shown on ``dataset``'s explorer, or None if it can."""
    stored = models.get(name)
    if stored is None:
        return f"model {name!r} is not in the store"
    if stored.config.kind == "pca":
        return f"model {name!r} is a PCA baseline, which the explorer shows beside the pair, not in it"
    if stored.dataset_name != dataset:
        return f"model {name!r} was trained on {DATASETS[stored.dataset_name].title}, not {DATASETS[dataset].title}"
    return None


def restore() -> list[str]:
    """Apply the URL's explorer state to the session, once per session; returns what was ignored and why
    (``"model 'nope' is not in the store; showing the default"``), one sentence per part.

    Call at the top of the explorer page, before its widgets. The sidebar's dataset and model pickers are drawn
    before any page, so a link that changes them hands them over through ``state.PENDING_CHOICES`` and reruns
    once; the sentences are returned by the run after.
    """
    if st.session_state.get(RESTORED):
        return st.session_state.pop(IGNORED, [])
    st.session_state[RESTORED] = True
    params = {key: st.query_params.get(key) for key in OWNED if key in st.query_params}
    if not params:
        return []
    explorer.init_state()
    ignored: list[str] = []
    session = st.session_state

    dataset = state.dataset()
    if "dataset" in params:
        if params["dataset"] in DATASETS:
            dataset = params["dataset"]
        else:
            ignored.append(f"dataset {params['dataset']!r} is not one of {', '.join(DATASETS)}; showing {dataset}")
    pending = {"dataset": dataset}
    models = {m.name: m for m in cache.model_list(str(cache.models_dir()))}
    for side in ("left", "right"):
        if side in params:
            why = _check_model(params[side], dataset, models)
            if why is None:
                pending[SIDEBAR[side]] = params[side]
            else:
                ignored.append(f"{why}; showing the default")

    subset = session.get("ex_subset", "test")
    if "subset" in params:
        if params["subset"] in SUBSETS:
            subset = session["ex_subset"] = params["subset"]
        else:
            ignored.append(f"subset {params['subset']!r} is not one of {', '.join(SUBSETS)}; showing the {subset} set")
    if "view" in params:
        if params["view"] in VIEWS:
            session["ex_view"] = params["view"]
        else:
            ignored.append(f"view {params['view']!r} is not one of {', '.join(VIEWS)}; showing the default")

    n_points = len(cache.dataset(dataset, subset, str(cache.data_dir()))[1])
    pins = {}
    for side in ("left", "right"):
        key = f"pin_{side}"
        if key in params:
            try:
                pins[side] = parse_pin(params[key], n_points)
            except ValueError as error:
                ignored.append(f"{key} was ignored: {error}; nothing pinned there")
    images = {side: pin["index"] for side, pin in pins.items() if pin["kind"] == "image"}
    if len(set(images.values())) > 1:
        # A click on an image pins it in both planes: two different images cannot be pinned at once.
        ignored.append(
            f"pin_right (image #{images['right']}) differs from pin_left's image #{images['left']}; kept the left"
        )
        del pins["right"], images["right"]
    ends = {}
    for end in ("from", "to"):
        if end in params:
            try:
                ends[end] = parse_end(params[end], n_points, len(class_names(dataset)))
            except ValueError as error:
                ignored.append(f"{end} was ignored: {error}; the default end instead")

    history = [v for kind, v in ends.values() if kind == "image"] + list(images.values())
    session["ex_history"] = list(dict.fromkeys(history))[-explorer.HISTORY :]
    for side, pin in pins.items():
        session["ex_pins"][side] = pin
        if pin["kind"] == "spot":
            session["ex_decoded"][side] = tuple(pin["point"])
            session["ex_click"] = {"side": side, "x": pin["point"][0], "y": pin["point"][1], "index": None}
    if images:
        index = next(iter(images.values()))
        session["ex_selected"] = index
        session["ex_click"] = {"side": next(iter(images)), "x": None, "y": None, "index": index}
    for end, (kind, value) in ends.items():
        session[f"ex_{end}"] = _end_option(kind, value, dataset)

    changed = {key: value for key, value in pending.items() if session.get(key) != value}
    if changed:
        session[state.PENDING_CHOICES] = changed
        session[IGNORED] = ignored
        st.rerun()
    return ignored


def current() -> dict[str, str | None]:
    """The explorer's state as URL parameters (None: the parameter is left out)."""
    session = st.session_state
    explorer.init_state()
    pins = session.get("ex_pins", {})
    out: dict[str, str | None] = {
        "dataset": state.dataset(),
        "left": session.get("left_model"),
        "right": session.get("right_model"),
        "view": session.get("ex_view"),
        "subset": session.get("ex_subset"),
        "pin_left": format_pin(pins.get("left")),
        "pin_right": format_pin(pins.get("right")),
    }
    options = explorer.endpoint_options()
    for end in ("from", "to"):
        kind, value = options.get(session.get(f"ex_{end}"), (None, None))
        out[end] = f"{kind}:{value}" if kind else None
    return out


def remember() -> None:
    """Write the explorer's state into the URL (only the parameters listed in :data:`OWNED`; any other is left
    as it is). Call at the end of the explorer page. Unchanged parameters are not rewritten."""
    for key, value in current().items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != value:
            st.query_params[key] = value
