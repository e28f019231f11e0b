"""The dashboard's pages, declared once for the entry file and for a page that finds itself run alone."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGE_TITLE = "AE vs VAE latent explorer"


# The tab's icon, served by this server: Streamlit turns a ":material/...:" icon into a favicon URL on
# fonts.gstatic.com, which fails offline and tells a third party who opens the dashboard.
FAVICON = Path(__file__).resolve().parents[1] / "static" / "icons" / "scatter_plot.png"


def configure_page() -> None:
    """The browser tab's title and the wide layout, set before anything is drawn so the first paint has them."""
    st.set_page_config(page_title=PAGE_TITLE, page_icon=str(FAVICON), layout="wide")


# (file, title, icon, URL path): the menu, in its order. Paths are relative to the entry file, dashboard.py.
# Emoji, not Material icons: the current page's icon becomes the tab's favicon, and Streamlit fetches a
# Material one from fonts.gstatic.com but draws an emoji locally (an inline SVG). One symbol per page, as
# the Material glyphs were.
PAGES = (
    ("app_pages/home.py", "Home", "🏠", ""),
    ("app_pages/explorer.py", "Latent explorer", "🧭", "explorer"),
    ("app_pages/timeline.py", "Training timeline", "🎞️", "timeline"),
    ("app_pages/overlap.py", "Class overlap", "🔀", "overlap"),
    ("app_pages/inside.py", "Inside the latent space", "🔬", "inside"),
    ("app_pages/experiments.py", "Experiments", "🧪", "experiments"),
    ("app_pages/digit.py", "Your digit", "✏️", "digit"),
    ("app_pages/train.py", "Train", "🏋️", "train"),
    ("app_pages/exports.py", "Exports", "📦", "exports"),
)


def pages() -> list[st.Page]:
    """The menu as Streamlit pages; the first is the default (Home, at the app's root URL)."""
    return [
        st.Page(path, title=title, icon=icon, url_path=url or None, default=not url) for path, title, icon, url in PAGES
    ]
