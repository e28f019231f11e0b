# Every target installs what it needs first (scripts/setup.sh is idempotent and fast when done).
.PHONY: setup app test bench models

setup:
	scripts/setup.sh

# Install everything, then open the dashboard.
app: setup
	.venv/bin/streamlit run dashboard.py

# Install everything (Chromium included), then run the whole test suite.
test:
	scripts/setup.sh --browser
	.venv/bin/python -m pytest

bench: setup
	.venv/bin/python benchmarks/train_speed.py

# Retrain the shipped models in models/ (about 10 minutes on two CPU cores).
models: setup
	scripts/train_default_models.sh
