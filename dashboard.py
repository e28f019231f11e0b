"""Entry point: `streamlit run dashboard.py`. Navigation and the shared frame; the pages are in app_pages/."""

from __future__ import annotations

import sys

import streamlit as st

from app import navigation


def main() -> None:
    navigation.configure_page()
    page = st.navigation(navigation.pages())
    # A session's first run imports torch, scikit-learn and UMAP (seconds on two cores). They are imported
    # here, after the navigation, so the first paint is the real sidebar with a note rather than a blank page.
    first_run = "app.state" not in sys.modules
    loading = st.empty()
    if first_run:
        loading.caption("Loading the models and libraries (a few seconds, once per server start)…")
    from app import state

    loading.empty()
    state.keep_shared_choices()
    state.draw_frame()
    page.run()


# Streamlit executes this file as a script on every rerun (not as ``__main__``), so the call is unguarded.
main()
