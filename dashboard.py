"""Entry point: `streamlit run dashboard.py`. Navigation and the shared frame; the pages are in pages/."""

from __future__ import annotations

import streamlit as st

from app import navigation, state


def main() -> None:
    page = st.navigation(navigation.pages())
    state.keep_shared_choices()
    state.draw_frame()
    page.run()


# Streamlit executes this file as a script on every rerun (not as ``__main__``), so the call is unguarded.
main()
