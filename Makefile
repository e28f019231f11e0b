# Every target installs what it needs first (scripts/setup.sh is idempotent and fast when done).
.PHONY: setup app notebook test bench models experiments judges samples mutants

setup:
	scripts/setup.sh

# Install everything, then open the dashboard.
app: setup
	.venv/bin/streamlit run dashboard.py

# The planes in a notebook: JupyterLab on notebooks/explore.ipynb (vae.widget.LatentPlanes).
notebook: setup
	OMP_WAIT_POLICY=PASSIVE .venv/bin/jupyter lab notebooks/explore.ipynb

# Install everything (Chromium included), check the formatting and the lint, then run the whole test suite.
test:
	scripts/setup.sh --browser
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/python -m pytest

bench: setup
	.venv/bin/python benchmarks/train_speed.py

# Retrain the shipped models in models/ (about 10 minutes on two CPU cores).
models: setup
	scripts/train_default_models.sh

# Recompute the Experiments page's shipped results (experiments/) and the models it saves into models/ (the
# conv pair, umap-ae-2d, umap-conv-2d): about 3.3 hours on two CPU cores; the page can also recompute one study at a time.
experiments: setup
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m vae.experiments run --save-models models

# Retrain the shipped judges in judges/ (the classifiers that measure decoded images): about 5 minutes for
# MNIST and 13 for Fashion-MNIST on two busy CPU cores.
judges: setup
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m vae.judge train --dataset mnist
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m vae.judge train --dataset fashion-mnist

# The judges' figures in each model's metrics (the share of 10,000 seeded samples it calls confident digits, their
# class histogram, the same for the test reconstructions): fills model.json only, weights untouched; about 10
# minutes for the shipped models on two busy cores. Models saved since the judges exist have them already.
samples: setup
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/measure_samples.py

# Mutation testing of the core modules (mutmut, in its own venv under .cache): all of them (two hours or more on
# two shared cores), or one: make mutants MODULE=vae/store.py; ARGS=--again reruns only what the last run left.
# Not part of make test or CI; the README has the last report.
mutants: setup
	OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/mutants.py $(MODULE) $(ARGS)
