#!/usr/bin/env bash
# Burn's GPU backend (Vulkan: wgpu + SPIR-V) against the CPU paths of the same machine
# (docs/benchmarks.md, "GPU"): land-cover inference at several forward batch sizes, every
# class code compared with the fused CPU kernel's, and land-cover / crop-type training time per
# epoch; then the same measurements on Burn's CPU backends (ndarray, flex) on all cores.
#
#   scripts/gpu-throughput.sh [OUT_DIR]        # default target/gpu-throughput
#
# Needs a Vulkan driver and loader: libvulkan.so.1 (Debian: libvulkan1) and NVIDIA's driver, whose
# Vulkan ICD (libGLX_nvidia.so.0) loads only beside libglvnd (libglvnd0, libglx0, libegl1); without
# them Burn finds no Vulkan adapter and aborts.
# BIN: an already built `device_throughput` example with the `vulkan` feature (built on another
# x86-64 machine, say); else it is built here (~15 min on 2 cores).
#   PIXELS (default 4194304), ROUNDS (5), EPOCHS (5): the example's --pixels, --rounds, --epochs.
#   DEVICES (default "vulkan ndarray flex").
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/gpu-throughput}
mkdir -p "$OUT"
if [ -z "${BIN:-}" ]; then
    cargo build --release -p gengdi-models --features vulkan --example device_throughput || exit 1
    BIN=target/release/examples/device_throughput
fi
# NVIDIA's Vulkan driver where the loader does not look for it.
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
{ echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "cores: $(nproc)"; grep -m1 "model name" /proc/cpuinfo; } 2>&1 | tee "$OUT/env.txt"
args=(--data fixtures/data --weights models/weights --pixels "${PIXELS:-4194304}"
      --rounds "${ROUNDS:-5}" --epochs "${EPOCHS:-5}")
status=0
for device in ${DEVICES:-vulkan ndarray flex}; do
    echo "== $device"
    timeout "${DEVICE_TIMEOUT:-300}" "$BIN" --device "$device" "${args[@]}" 2>&1 \
        | tee "$OUT/$device.txt" || status=1
done
exit $status
