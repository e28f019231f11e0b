"""``beta``: what does the KL term do? 2-D VAEs with the KL weighted by each beta (0 is a noisy AE).

Here: its variants, the loss it varies in the page's words, and its answer.
"""

from __future__ import annotations

from vae.models import ModelConfig
from vae.studies.runner import Study, StudyResult, StudySettings, Variant


class Beta(Study):
    name = "beta"
    question = "What does the KL term do?"
    intro = (
        r"The VAE's loss is $\text{recon} + \beta \cdot KL(q(z|x)\,\|\,N(0, I))$; $\beta = 0$ keeps the sampling "
        r"noise but drops the pull towards the prior (a noisy AE), $\beta = 1$ is the ELBO."
    )

    def variants(self, settings: StudySettings) -> list[Variant]:
        return [
            Variant(f"beta-{b:g}", "VAE", ModelConfig(kind="vae", hidden=settings.hidden, beta=b))
            for b in settings.betas
        ]

    def summarise(self, result: StudyResult) -> list[str]:
        ordered = sorted(result.rows, key=lambda row: row["beta"])
        a, b = ordered[0], ordered[-1]
        worst = max(ordered, key=lambda row: row["overlap"])
        kl_falls = all(x["test_kl"] >= y["test_kl"] for x, y in zip(ordered, ordered[1:]))
        return [
            f"From beta {a['beta']:g} to {b['beta']:g} the KL {'falls steadily' if kl_falls else 'moves'} from "
            f"{a['test_kl']:.1f} to {b['test_kl']:.1f} nats while reconstruction rises from {a['test_recon']:.1f} to "
            f"{b['test_recon']:.1f} nats: the codes are pulled into the prior's disc and carry less detail.",
            "Class overlap (share of 5 nearest neighbours from another class) by beta: "
            + ", ".join(f"{row['overlap']:.3f} (β={row['beta']:g})" for row in ordered)
            + f"; most at β={worst['beta']:g}. kNN-5 accuracy: "
            + ", ".join(f"{row['knn5_accuracy']:.3f}" for row in ordered)
            + ".",
        ]
