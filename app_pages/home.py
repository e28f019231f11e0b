"""Home: what is compared, whether the data is there, and the ideas behind the two models."""

from __future__ import annotations

import streamlit as st

from app import cache, state
from vae import judge as judges
from vae.data import DATASETS, resolve_data_dir
from vae.store import StoredModel, scan_models


def data_status() -> None:
    for name, dataset in DATASETS.items():
        raw = resolve_data_dir(cache.data_dir()) / dataset.folder / "raw"
        present = [file for file in dataset.sha256 if (raw / file).is_file()]
        if len(present) == len(dataset.sha256):
            st.success(
                f"{dataset.title} ready: 60,000 training and 10,000 test images in `{raw}` (SHA-256 checked on load)."
            )
            continue
        missing = ", ".join(sorted(set(dataset.sha256) - set(present)))
        fetch = f"Run `python -m vae.data fetch --dataset {name}` (or `make app`)"
        if name == "mnist":
            st.error(f"{dataset.title} files missing in `{raw}`: {missing}. {fetch}.")
        else:  # optional: only its own models need it
            st.info(
                f"{dataset.title} is not installed (`{raw}` lacks {missing}). {fetch}; it reads Debian's "
                "`dataset-fashion-mnist` package."
            )


def store_status() -> None:
    """Folders in the store that are not loadable models: listed with the reason, never loaded."""
    broken = [entry for entry in scan_models(cache.models_dir()) if isinstance(entry, tuple)]
    if broken:
        reasons = "\n".join(f"- `{path.name}`: {error}" for path, error in broken)
        st.warning(f"{len(broken)} folder(s) in the model store were skipped:\n{reasons}")


# Three pages say "kNN-5", measured three ways; each label says which (and its tooltip names the others).
KNN_LABEL = "kNN-5, train → test"
KNN_HELP = (
    "A 5-nearest-neighbour vote fitted on the 60,000 training codes and scored on the 10,000 test codes, measured "
    "when the model was saved. Class overlap's kNN-5 is leave-one-out among the 10,000 test codes, the Training "
    "timeline's leave-one-out among its 2,000 recorded test images, so their numbers differ a little."
)


SAMPLES_LABEL = "confident samples"


def judge_help(dataset: str) -> str:
    """What the judge of ``dataset`` is, with its recorded test accuracy, and that it only measures."""
    try:
        record = judges.read_record(judges.JUDGES_DIR / dataset)
    except judges.JudgeError:
        return f"No judge is shipped for {DATASETS[dataset].title}, so its samples are not measured."
    return (
        f"The judge is a small convolutional classifier shipped with the project (`judges/{dataset}`, "
        f"{record.test_accuracy:.1%} on {DATASETS[dataset].title}'s test images). It only measures decoded "
        "images: no model trains on it."
    )


def confident_samples(stored: StoredModel) -> tuple[str, str]:
    """The Home card's figure for ``metrics["samples"]`` (``vae.training.saving.judge_metrics``) and its tooltip."""
    samples = stored.metrics.get("samples")
    if samples is None:
        return "–", (
            "Not measured for this model (saved before the judge existed, or its dataset has no judge; "
            "`make samples` measures the models of the store). " + judge_help(stored.dataset_name)
        )
    ceiling = samples["reconstructions"]
    return f"{samples['confident_share']:.1%}", (
        f"The share of {samples['n']:,} random codes (seed {samples['seed']}) whose decoded image the judge gives "
        f"one class with probability ≥ {samples['confident_at']:g}: for a VAE drawn from its prior N(0, I), for an "
        "AE or PCA from a Gaussian fitted to its training codes. Their class histogram's entropy is "
        f"{samples['entropy']:.2f} nats (balanced: log 10 = 2.30). The ceiling, its own reconstructions of the "
        f"{ceiling['n']:,} test images: {ceiling['confident_share']:.1%} confident (entropy "
        f"{ceiling['entropy']:.2f}). " + judge_help(stored.dataset_name)
    )


def model_cards(pair: state.Pair) -> None:
    columns = st.columns(3)
    for column, stored, role in zip(columns, (pair.left, pair.right, pair.baseline), ("left", "right", "baseline")):
        with column:
            if stored is None:
                st.info("No PCA baseline of this latent size in the store.")
                continue
            st.markdown(f"**{stored.name}** ({role})  \n{stored.config.describe()}")
            metrics = stored.metrics
            a, b = st.columns(2)
            a.metric("test loss", f"{metrics.get('test_loss', float('nan')):.1f}")
            b.metric("MSE / pixel", f"{metrics.get('test_mse_per_pixel', float('nan')):.4f}")
            c, d = st.columns(2)
            c.metric(KNN_LABEL, f"{metrics.get('knn5_accuracy', float('nan')):.3f}", help=KNN_HELP)
            value, text = confident_samples(stored)
            d.metric(SAMPLES_LABEL, value, help=text)


EXPLANATION = r"""
### Two ways to squeeze a digit through a bottleneck

An **auto-encoder** has an *encoder* $e$ that maps a 784-pixel image $x$ to a short code $z = e(x) \in \mathbb{R}^D$
(the **bottleneck**), and a *decoder* $d$ that draws the image back, $x' = d(z)$. It is trained on reconstruction
alone, for example the binary cross-entropy summed over pixels,

$$\mathcal{L}_{AE} = -\sum_{i=1}^{784} \big[x_i \log x'_i + (1 - x_i)\log(1 - x'_i)\big] \;(+\;\lambda \lVert z \rVert_1),$$

so nothing tells it *where* in the plane to put each digit, or what the gaps between digits should decode to.

A **variational auto-encoder** makes the encoder output a distribution instead of a point: a mean $\mu(x)$ and a
log-variance $\log \sigma^2(x)$. Training draws a code with the **reparameterisation trick**

$$z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I),$$

which keeps $z$ differentiable in $\mu$ and $\sigma$, and adds a **KL term** that pulls every posterior towards the
prior $\mathcal{N}(0, I)$ (Kingma & Welling 2013, appendix B):

$$\mathcal{L}_{VAE} = \mathbb{E}_{\varepsilon}\big[-\log p(x \mid z)\big] + \beta\,\mathrm{KL}\big(q(z \mid x)\,\|\,\mathcal{N}(0, I)\big),$$

$$\mathrm{KL} = -\tfrac12 \sum_{j=1}^{D}\big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big).$$

Two effects to look for in the explorer:

- **The noise smooths the decoder.** Every code is decoded with some jitter around it, so nearby points must decode
  to similar digits, and the path between two digits passes through plausible in-between shapes.
  The AE's decoder was only ever asked about the exact codes of training images.
- **The KL packs the classes together.** Spreading classes far apart costs KL, so the VAE's classes sit around
  the origin within a few units and touch; the AE is free to push them apart, leaving empty gaps.
  *Class overlap* measures this.

**PCA** is the linear baseline: the best a linear encoder and decoder can do under squared error. A dense AE with
a linear activation learns the same subspace; the non-linear ones should beat it.
"""


def render() -> None:
    state.page_frame()
    st.title("What does an auto-encoder learn?")
    st.caption(
        "An AE and a VAE trained on MNIST (or Fashion-MNIST), side by side. Pick the dataset and the pair in the sidebar."
    )
    data_status()
    store_status()
    pair = state.pair()
    if pair is None:
        st.warning("The model store is empty. Train a pair on the **Train** page, or run `make models`.")
    else:
        model_cards(pair)
        st.markdown(
            "Open the **Latent explorer** in the sidebar and move the pointer over either plane: its decoder draws "
            "the digit at that spot as you move; click to pin it."
        )
    st.markdown(EXPLANATION)


with state.guard():
    render()
