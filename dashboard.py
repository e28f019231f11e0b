"""Entry point: `streamlit run dashboard.py`. Navigation and the shared frame; the pages are in pages/."""

from __future__ import annotations

import streamlit as st

from app import state


def main() -> None:
    page = st.navigation(
        [
            st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
            st.Page("pages/explorer.py", title="Latent explorer", icon=":material/explore:", url_path="explorer"),
            st.Page("pages/overlap.py", title="Class overlap", icon=":material/join_inner:", url_path="overlap"),
            st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
            st.Page("pages/exports.py", title="Exports", icon=":material/download:", url_path="exports"),
        ]
    )
    # Widget state is kept per page; re-assigning the choices the explorer shares with the overlap and
    # export pages carries them across page switches.
    for key in ("ex_view", "ex_subset"):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    state.draw_frame()
    page.run()


# Streamlit executes this file as a script on every rerun (not as ``__main__``), so the call is unguarded.
main()
