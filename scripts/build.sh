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
exec worker-build --release
