"""How models are trained: the room of everything that runs while a model learns.

- ``trainer``: :func:`~vae.training.trainer.train` over tensors held in memory, the settings and records it
  takes and gives, and the ``python -m vae.train`` command (``vae/train.py`` forwards to it);
- ``timeline``: what is recorded while it trains (frames of codes, loss terms, decoder snapshots) and what
  the pages compute from a recording;
- ``graph``: the training images' neighbour graph that the UMAP loss term trains on.

The models themselves (``vae.models``) know nothing of this room; the store saves what it produces.
"""
