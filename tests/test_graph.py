"""The neighbour graph behind the UMAP term: umap-learn's fuzzy graph, exact neighbours, edge sampling,
and training on edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import SEED
from vae.training.graph import NeighbourGraph, fuzzy_graph, nearest_neighbours


@pytest.fixture(scope="module")
def digits(mnist_subset) -> tuple[torch.Tensor, torch.Tensor]:
    train_images, train_labels, _, _ = mnist_subset
    return train_images[:600], train_labels[:600]


def test_nearest_neighbours_are_exact_and_start_with_the_image_itself(digits) -> None:
    from sklearn.neighbors import NearestNeighbors

    images, _ = digits
    indices, distances = nearest_neighbours(images, k=6, chunk=128)  # several chunks
    x = images.reshape(len(images), -1).double().numpy() / 255
    reference_distances, reference = NearestNeighbors(n_neighbors=6).fit(x).kneighbors(x)
    assert indices.shape == distances.shape == (len(images), 6)
    assert np.array_equal(indices[:, 0], np.arange(len(images)))
    assert np.allclose(distances, reference_distances, atol=1e-4)
    assert np.mean(indices == reference) > 0.99  # ties between equal distances may be ordered differently
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(images[:3], k=5)


def test_fuzzy_graph_is_umap_learns_on_exact_neighbours(digits) -> None:
    """The reference: umap-learn's fuzzy_simplicial_set on scikit-learn's full distance matrix."""
    from sklearn.metrics import pairwise_distances
    from umap.umap_ import fuzzy_simplicial_set

    images, _ = digits
    graph = fuzzy_graph(images, n_neighbours=10)
    x = images.reshape(len(images), -1).double().numpy() / 255
    reference, _, _ = fuzzy_simplicial_set(pairwise_distances(x), 10, np.random.RandomState(SEED), "precomputed")
    ours = np.zeros((len(images), len(images)))
    ours[graph.heads.numpy(), graph.tails.numpy()] = graph.weights.numpy()
    assert np.allclose(ours, reference.toarray(), atol=1e-4)
    assert np.allclose(ours, ours.T)  # the fuzzy union is symmetric
    assert 0 < graph.weights.min() and graph.weights.max() <= 1
    with pytest.raises(ValueError, match="more than 10 images"):
        fuzzy_graph(images[:10], n_neighbours=10)


def test_the_graph_mostly_joins_digits_of_one_class(digits) -> None:
    images, labels = digits
    graph = fuzzy_graph(images)
    same = (labels[graph.heads] == labels[graph.tails]).double()
    chance = float((torch.bincount(labels).double() / len(labels)).pow(2).sum())  # about 0.1
    # Pixel neighbours are mostly the same digit: what lets a label-free loss separate the classes.
    assert float((same * graph.weights).sum() / graph.weights.sum()) > 6 * chance


def test_edges_are_drawn_in_proportion_to_their_weights() -> None:
    graph = NeighbourGraph(
        heads=torch.tensor([0, 1, 2, 3]),
        tails=torch.tensor([1, 0, 3, 2]),
        weights=torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64),
        n_points=4,
    )
    heads, tails = graph.sample(200_000, torch.Generator().manual_seed(SEED))
    assert torch.equal(tails, torch.tensor([1, 0, 3, 2])[heads])  # each draw is one whole edge
    shares = torch.bincount(heads, minlength=4).double() / len(heads)
    assert torch.allclose(shares, graph.weights, atol=0.005)
    again, _ = graph.sample(10, torch.Generator().manual_seed(SEED))
    assert torch.equal(again, graph.sample(10, torch.Generator().manual_seed(SEED))[0])  # seeded


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"heads": torch.tensor([0, 1]), "tails": torch.tensor([1]), "weights": torch.ones(2)}, "one length"),
        (
            {
                "heads": torch.tensor([], dtype=torch.int64),
                "tails": torch.tensor([], dtype=torch.int64),
                "weights": torch.ones(0),
            },
            "no edges",
        ),
        ({"heads": torch.tensor([0, 5]), "tails": torch.tensor([5, 0]), "weights": torch.ones(2)}, "index"),
    ],
)
def test_malformed_graphs_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NeighbourGraph(n_points=3, **fields)


def test_training_with_the_umap_term_separates_classes_without_labels(mnist_subset) -> None:
    from vae.metrics import embed_images, knn_accuracy
    from vae.models import ModelConfig
    from vae.training.trainer import TrainSettings, train

    train_images, train_labels, test_images, test_labels = mnist_subset
    graph = fuzzy_graph(train_images)
    settings = TrainSettings(epochs=10, batch_size=64, learning_rate=3e-3, seed=SEED)
    accuracy = {}
    for name, config in {
        "ae": ModelConfig(kind="ae", latent_dim=2, hidden=(64,)),
        "umap": ModelConfig(kind="ae", latent_dim=2, hidden=(64,), umap_weight=1.0, decoupled=True),
    }.items():
        result = train(config, train_images, test_images, settings, graph=graph, device="cpu")
        history = result.history
        assert ("umap" in history[-1].train) == (name == "umap")
        assert "umap" not in history[-1].test  # the test images are not in the graph
        if name == "umap":
            assert history[-1].train["umap"] < 0.8 * history[0].train["umap"]
        model = result.model
        accuracy[name] = knn_accuracy(
            embed_images(model, train_images), train_labels, embed_images(model, test_images), test_labels
        )
    assert accuracy["umap"] > accuracy["ae"] + 0.05
    with pytest.raises(ValueError, match="the graph joins"):
        train(
            ModelConfig(kind="ae", latent_dim=2, hidden=(8,), umap_weight=1.0),
            train_images[:500],
            None,
            settings,
            graph=graph,
        )
