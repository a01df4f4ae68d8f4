#!/usr/bin/env bash
# Builds, on a machine with Rust, what benches/gpu_check.py runs on a machine with an NVIDIA GPU that has
# no Rust and no network: release `train`, `bench` and the `parity` example for the cuda and the wgpu
# backends (stripped), the MNIST files from MNIST_DIR (for one training epoch there), and Debian's Vulkan
# loader packages (wgpu needs libvulkan.so.1, which a CUDA-only machine may lack).
#
#   MNIST_DIR=DIR bash benches/gpu_pack.sh [PACK_DIR]      default PACK_DIR: gpu-check/pack
#
# PACK_DIR is ignored by git: MNIST may not be committed, nor should binaries be. PACK_DIR.tar.xz beside it
# holds the same in about 40 MB (38 MB here; the binaries are ~40 MB each before compression), small enough to travel
# to a lent machine with the repository. The CUDA API version
# cudarc compiles against comes from `nvcc` where there is one; without it, from CUDARC_CUDA_VERSION,
# which this script sets to 13000 (CUDA 13.0: driver 580 or newer, as on the H200 machines this project
# is lent) unless it is set already. The two builds use their own target directories under target/, so
# neither rebuilds the other's dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
pack="${1:-gpu-check/pack}"
: "${MNIST_DIR:?set MNIST_DIR to the directory holding the four MNIST IDX files (.gz or not)}"
if ! command -v nvcc > /dev/null; then
  export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
fi

rm -rf "$pack"
mkdir -p "$pack/mnist" "$pack/gl"
for backend in wgpu cuda; do
  target="target/gpu-$backend"
  echo "gpu_pack: building the $backend binaries in $target"
  cargo build --release -q --target-dir "$target" -p train -p bench --no-default-features \
    --features "$backend"
  cargo build --release -q --target-dir "$target" -p model --example parity --no-default-features \
    --features "$backend"
  mkdir -p "$pack/$backend"
  cp "$target/release/train" "$target/release/bench" "$target/release/examples/parity" "$pack/$backend/"
  strip "$pack/$backend"/*
done

cp "$MNIST_DIR"/*-ubyte* "$pack/mnist/"
# The loader, as the device tool's README brings it; gpu_check.py unpacks it only where none is installed.
(cd "$pack/gl" && apt-get download libvulkan1 > /dev/null)
tar -cf - -C "$(dirname "$pack")" "$(basename "$pack")" | xz -T0 -9 > "$pack.tar.xz"
du -sh "$pack" "$pack"/* "$pack.tar.xz"
