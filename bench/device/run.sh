#!/usr/bin/env bash
# On the GPU machine, from .devrun/ (bench/device/pack.sh): unpack node + onnxruntime, generate the
# gemma-2-2b-shaped checkpoint, trace it on WebGPU and then on the CPU (same --dump: the CPU run
# prints its difference from the WebGPU graph); last, time allowing, WebGPU with the earlier
# backward/decode defaults. Figures go to $OUT.
set -u
cd "$(dirname "$0")"
T0=$(date +%s)
el() { echo "[+$(( $(date +%s) - T0 ))s] $*"; }
for f in ../.gl/*.deb; do dpkg -x "$f" /; done; ldconfig
ls /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d 2>&1 | tr '\n' ' '; echo
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
mkdir -p bin && xz -dc node.xz > bin/node && chmod +x bin/node
xz -dc libonnxruntime.so.1.xz > node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
el "node $(bin/node --version), nproc $(nproc), free $(free -g | awk '/Mem/{print $7}') GiB, disk $(df -h /tmp | awk 'NR==2{print $4}')"
C=/tmp/gc; D=/tmp/dump
el gen
timeout 170 bin/node gpu-check.mjs --synthetic 2b --skip-demo --providers none --cache-dir $C 2>&1 | tail -3
el webgpu
timeout 200 bin/node gpu-check.mjs --synthetic 2b --skip-demo --providers webgpu --dump $D --repeat 2 --cache-dir $C --json $OUT/webgpu.json > $OUT/webgpu.log 2>&1
echo "rc=$?"; grep -v '^ ' $OUT/webgpu.log | tail -5 | cut -c1-1500
el cpu
timeout 180 bin/node gpu-check.mjs --synthetic 2b --skip-demo --providers cpu --dump $D --repeat 0 --cache-dir $C --json $OUT/cpu.json > $OUT/cpu.log 2>&1
echo "rc=$?"; grep -v '^ ' $OUT/cpu.log | tail -4 | cut -c1-1500
el demo
timeout 75 bin/node gpu-check.mjs --synthetic none --providers webgpu --repeat 3 --json $OUT/demo.json > $OUT/demo.log 2>&1
echo "rc=$?"; tail -12 $OUT/demo.log | cut -c1-400
# What the defaults added since the last device run changed (joined backward output, select
# injection, decode pool), against the earlier ones: open time and a warm trace, only if the
# run's 10 minutes allow it.
left=$(( 580 - $(date +%s) + T0 ))
if [ "$left" -gt 160 ]; then
  el "webgpu, earlier defaults"
  CIRCUIT_BACKWARD_OUTPUTS=layers CIRCUIT_BACKWARD_INJECTION=scatter CIRCUIT_PARALLEL_DECODE=0 \
    timeout $(( left - 10 )) bin/node gpu-check.mjs --synthetic 2b --skip-demo --providers webgpu --repeat 1 \
    --cache-dir $C --json $OUT/webgpu-earlier.json > $OUT/webgpu-earlier.log 2>&1
  echo "rc=$?"; grep -v '^ ' $OUT/webgpu-earlier.log | tail -5 | cut -c1-1500
fi
el end
