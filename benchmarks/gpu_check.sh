#!/usr/bin/env bash
# The CUDA checks of docs/gpu.md in one run: the CUDA tests, then `deltatune bench --device cuda` on the
# default hrnet and HRNet-W32 at their documented settings, batch 1 and 8. Writes every log and JSON
# result into OUTDIR (default ./gpu-results).
#
# Needs: python3 with a CUDA torch and deltatune importable (installed, or PYTHONPATH set), Pillow, tqdm,
# numpy, pandas, pytest. Where PyAV is missing, set DELTATUNE_VTEST_FRAMES to an image folder named
# `vtest` made by benchmarks/export_frames.py (40 frames); it is used as the video everywhere here.
#
# Run: bash benchmarks/gpu_check.sh [OUTDIR]
# (GPU_CHECK_DEVICE=cpu GPU_CHECK_FRAMES=3 GPU_CHECK_REPEATS=1 smoke-tests the script itself on a CPU.)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
video="${DELTATUNE_VTEST_FRAMES:-vtest}"
# HRNet-W32's weights: the distilled file when GPU_CHECK_W32_WEIGHTS names it, else seeded random weights
w32="${GPU_CHECK_W32_WEIGHTS:-none}"
# a 4 x 2 grid of 240x320 (3:4) windows over vtest's 768x576 frame: 8 streams for batch 8
grid=()
for y in 0 256; do for x in 0 176 352 528; do grid+=(--window "$x,$y,240,320"); done; done

{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', \
torch.backends.cudnn.version(), torch.cuda.get_device_name(0))"
} > "$out/env.txt" 2>&1

bench() {  # bench NAME ARGS...: one JSON result and its stderr
  local name="$1"; shift
  echo "== bench $name: $*" >> "$out/bench.log"
  timeout 300 python3 -m deltatune bench --video "$video" --frames "${GPU_CHECK_FRAMES:-40}" \
    --repeats "${GPU_CHECK_REPEATS:-5}" --device "${GPU_CHECK_DEVICE:-cuda}" --json "$@" \
    > "$out/bench_$name.json" 2>> "$out/bench.log"
  echo "== rc=$? $(date -u +%T)" >> "$out/bench.log"
}

bench hrnet_b1 --model hrnet --thresholds studies/thresholds/hrnet.json --batch 1
timeout 420 python3 -m pytest -q -p no:cacheprovider -m cuda -rs tests/delta/test_cuda.py > "$out/pytest.log" 2>&1
echo "rc=$?" >> "$out/pytest.log"
bench hrnet_b8 --model hrnet --thresholds studies/thresholds/hrnet.json --batch 8 "${grid[@]}"
bench w32_b1 --model hrnet --weights "$w32" --thresholds studies/thresholds/w32-distilled/hrnet.json --batch 1
bench w32_b8 --model hrnet --weights "$w32" --thresholds studies/thresholds/w32-distilled/hrnet.json --batch 8 \
  "${grid[@]}"
timeout 180 python3 benchmarks/gpu_profile.py --video "$video" --device "${GPU_CHECK_DEVICE:-cuda}" \
  > "$out/profile.txt" 2>&1
echo "rc=$?" >> "$out/profile.txt"
