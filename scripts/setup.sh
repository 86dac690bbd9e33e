#!/usr/bin/env bash
# Installs whatever this machine lacks to build, run and test edge-cache.
# Idempotent: each step checks first, so a second run takes seconds.
# Everything comes from crates.io and the npm registry (see ../shared/TOOLCHAIN.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# wasm-bindgen-cli must match the wasm-bindgen crate exactly; Cargo.toml pins it with `=`.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    step "adding $component"
    rustup component add "$component"
  fi
done

if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $BINDGEN_VERSION" ]; then
  step "installing wasm-bindgen-cli $BINDGEN_VERSION (a few minutes)"
  # --locked fails for this version (a yanked transitive dependency).
  cargo install wasm-bindgen-cli --version "=$BINDGEN_VERSION" --force
fi

if [ ! -x node_modules/.bin/wrangler ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing npm packages (wrangler, miniflare, binaryen)"
  npm ci --no-audit --no-fund
fi

if ! command -v chromium >/dev/null 2>&1; then
  step "installing Debian's chromium (the admin page's browser test)"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium
fi

# A local admin token for `make dev` (wrangler dev reads .dev.vars; it is git-ignored).
if [ ! -f .dev.vars ] || ! grep -q '^ADMIN_TOKEN=' .dev.vars; then
  step "generating a local ADMIN_TOKEN into .dev.vars"
  echo "ADMIN_TOKEN=dev-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >> .dev.vars
fi
