"""``class_aware``: can a loss reward dense, non-overlapping classes?

2-D AEs and VAEs with the class-aware term (:func:`vae.models.soft_nearest_neighbour_loss`, which uses the
labels) at several weights. Here: its variants, the term in the page's words, and its answer.
"""

from __future__ import annotations

from vae.models import ModelConfig
from vae.studies.runner import Study, StudyResult, StudySettings, Variant


def _pct(new: float, old: float) -> str:
    return f"{100 * (new - old) / old:+.0f} %"


class ClassAware(Study):
    name = "class_aware"
    question = "Can a loss reward dense, non-overlapping classes?"
    intro = (
        r"Class term, the soft nearest-neighbour loss of Frosst, Papernot & Hinton (2019), over each batch: "
        r"$-\frac{1}{b}\sum_i \log \dfrac{\sum_{j \ne i,\, y_j = y_i} e^{-d_{ij}/T}}{\sum_{k \ne i} e^{-d_{ik}/T}}$ "
        r"with $d_{ij}$ the squared distance between codes divided by its batch mean and $T = 0.1$, added to the "
        r"loss times a weight. It is near 0 when every code's close neighbours share its class and about "
        r"$\log 10$ when the classes are mixed; because distances are relative, the encoder cannot lower it by "
        r"spreading all codes apart, only by pulling each class together and away from the others."
    )

    def variants(self, settings: StudySettings) -> list[Variant]:
        return [
            Variant(f"{kind}-class-{w:g}", kind.upper(), ModelConfig(kind=kind, hidden=settings.hidden, class_weight=w))
            for kind in ("ae", "vae")
            for w in settings.class_weights
        ]

    def summarise(self, result: StudyResult) -> list[str]:
        rows = {row["key"]: row for row in result.rows}
        lines = []
        for kind in ("ae", "vae"):
            weights = sorted(row["class_weight"] for row in result.rows if row["kind"] == kind)
            base, top = rows[f"{kind}-class-0"], rows[f"{kind}-class-{weights[-1]:g}"]
            lines.append(
                f"{kind.upper()}: class weight {weights[-1]:g} takes overlap {base['overlap']:.3f} -> "
                f"{top['overlap']:.3f}, silhouette {base['silhouette']:+.3f} -> {top['silhouette']:+.3f}, "
                f"kNN-5 {base['knn5_accuracy']:.3f} -> {top['knn5_accuracy']:.3f}, for MSE per pixel "
                f"{base['test_mse_per_pixel']:.4f} -> {top['test_mse_per_pixel']:.4f} "
                f"({_pct(top['test_mse_per_pixel'], base['test_mse_per_pixel'])})"
                + (
                    "; in between: "
                    + ", ".join(
                        f"weight {w:g} overlap {rows[f'{kind}-class-{w:g}']['overlap']:.3f}, MSE "
                        f"{rows[f'{kind}-class-{w:g}']['test_mse_per_pixel']:.4f}"
                        for w in weights[1:-1]
                    )
                    if len(weights) > 2
                    else ""
                )
                + "."
            )
        return lines
