"""Training timeline: both latent spaces forming frame by frame, with the losses, class overlap and what each
decoder draws at a pinned point. The player runs in the page (app/timeline.py); a click pins a point."""

from __future__ import annotations

import streamlit as st

from app import state, timeline
from vae.store import StoreError


def load_sides(pair: state.Pair) -> dict[str, timeline.Side]:
    """The sides that have a readable timeline; a note for each that has none."""
    sides = {}
    for position, stored in (("left", pair.left), ("right", pair.right)):
        if not stored.has_timeline:
            st.info(
                f"No timeline recorded for **{stored.name}** (saved without one, or before timelines existed). "
                "Retrain it on the **Train** page (every model trained there records one)."
            )
            continue
        try:
            sides[position] = timeline.load_side(stored)
        except (StoreError, ValueError) as error:
            st.warning(f"The timeline of **{stored.name}** cannot be shown: {error}")
    return sides


def render() -> None:
    state.page_frame()
    st.title("Training timeline")
    pair = state.pair_or_explain()
    if pair is None:
        return
    sides = load_sides(pair)
    if not sides:
        return
    st.caption(timeline.intro(sides))
    click = timeline.show("timeline", timeline.player_data(sides, timeline.pins(sides)))
    if timeline.remember_click(click, sides):
        st.rerun()
    if not timeline.same_images(sides):
        st.caption("The two timelines recorded different images (other datasets or sample sizes).")
    st.caption(" ".join(timeline.recording_note(entry) for entry in sides.values()))
    with st.expander("What to look for", expanded=True):
        st.markdown(timeline.WHAT_TO_LOOK_FOR)
        st.markdown(timeline.reading(sides))


with state.guard():
    render()
