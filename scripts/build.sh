#!/bin/sh
# Builds build/index.js + build/index_bg.wasm with worker-build, pointing it at
# helper binaries installed from the package registries (its own download of
# them comes from GitHub, which is unreachable here). wrangler's [build] runs
# this, so a plain `npx wrangler dev` builds the same way `make` does.
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
worker-build --release
# worker-build keeps the wasm name section (function names for stack
# traces): 35-40 KB of the gzipped worker. Panics still log their message
# and source line without it, so the deployed worker goes without.
"$WASM_OPT_BIN" build/index_bg.wasm --strip-debug --strip-producers \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types \
  --enable-exception-handling -o build/index_bg.wasm
