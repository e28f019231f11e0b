#!/usr/bin/env bash
# Retrain the models shipped in models/ with the project's own command line. Re-runnable: each save
# replaces its folder atomically. About 15 minutes on two CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
train() { .venv/bin/python -m vae.train "$@"; }

# The 2-D pair: the planes the explorer shows directly.
train --kind ae  --latent-dim 2 --hidden 512,256 --epochs 30 --batch-size 128 --lr 1e-3 --seed 0 --out models/ae-2d
train --kind vae --latent-dim 2 --hidden 512,256 --epochs 30 --batch-size 128 --lr 1e-3 --seed 0 --out models/vae-2d
# The 16-D pair: seen through a 2-D projection (PCA or UMAP).
train --kind ae  --latent-dim 16 --hidden 512,256 --epochs 20 --batch-size 128 --lr 1e-3 --seed 0 --out models/ae-16d
train --kind vae --latent-dim 16 --hidden 512,256 --epochs 20 --batch-size 128 --lr 1e-3 --seed 0 --out models/vae-16d
# PCA baselines with the same interface.
train --kind pca --latent-dim 2 --out models/pca-2d
train --kind pca --latent-dim 16 --out models/pca-16d
