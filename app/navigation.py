"""The dashboard's pages, declared once for the entry file and for a page that finds itself run alone."""

from __future__ import annotations

import streamlit as st

PAGE_TITLE = "AE vs VAE latent explorer"


def configure_page() -> None:
    """The browser tab's title and the wide layout, set before anything is drawn so the first paint has them."""
    st.set_page_config(page_title=PAGE_TITLE, page_icon=":material/scatter_plot:", layout="wide")


# (file, title, icon, URL path): the menu, in its order. Paths are relative to the entry file, dashboard.py.
PAGES = (
    ("app_pages/home.py", "Home", ":material/home:", ""),
    ("app_pages/explorer.py", "Latent explorer", ":material/explore:", "explorer"),
    ("app_pages/timeline.py", "Training timeline", ":material/movie:", "timeline"),
    ("app_pages/overlap.py", "Class overlap", ":material/join_inner:", "overlap"),
    ("app_pages/inside.py", "Inside the latent space", ":material/grain:", "inside"),
    ("app_pages/experiments.py", "Experiments", ":material/science:", "experiments"),
    ("app_pages/digit.py", "Your digit", ":material/draw:", "digit"),
    ("app_pages/train.py", "Train", ":material/model_training:", "train"),
    ("app_pages/exports.py", "Exports", ":material/download:", "exports"),
)


def pages() -> list[st.Page]:
    """The menu as Streamlit pages; the first is the default (Home, at the app's root URL)."""
    return [
        st.Page(path, title=title, icon=icon, url_path=url or None, default=not url) for path, title, icon, url in PAGES
    ]
