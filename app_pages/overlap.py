"""Class overlap: how far apart each model keeps the ten digits, measured on the 10,000 test images.

For the pair (and the PCA baseline of the left model's size): the headline numbers of
``vae.metrics.overlap_report`` as a table and bars, the 10 x 10 neighbour-class matrices, per-class size
and spacing, and a paragraph that reads the measured numbers against what the KL term should do.

Every number is cached per (model folder, weights SHA-256, subset, view) in ``app/analysis.py``. Measured
for the 10,000 test images on 2 shared (busy) CPU cores, per model: the report (kNN in the latent and the
view, silhouette on 5,000 points, trustworthiness on 3,000, purity) 1.0-1.6 s for a 2-D latent and
1.6-2.1 s for a 16-D one; the overlap matrix 0.03 s / 0.6 s; the per-class density 0.03 s / 0.1 s; the
filled-cells count a few ms. A first visit for a 2-D pair plus its PCA baseline takes about 5 s including
loading and embedding, a 16-D one about 10 s (with the PCA views); later visits are cache hits (< 0.5 s).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import analysis, state
from app.overlap import BAR_LABELS, DENSITY, METRICS, Measured, colours, confused_pairs, measure, metrics_table, story
from vae.data import class_names
from vae.plots.charts import class_bars, delta_heatmap, metric_bars, overlap_heatmap

# ---------------------------------------------------------------------------------------------
# Layout


def headline(measured: list[Measured], left: Measured, right: Measured, palette: dict[str, str]) -> None:
    st.subheader("Headline numbers")
    table = metrics_table(measured, left, right)
    delta = table.columns[-1]
    st.dataframe(
        table,
        column_config={
            **{m.label: st.column_config.NumberColumn(m.label, format="%.3f") for m in measured},
            delta: st.column_config.NumberColumn(delta, format="%+.3f"),
        },
        width="stretch",
    )
    st.caption(
        "Higher is better everywhere (classes further apart, or a more faithful, fuller picture). kNN-5 "
        "leave-one-out (LOO): share of the 10,000 test codes whose five nearest other test codes vote for their own "
        "digit (Home's kNN-5 fits the vote on the training codes instead; the Training timeline's is leave-one-out "
        "among its 2,000 images). Silhouette: −1 to 1, rewards "
        "round, well-apart classes. Trustworthiness: 1 when the 2-D picture keeps each point's neighbours (always "
        "1 for a 2-D latent). Mean purity: share of neighbours of the same digit. Separation ratio: gap to the "
        "nearest other class's centroid ÷ the class's radius, median over digits. Filled cells: share of a "
        f"{analysis.COVERAGE_CELLS} × {analysis.COVERAGE_CELLS} grid over the middle 98 % of the 2-D picture "
        "that holds a code (low: holes). "
        "Views: " + "; ".join(f"{m.label}: {m.view_text}" for m in measured) + "."
    )
    values = {m.label: {key: m.report[key] for key in METRICS} for m in measured}
    figure = metric_bars(values, BAR_LABELS)
    figure.for_each_trace(lambda trace: trace.update(marker_color=palette[trace.name]))
    figure.update_layout(height=330)
    figure.update_annotations(font_size=11)
    st.plotly_chart(figure, width="stretch")


def matrices(measured: list[Measured], left: Measured, right: Measured) -> None:
    names = class_names(state.dataset())
    st.subheader("Which classes touch")
    st.caption(
        "Row = a test image's digit, column = the digits of its five nearest neighbours in the latent space; "
        "each row sums to 1 and the diagonal is the purity. In the difference, blue means the left model's share "
        "is higher (on the diagonal: purer), red lower."
    )
    columns = st.columns(3)
    for column, m in zip(columns, (left, right)):
        with column:
            st.plotly_chart(overlap_heatmap(m.matrix, names, title=m.label), width="stretch")
            st.caption(f"Most mixed ({m.label}): {confused_pairs(m.matrix, names=names)}")
    with columns[2]:
        st.plotly_chart(
            delta_heatmap(
                left.matrix, right.matrix, names, title=f"{left.label} − {right.label}", names=(left.label, right.label)
            ),
            width="stretch",
        )
    baseline = next((m for m in measured if m.role == "baseline"), None)
    if baseline is not None:
        with st.expander(f"PCA baseline: {baseline.label}"):
            a, b, c = st.columns(3)
            a.plotly_chart(overlap_heatmap(baseline.matrix, names, title=baseline.label), width="stretch")
            a.caption(f"Most mixed: {confused_pairs(baseline.matrix, names=names)}")
            for column, m in ((b, left), (c, right)):
                column.plotly_chart(
                    delta_heatmap(
                        m.matrix,
                        baseline.matrix,
                        names,
                        title=f"{m.label} − {baseline.label}",
                        names=(m.label, baseline.label),
                    ),
                    width="stretch",
                )


def densities(measured: list[Measured], palette: dict[str, str]) -> None:
    st.subheader("Per digit: size and spacing")
    quantity = st.radio(
        "Quantity",
        list(DENSITY),
        format_func=DENSITY.get,
        horizontal=True,
        key="ov_density",
        help="The separation ratio is free of the latent's scale, so it compares across models; spread and "
        "nearest-neighbour distance are in latent units, so compare them between digits of one model.",
    )
    names = class_names(state.dataset())
    reference = (1.0, "gap = radius") if quantity == "separation_ratio" else None
    figure = class_bars(
        {m.label: m.density[quantity] for m in measured}, names, palette, y_title=DENSITY[quantity], reference=reference
    )
    st.plotly_chart(figure, width="stretch")
    table = pd.DataFrame({m.label: m.density[quantity] for m in measured}, index=pd.Index(names, name="class"))
    with st.expander("As a table"):
        st.dataframe(
            table,
            column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in table.columns},
            width="stretch",
        )


def render() -> None:
    state.page_frame()
    st.title("Class overlap")
    st.caption(
        "How far apart each model keeps the ten digits, measured on the 10,000 test images; "
        "pick the pair in the sidebar."
    )
    pair = state.pair_or_explain("No models to measure")
    if pair is None:
        return
    roles = [("left", pair.left), ("right", pair.right)] + ([("baseline", pair.baseline)] if pair.baseline else [])
    high_dim = any(stored.config.latent_dim > 2 for _, stored in roles)
    method = state.view_picker(
        st.columns([1, 2])[0],
        high_dim,
        help="How models with more than two latent dimensions are drawn; the 2-D-view numbers use it. "
        "Shared with the Latent explorer.",
    )
    same = pair.left.path == pair.right.path
    measured = [
        measure(role, stored, f"{stored.name} ({role})" if same and role != "baseline" else stored.name, method)
        for role, stored in roles
    ]
    left, right = measured[0], measured[1]
    baseline = measured[2] if len(measured) > 2 else None
    palette = colours(measured)
    headline(measured, left, right, palette)
    st.subheader("What the numbers say")
    st.markdown(story(left, right, baseline))
    matrices(measured, left, right)
    densities(measured, palette)


with state.guard():
    render()
