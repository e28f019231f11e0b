"""The dashboard's pages, declared once for the entry file and for a page that finds itself run alone."""

from __future__ import annotations

import streamlit as st

PAGE_TITLE = "AE vs VAE latent explorer"


def configure_page() -> None:
    """The browser tab's title and the wide layout, set before anything is drawn so the first paint has them."""
    st.set_page_config(page_title=PAGE_TITLE, page_icon=":material/scatter_plot:", layout="wide")


def pages() -> list[st.Page]:
    """Paths are relative to the entry file, dashboard.py."""
    return [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/explorer.py", title="Latent explorer", icon=":material/explore:", url_path="explorer"),
        st.Page("pages/timeline.py", title="Training timeline", icon=":material/movie:", url_path="timeline"),
        st.Page("pages/overlap.py", title="Class overlap", icon=":material/join_inner:", url_path="overlap"),
        st.Page("pages/experiments.py", title="Experiments", icon=":material/science:", url_path="experiments"),
        st.Page("pages/digit.py", title="Your digit", icon=":material/draw:", url_path="digit"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
        st.Page("pages/exports.py", title="Exports", icon=":material/download:", url_path="exports"),
    ]
