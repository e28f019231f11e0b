"""``invertible``: can the decoder be the encoder's inverse?

PCA, the untied, the tied and the invertible dense AE (orthogonal weights, leaky ReLU, the decoder their
exact inverse) at each latent size, with how far E(D(z)) lands from z. Here: its variants, that
measurement (added to every row), the method in the page's words, and its answer.
"""

from __future__ import annotations

import torch

from vae.models import AutoEncoder, LatentModel, ModelConfig
from vae.studies.runner import Study, StudyResult, StudySettings, Variant


@torch.no_grad()
def right_inverse_error(model: LatentModel, codes: torch.Tensor, through_pixels: bool = False) -> float:
    """How far the encoder lands from the code the decoder drew: mean |E(D(z)) - z|^2 / mean |z - mean z|^2.

    codes ``[N, D]``. 0 when the encoder inverts the decoder exactly; 1 is as far as the codes' own spread.
    D is ``decode`` (the [0, 1] images the page draws) unless ``through_pixels``: then an invertible or
    linear AE's unclamped decoder output, the exact inverse of its encoder.
    """
    decoded = model.decoder(codes) if through_pixels else model.decode(codes)
    again = model.embed(decoded)
    spread = (codes - codes.mean(0)).pow(2).sum(1).mean().clamp_min(1e-12)
    return float((again - codes).pow(2).sum(1).mean() / spread)


def right_inverse_errors(model: LatentModel, test_codes: torch.Tensor, seed: int, n: int = 2000) -> dict[str, float]:
    """:func:`right_inverse_error` on ``n`` test codes and on ``n`` codes drawn from a Gaussian with the test
    codes' mean and covariance (codes no image was encoded to: the decoder has never been trained there)."""
    generator = torch.Generator().manual_seed(seed)
    on_data = test_codes[torch.randperm(len(test_codes), generator=generator)[:n]].double()
    mean, covariance = on_data.mean(0), torch.cov(on_data.t())  # [D], [D, D]
    factor = torch.linalg.cholesky(covariance + 1e-9 * torch.eye(len(mean), dtype=torch.float64))
    random = (mean + torch.randn(n, len(mean), generator=generator, dtype=torch.float64) @ factor.t()).float()
    on_data = on_data.float()
    out = {
        "inverse_error": right_inverse_error(model, on_data),
        "inverse_error_random": right_inverse_error(model, random),
    }
    if isinstance(model, AutoEncoder) and model.draws_pixels:
        out["inverse_error_exact"] = max(right_inverse_error(model, z, through_pixels=True) for z in (on_data, random))
    return out


class Invertible(Study):
    name = "invertible"
    question = "Can the decoder be the inverse of the encoder?"
    intro = (
        r"The invertible AE (InvAuto, Teng & Choromanska, 2019) makes the decoder the encoder's inverse layer by "
        r"layer: each encoder map $h \mapsto \mathrm{lrelu}(W h + b)$ has orthonormal rows ($W W^T = I$, kept so "
        r"during training) and the decoder undoes it with $h \mapsto W^T(\mathrm{lrelu}^{-1}(h) - b)$. So "
        r"$E(D(z)) = z$ for *every* code, and the decoder has no weights of its own. It is measured beside the "
        r"untied and the tied AE (same layers, same training) and PCA, whose decoder is also its encoder's "
        r"transpose. $|E(D(z)) - z|^2$ is divided by the codes' own spread: 0 is an exact inverse, 1 is as far "
        r"off as the codes are spread; *random codes* are drawn from a Gaussian with the test codes' mean and "
        r"covariance, where no image was encoded."
    )

    def variants(self, settings: StudySettings) -> list[Variant]:
        hidden = settings.hidden
        out = []
        for d in settings.dims:
            out += [
                Variant(f"pca-{d}", "PCA", ModelConfig(kind="pca", latent_dim=d, hidden=(), recon_loss="mse")),
                Variant(f"dense-{d}", "dense AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden)),
                Variant(f"tied-{d}", "tied AE", ModelConfig(kind="ae", latent_dim=d, hidden=hidden, tied=True)),
                Variant(
                    f"invertible-{d}",
                    "invertible AE",
                    ModelConfig(kind="ae", latent_dim=d, hidden=hidden, invertible=True, recon_loss="mse"),
                ),
            ]
        return out

    def measure(self, model: LatentModel, test_codes: torch.Tensor, settings: StudySettings) -> dict[str, float]:
        return right_inverse_errors(model, test_codes, settings.seed)

    def summarise(self, result: StudyResult) -> list[str]:
        rows = {row["key"]: row for row in result.rows}
        dims = [d for d in result.settings.dims if f"invertible-{d}" in rows]
        lo, hi = dims[0], dims[-1]
        mse = lambda key: rows[key]["test_mse_per_pixel"]  # noqa: E731
        err = lambda key, where="inverse_error": rows[key][where]  # noqa: E731
        pair = lambda key: f"{err(key):.2g} / {err(key, 'inverse_error_random'):.2g}"  # noqa: E731
        exact = max(rows[f"invertible-{d}"]["inverse_error_exact"] for d in dims)
        closer = {
            where: sum(err(f"invertible-{d}", where) < err(f"dense-{d}", where) for d in dims)
            for where in ("inverse_error", "inverse_error_random")
        }
        ordinary = [err(f"{family}-{d}") for family in ("dense", "tied") for d in dims]
        ordinary_random = [err(f"{family}-{d}", "inverse_error_random") for family in ("dense", "tied") for d in dims]
        beats_pca = sum(mse(f"invertible-{d}") < mse(f"pca-{d}") for d in dims)
        behind_dense = sum(mse(f"invertible-{d}") > mse(f"dense-{d}") for d in dims)
        inverse, dense, tied = rows[f"invertible-{lo}"], rows[f"dense-{lo}"], rows[f"tied-{lo}"]
        exactness = "is an exact inverse" if exact < 1e-6 else "is not an exact inverse in this run"
        return [
            f"Through its unclamped decoder the invertible AE {exactness}: E(D(z)) returns z to a relative squared "
            f"error of {exact:.0e} or less at every size, on test codes and on random codes. Through the [0, 1] "
            f"images it draws (clamping moves the pixels it would draw below 0 or above 1), it lands "
            f"{pair(f'invertible-{lo}')} (test / random codes) from z at D={lo} and {pair(f'invertible-{hi}')} at "
            f"D={hi}; the untied AE {pair(f'dense-{lo}')} and {pair(f'dense-{hi}')}, the tied AE "
            f"{pair(f'tied-{lo}')} and {pair(f'tied-{hi}')}. It is closer than the untied AE at "
            f"{closer['inverse_error']} of {len(dims)} sizes on test codes and {closer['inverse_error_random']} of "
            f"{len(dims)} on random codes: "
            + (
                f"ordinary AEs are nearly right inverses too where real images' codes lie (within {max(ordinary):.1%} "
                f"of the codes' spread)"
                if max(ordinary) < 0.05
                else f"ordinary AEs land up to {max(ordinary):.1%} of the codes' spread away even on real images' codes"
            )
            + f"; on random codes, away from the data, up to {max(ordinary_random):.0%}.",
            f"The price of an exact inverse, MSE per pixel: {mse(f'invertible-{lo}'):.4f} vs "
            f"{mse(f'dense-{lo}'):.4f} (untied), {mse(f'tied-{lo}'):.4f} (tied) and {mse(f'pca-{lo}'):.4f} (PCA) at "
            f"D={lo}; {mse(f'invertible-{hi}'):.4f} vs {mse(f'dense-{hi}'):.4f}, {mse(f'tied-{hi}'):.4f} and "
            f"{mse(f'pca-{hi}'):.4f} at D={hi}. It reconstructs better than PCA at {beats_pca} of {len(dims)} sizes "
            f"and worse than the untied AE at {behind_dense} of {len(dims)}; kNN-5 at D={lo} "
            f"{inverse['knn5_accuracy']:.3f} vs {dense['knn5_accuracy']:.3f} (untied), {tied['knn5_accuracy']:.3f} "
            f"(tied), {rows[f'pca-{lo}']['knn5_accuracy']:.3f} (PCA).",
            f"Parameters at D={lo}: {inverse['parameters']:,} (the encoder's orthonormal maps; its decoder has none of "
            f"its own) vs {dense['parameters']:,} untied and {tied['parameters']:,} tied.",
        ]
