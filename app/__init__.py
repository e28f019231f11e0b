"""The dashboard's side of the line: Streamlit caching and session state around the `vae` library.

Pages import from here; `vae/` never imports Streamlit.
"""
