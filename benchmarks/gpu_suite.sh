#!/usr/bin/env bash
# The GPU speed suite of issue 24, one command (meant to finish within 8 minutes on one H100):
#
#   1. writes the random-weight snapshot at the released sizes (benchmarks/random_snapshot.py --size full);
#   2. runs benchmarks/speed_presets.py on it in float16 at 512x512 with 24 frames: exact and every
#      preset, interleaved, one repetition;
#   3. runs benchmarks/lowvram_benchmark.py's loading modes (full, lowvram, dynamic) on the same
#      snapshot when COMFYUI_DIR names a ComfyUI install (run with its python: COMFYUI_PYTHON,
#      default $COMFYUI_DIR/.venv/bin/python); skipped otherwise;
#   4. prints one table.
#
# Usage: benchmarks/gpu_suite.sh [--dry-run] [WORK_DIR]
#   WORK_DIR (default: a temporary folder) holds the snapshot (about 9 GB at full size) and the
#   figures; a snapshot already there is reused.
#   --dry-run: the same steps on the CPU at the tiny random size, float32, 4 frames (checks the
#   script's pieces on a machine without a GPU; its figures mean nothing for a GPU).
# Environment: PYTHON (default python3), COMFYUI_DIR, COMFYUI_PYTHON, FRAMES (default 24).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dry=0
if [[ "${1:-}" == "--dry-run" ]]; then dry=1; shift; fi
work="${1:-$(mktemp -d -t mimaface-gpu-suite-XXXXXX)}"
py="${PYTHON:-python3}"
mkdir -p "$work"
start=$SECONDS

if [[ $dry == 1 ]]; then
  size=tiny; device=cpu; dtype=float32; frames=4
else
  size=full; device=cuda; dtype=float16; frames="${FRAMES:-24}"
  "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_suite: no CUDA GPU here (use --dry-run to check the script on a CPU)')"
fi
snapshot="$work/snapshot-$size"

echo "== 1/3 random snapshot ($size) in $snapshot"
if [[ ! -f "$snapshot/checkpoints/video/3dunet.pth" ]]; then
  "$py" "$here/random_snapshot.py" "$snapshot" --size "$size"
else
  echo "reusing the snapshot already there"
fi

echo "== 2/3 speed presets ($device $dtype, $frames frames at 512x512)"
"$py" "$here/speed_presets.py" --snapshot-dir "$snapshot" --random-size "$size" --device "$device" \
  --dtype "$dtype" --frames "$frames" --repeats 1 --json "$work/speed_presets.json" | tee "$work/speed_presets.txt"

echo "== 3/3 loading modes (lowvram_benchmark)"
lowvram="$work/lowvram.txt"
if [[ $dry == 1 ]]; then
  echo "skipped in --dry-run (lowvram_benchmark needs CUDA)" | tee "$lowvram"
elif [[ -z "${COMFYUI_DIR:-}" ]]; then
  echo "skipped: set COMFYUI_DIR to a ComfyUI install to measure its loading modes" | tee "$lowvram"
else
  "${COMFYUI_PYTHON:-$COMFYUI_DIR/.venv/bin/python}" "$here/lowvram_benchmark.py" "$COMFYUI_DIR" "$snapshot" \
    --frames "$frames" | tee "$lowvram"
fi

echo
echo "== the table ($device $dtype, 512x512, $frames frames, random weights at the '$size' size; $((SECONDS - start)) s in all)"
"$py" - "$work/speed_presets.json" "$lowvram" <<'EOF'
import json, re, sys

rows = json.load(open(sys.argv[1]))["rows"]
print(f"{'run':18s} {'UNet passes/frame':>17s} {'s/frame':>8s} {'x exact':>8s} {'first frame s':>13s} {'peak MiB':>9s}")
for r in rows:
    print(f"{'preset ' + r['preset']:18s} {r['passes']:17.1f} {r['seconds_per_frame']:8.3f} {r['ratio']:8.2f} "
          f"{r['first_frame_s']:13.2f} {r['peak_mib']:9.0f}")
for line in open(sys.argv[2]).read().splitlines():
    m = re.match(r"(\w+)\s+peak VRAM ([\d.]+) GiB, ([\d.]+) s per output frame", line)
    if m:
        print(f"{'ComfyUI ' + m[1]:18s} {'(25 steps)':>17s} {float(m[3]):8.3f} {'':>8s} {'':>13s} {float(m[2]) * 1024:9.0f}")
    elif line.strip():
        print(f"{'ComfyUI':18s} {line.strip()}")
EOF
