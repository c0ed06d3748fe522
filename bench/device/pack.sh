#!/usr/bin/env bash
# Packs bench/gpu-check.ts for a GPU machine that has no Node and no registry: an esbuild
# bundle, this machine's node binary and onnxruntime-node's native files (xz), into .devrun/
# (git-ignored; ~40 MB), plus the Vulkan loader and GL dispatch packages into .gl/. Then run
# bench/device/run.sh there with both folders carried (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.devrun
rm -rf "$out" && mkdir -p "$out/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
npx esbuild bench/gpu-check.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --outfile="$out/gpu-check.mjs" --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
# The decode pool's thread, where the bundle looks for it (new URL('./decode-worker.mjs', import.meta.url)).
npx esbuild electron/engine/checkpoint/decode-thread.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$out/decode-worker.mjs" --log-level=warning
cp -r node_modules/onnxruntime-common "$out/node_modules/"
cp -r node_modules/onnxruntime-node/{package.json,dist,lib} "$out/node_modules/onnxruntime-node/"
cp node_modules/onnxruntime-node/bin/napi-v*/linux/x64/onnxruntime_binding.node "$out/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/"
xz -T0 -6 -c node_modules/onnxruntime-node/bin/napi-v*/linux/x64/libonnxruntime.so.1 >"$out/libonnxruntime.so.1.xz"
xz -T0 -6 -c "$(command -v node)" >"$out/node.xz"
cp bench/device/run.sh "$out/run.sh"
grep -qx '/.devrun/' .git/info/exclude || echo '/.devrun/' >>.git/info/exclude
grep -qx '/.gl/' .git/info/exclude || echo '/.gl/' >>.git/info/exclude
mkdir -p .gl /tmp/amd64/partial
apt_o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
apt-get "${apt_o[@]}" update -qq
(cd .gl && apt-get "${apt_o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh "$out" .gl
