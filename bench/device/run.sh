#!/usr/bin/env bash
# On the GPU machine, from .devrun/ (bench/device/pack.sh): unpack node + onnxruntime, generate the
# gemma-2-2b-shaped checkpoint, then run the stages named in $STAGES (default: all, in this order:
# webgpu profile cpu tuned demo small-pages),
# each a gpu-check process writing its log and JSON report (into $OUT/results.tar, remade after
# each stage: the device tool returns at most 8 files):
#   webgpu   warm WebGPU traces with the defaults, per-phase times, MatMul rates (--dump: the graph),
#            then each of $VARIANTS on the same opened model (backward forms, batch sizes)
#   cpu      the CPU trace, and its difference from the WebGPU graph (same --dump)
#   profile  an ONNX Runtime profile of a WebGPU trace: GPU time per kernel vs the runs' wall time
#   tuned    WebGPU with $TUNED_OPTIONS (WebGPU provider settings) instead of the defaults
#   demo     the demo model on WebGPU against the CPU
#   small-pages  WebGPU without huge pages (open and trace times against the webgpu stage's)
# A stage starts only if the 600 s the device tool allows a command leave it room.
set -u
cd "$(dirname "$0")"
T0=$(date +%s)
el() { echo "[+$(( $(date +%s) - T0 ))s] $*"; }
LIMIT=${LIMIT:-585}  # seconds this command may run (the device call's timeout_s, less a margin)
left() { echo $(( LIMIT - $(date +%s) + T0 )); }
STAGES=${STAGES:-webgpu profile cpu tuned demo small-pages}
TUNED_OPTIONS=${TUNED_OPTIONS:-validationMode=disabled,maxNumPendingDispatches=256}
VARIANTS=${VARIANTS:-all-positions:CIRCUIT_BACKWARD_POSITIONS=all;cost-cuts:CIRCUIT_BATCH_CUTS=cost;timed-cuts:CIRCUIT_BATCH_CUTS=timed;all-rows:CIRCUIT_BACKWARD_ROWS=all;host-sources:CIRCUIT_BACKWARD_SOURCES=host;no-prefault:CIRCUIT_PREFAULT=0;joined:CIRCUIT_BACKWARD_OUTPUTS=joined;f16:CIRCUIT_BACKWARD_PRECISION=f16;matmul:CIRCUIT_BACKWARD_PROJECTION=matmul;f16-matmul:CIRCUIT_BACKWARD_PRECISION=f16,CIRCUIT_BACKWARD_PROJECTION=matmul;b512:batch=512}
# Huge pages for large allocations, as bin/circuit.mjs gives the CLI (HUGE_PAGES=0: off).
[ "${HUGE_PAGES:-1}" = 0 ] || export GLIBC_TUNABLES=glibc.malloc.hugetlb=1
[ -n "${SKIP_GL:-}" ] || { for f in ../.gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
mkdir -p bin && xz -dc node.xz > bin/node && chmod +x bin/node
xz -dc libonnxruntime.so.1.xz > node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
el "node $(bin/node --version), nproc $(nproc), free $(free -g | awk '/Mem/{print $7}') GiB, disk $(df -h /tmp | awk 'NR==2{print $4}'), stages: $STAGES"
C=/tmp/gc; D=/tmp/dump; R=/tmp/results; mkdir -p $R
el gen
timeout 170 bin/node gpu-check.mjs --synthetic 2b --skip-demo --providers none --cache-dir $C 2>&1 | tail -2

# stage NAME SECONDS_NEEDED [ENV=VALUE ...] -- gpu-check arguments
stage() {
  local name=$1 need=$2; shift 2
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local l; l=$(left)
  if [ "$l" -lt "$need" ]; then el "$name: skipped, ${l}s left"; return; fi
  el "$name"
  env "${envs[@]}" timeout $(( l - 5 )) bin/node gpu-check.mjs "$@" --json "$R/$name.json" > "$R/$name.log" 2>&1
  echo "rc=$?"; grep -v '^ ' "$R/$name.log" | grep -v '^{\|^}' | tail -6 | cut -c1-2500
  tar -C $R -cf "$OUT/results.tar" .
}
TWO_B=(--synthetic 2b --skip-demo --cache-dir $C)
for s in $STAGES; do
  case $s in
    webgpu) stage webgpu 150 X=1 -- "${TWO_B[@]}" --providers webgpu --dump $D --repeat 2 --variants "$VARIANTS" ;;
    cpu) stage cpu 100 X=1 -- "${TWO_B[@]}" --providers cpu --dump $D --repeat 0 --skip-rates ;;
    profile)
      stage profile 80 X=1 -- "${TWO_B[@]}" --providers webgpu --repeat 1 --skip-rates --profile /tmp/prof
      # The biggest single session's raw profile, for a closer look off the machine.
      big=$(ls -S /tmp/prof/webgpu/*.json 2>/dev/null | head -1)
      [ -n "$big" ] && xz -T0 -6 -c "$big" > "$OUT/profile-largest.json.xz" && ls -la "$OUT/profile-largest.json.xz" ;;
    tuned) stage tuned 70 CIRCUIT_WEBGPU_OPTIONS="$TUNED_OPTIONS" -- "${TWO_B[@]}" --providers webgpu --repeat 2 --skip-rates ;;
    demo) stage demo 60 X=1 -- --synthetic none --providers webgpu --repeat 3 ;;
    small-pages) stage small-pages 80 GLIBC_TUNABLES= -- "${TWO_B[@]}" --providers webgpu --repeat 1 --skip-rates ;;
    *) el "unknown stage $s" ;;
  esac
done
el end
