"""Entry point: `streamlit run dashboard.py`. Navigation and the shared frame; the pages are in pages/."""

from __future__ import annotations

import streamlit as st

from app import navigation, state


def main() -> None:
    page = st.navigation(navigation.pages())
    # Widget state is kept per page; re-assigning the choices the explorer shares with the overlap and
    # export pages carries them across page switches.
    for key in ("ex_view", "ex_subset"):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    state.draw_frame()
    page.run()


# Streamlit executes this file as a script on every rerun (not as ``__main__``), so the call is unguarded.
main()
