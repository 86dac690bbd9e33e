#!/bin/sh
# Builds bench/wasm-floor/build/index.js + index_bg.wasm with the same steps
# and release profile as scripts/build.sh (cargo, wasm-bindgen, wasm-opt,
# esbuild). bench/run.js adds the worker to its run when it is built.
set -eu
cd "$(dirname "$0")"
root="$PWD/../.."
PATH="$HOME/.cargo/bin:$PATH"
CARGO_TARGET_DIR="$PWD/target" cargo build --lib --release --target wasm32-unknown-unknown
rm -rf build && mkdir -p build/.staging
wasm-bindgen target/wasm32-unknown-unknown/release/wasm_floor.wasm \
  --out-dir build/.staging --out-name index --no-typescript --target module
"$root/node_modules/.bin/wasm-opt" build/.staging/index_bg.wasm -O --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types -o build/index_bg.wasm
cp entry.js build/.staging/entry.js
"$root/node_modules/.bin/esbuild" build/.staging/entry.js --bundle --format=esm --minify \
  --log-level=warning --external:./index_bg.wasm --outfile=build/.staging/out/index.js
sed 's/import source /import /' build/.staging/out/index.js > build/index.js
rm -rf build/.staging
