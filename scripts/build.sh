#!/bin/sh
# Builds build/index.js + build/index_bg.wasm: the same steps worker-build
# takes (cargo, wasm-bindgen, wasm-opt, esbuild), with the worker's own entry
# (src/edge/entry.js) in place of worker-build's. Its entry wraps every
# request in a WorkerEntrypoint built through two Proxies and an async
# wrapper: about 5% of a hit's CPU (BENCHMARKS.md). The wasm-bindgen glue is
# the one worker-build makes (`--target module`, with the reset and abort
# hooks the `worker` crate uses to start over after a panic).
# wrangler's [build] runs this, so a plain `npx wrangler dev` builds the same
# way `make` does.
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"
WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"

# wasm-bindgen's macros use js-sys's futures with this set, as worker-build has them.
WASM_BINDGEN_USE_JS_SYS=1 cargo build --lib --release --target wasm32-unknown-unknown

staging=build/.staging
rm -rf "$staging"
mkdir -p "$staging"
"$WASM_BINDGEN_BIN" target/wasm32-unknown-unknown/release/edge_cache.wasm \
  --out-dir "$staging" --out-name index --no-typescript --target module \
  --experimental-reset-state-function --force-enable-abort-handler
# The name section (function names for stack traces) is 35-40 KB of the
# gzipped worker; panics still log their message and line without it.
# KEEP_NAMES=1 keeps it, for a CPU profile (see BENCHMARKS.md).
strip="--strip-debug --strip-producers"
[ -n "${KEEP_NAMES:-}" ] && strip="--debuginfo"
# shellcheck disable=SC2086
"$WASM_OPT_BIN" "$staging/index_bg.wasm" -O $strip \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types \
  --enable-exception-handling -o "$staging/index_bg.wasm"
cp src/edge/entry.js "$staging/entry.js"
"$ESBUILD_BIN" "$staging/entry.js" --bundle --format=esm --minify --log-level=warning \
  --external:./index_bg.wasm '--external:cloudflare:*' --outfile="$staging/out/index.js"
# workerd imports a wasm module without the source-phase keyword (as worker-build does).
sed 's/import source /import /' "$staging/out/index.js" > build/index.js
mv "$staging/index_bg.wasm" build/index_bg.wasm
rm -rf "$staging" build/worker build/package.json
