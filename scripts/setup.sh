#!/usr/bin/env bash
# Install everything the project needs, idempotently: a virtual environment in .venv with requirements.txt,
# the page's vendored front-end files in static/vendor (from the npm registry, checked by SHA-256), and
# verified MNIST (and, from Debian's package, Fashion-MNIST) files in ./data. With --browser, also Chromium
# and Node for the browser and JavaScript tests (Debian's packages; Playwright's own browser download cannot
# work offline).
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $($python_bin --version)"
    "$python_bin" -m venv .venv
fi

# Reinstall only when requirements.txt changed since the last successful install.
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "==> installing requirements (torch is large: a few minutes on a fresh machine)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    echo "$wanted" > "$stamp"
fi

# Ray (requirements-ray.txt) is optional: for the tests (--browser, as make test runs) and for an app started with
# VAE_JOBS naming a Ray (see the README's "Training on a cluster"). Its own stamp, the same rule.
if [ "${1:-}" = "--browser" ] || { [ -n "${VAE_JOBS:-}" ] && [ "${VAE_JOBS}" != local ]; }; then
    ray_stamp=.venv/.requirements-ray.sha256
    ray_wanted=$(sha256sum requirements-ray.txt | cut -d' ' -f1)
    if [ "$(cat "$ray_stamp" 2>/dev/null)" != "$ray_wanted" ]; then
        echo "==> installing requirements-ray.txt (Ray, for VAE_JOBS=ray and its tests)"
        .venv/bin/python -m pip install --quiet -r requirements-ray.txt
        echo "$ray_wanted" > "$ray_stamp"
    fi
fi

# Fashion-MNIST, the second dataset, comes from Debian's package (offline); it is optional, so a machine
# without root or apt-get carries on with MNIST alone.
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing Debian's dataset-fashion-mnist"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
        } || echo "note: dataset-fashion-mnist could not be installed; Fashion-MNIST stays unavailable" >&2
    else
        echo "note: Fashion-MNIST needs Debian's dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist)" >&2
    fi
fi

echo "==> front-end files (onnxruntime-web from the npm registry, checked by SHA-256)"
.venv/bin/python -m app.vendor fetch

echo "==> MNIST and Fashion-MNIST"
.venv/bin/python -m vae.data fetch

# What the page runs for each shipped model: exported once per weights, so no page waits for an export.
echo "==> the models' decoders and encoders as ONNX (for the in-page planes)"
OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m vae.onnx cache models --cache "${VAE_ONNX_DIR:-${VAE_CACHE_DIR:-.cache}/onnx}"

# Node runs the page's JavaScript tests (static/tests/, node --test); Debian's package, like Chromium.
if [ "${1:-}" = "--browser" ] && ! command -v node >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing Node for the page's JavaScript tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
    else
        echo "note: node is missing and cannot be installed here (needs root and apt-get);" >&2
        echo "      the JavaScript tests will be skipped. Install it with: sudo apt-get install nodejs" >&2
    fi
fi

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing Chromium for the browser tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "note: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get);" >&2
        echo "      the browser tests will be skipped. Install it with: sudo apt-get install chromium" >&2
    fi
fi

# The menu's icons are emoji (so no page asks a font host for a Material favicon); a headless machine has no
# colour-emoji font, and its screenshots would show empty boxes in their place.
if [ "${1:-}" = "--browser" ] && ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing an emoji font for the browser tests' screenshots"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >/dev/null 2>&1 || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >/dev/null
        }
    fi
fi
