#!/usr/bin/env bash
# Retrain the models shipped in models/ with the project's own command line. Re-runnable: each save
# replaces its folder atomically. About 25 minutes on two CPU cores.
# Every trained model records its timeline (the codes of 2,000 test images at 0, 1, 2, 4, ... batches and
# every epoch, see vae/training/timeline.py) and keeps its decoder at 0, 32, 256 and 2,048 batches, except:
# the 16-D pair keeps no decoder (its pinned points are approximate codes, and its 16-D codes already take
# 4.5 MB per model), and the 60-second yardstick records nothing (its budget is for training alone).
set -euo pipefail
# Sleep, not spin, while waiting for work: spinning OpenMP threads collapse throughput when anything
# else runs on the same cores (measured: 2 batch/s instead of 90).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
cd "$(dirname "$0")/.."
train() { .venv/bin/python -m vae.train "$@"; }

# The 2-D pair: the planes the explorer shows directly.
train --kind ae  --latent-dim 2 --hidden 512,256 --epochs 30 --batch-size 128 --lr 1e-3 --seed 0 --out models/ae-2d
train --kind vae --latent-dim 2 --hidden 512,256 --epochs 30 --batch-size 128 --lr 1e-3 --seed 0 --out models/vae-2d
# The 16-D pair: seen through a 2-D projection (PCA or UMAP).
train --kind ae  --latent-dim 16 --hidden 256,128 --epochs 20 --batch-size 128 --lr 1e-3 --seed 0 --timeline-decoders none --out models/ae-16d
train --kind vae --latent-dim 16 --hidden 256,128 --epochs 20 --batch-size 128 --lr 1e-3 --seed 0 --timeline-decoders none --out models/vae-16d
# PCA baselines with the same interface.
train --kind pca --latent-dim 2 --out models/pca-2d
train --kind pca --latent-dim 16 --out models/pca-16d
# The speed/quality yardstick: a 20-D VAE given at most 60 s of training on this CPU.
train --kind vae --latent-dim 20 --hidden 512,256 --epochs 12 --max-seconds 60 --batch-size 128 --lr 1e-3 --seed 0 --no-timeline --out models/vae-20d-60s
# The same 2-D pair and PCA baseline on Fashion-MNIST (Debian's dataset-fashion-mnist), for the dataset switch.
train --kind ae  --latent-dim 2 --hidden 512,256 --epochs 30 --batch-size 128 --lr 1e-3 --seed 0 --dataset fashion-mnist --out models/ae-2d-fashion
train --kind vae --latent-dim 2 --hidden 512,256 --epochs 30 --batch-size 128 --lr 1e-3 --seed 0 --dataset fashion-mnist --out models/vae-2d-fashion
train --kind pca --latent-dim 2 --dataset fashion-mnist --out models/pca-2d-fashion
# The conv pair and the UMAP encoder (umap-ae-2d) of the Experiments page are saved by `make experiments`
# (python -m vae.experiments run --save-models models).
