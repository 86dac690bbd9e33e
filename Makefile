# edge-cache: the two commands a new machine needs are `make dev` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
export WRANGLER_SEND_METRICS := false
WASM_TEST_RUNNER := CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner

.PHONY: setup build dev test test-native test-wasm test-e2e lint bench deploy-check device-model

setup:
	@scripts/setup.sh

build: setup
	@scripts/build.sh

## Runs the worker under wrangler dev on 127.0.0.1:8787 (demo origin unless ORIGIN is set).
dev: setup
	@echo "admin page: http://127.0.0.1:8787/_admin/  token: $$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars)"
	npx wrangler dev --ip 127.0.0.1 --port 8787 $(if $(ORIGIN),--var ORIGIN:$(ORIGIN))

## Every test layer: lint, native core, wasm-bindgen, end to end in workerd.
test: setup lint test-native test-wasm test-e2e

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-unknown-unknown -- -D warnings

test-native:
	cargo test

test-wasm:
	$(WASM_TEST_RUNNER) cargo test --target wasm32-unknown-unknown --lib

test-e2e: build
	node --test --test-concurrency=1 tests/e2e/

## Side-by-side hit-path benchmark (see bench/README.md).
bench: build
	node bench/run.js

## Builds the deployable bundle offline, as `wrangler deploy` would.
deploy-check: setup
	npx wrangler deploy --dry-run --outdir dist

## Retrains the device classifier (src/device/model.bin) from tests/data/user-agents.tsv.
device-model:
	cargo run --release --example train_device_model
